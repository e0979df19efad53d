"""``heronpy-lite submit CLUSTER FILE ATTR``: validate, record, launch, wait."""

from __future__ import annotations

import argparse
import getpass
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heronpy_lite import config, security
from heronpy_lite.api._loader import load_topology
from heronpy_lite.cli import launching
from heronpy_lite.cli.common import add_cluster_args, engine_for
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import ConfigError, SubmitError, TopologyError, TopologyExistsError
from heronpy_lite.scheduler.base import Scheduler, check_placement, scheduler_for
from heronpy_lite.scheduler.executor import working_dir
from heronpy_lite.scheduler.package import copy_package
from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.statemgr import state_manager_for
from heronpy_lite.statemgr.base import (
    EXECUTION_STATE,
    PACKING_PLANS,
    PPLANS,
    TOPOLOGIES,
    StateManager,
)
from heronpy_lite.wire.plan import PackingPlan

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: an instance that failed this many times in a row fails the submit at once
_FAILURES_BEFORE_GIVING_UP = 3


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "submit",
        help="submit a topology",
        description="Validate a topology file, start its processes and wait "
        "until every instance is running.",
    )
    add_cluster_args(p)
    p.add_argument("file", help="the topology's .py file")
    p.add_argument("attr", help="a Topology subclass or a TopologyBuilder in FILE")
    p.add_argument("--name", help="topology name (default: ATTR)")
    p.add_argument(
        "--deploy-deactivated", action="store_true", help="start with spouts deactivated"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    properties = config.parse_properties(args.config_property)
    engine = engine_for(args.cluster, args.config_path, properties)
    path = Path(args.file).resolve()
    name = args.name or args.attr
    if not _NAME.match(name):
        raise TopologyError(f"invalid topology name {name!r}: use letters, digits, _ . -")
    definition = load_topology(path, args.attr, name)
    resolved = config.resolve(args.cluster, args.config_path, properties, definition.config)
    for component in definition.components.values():
        try:
            config.component_config(resolved, component.config)
        except ConfigError as exc:
            raise ConfigError(f"component {component.name!r}: {exc}") from None
    running = EngineConfig.from_config(resolved)  # with what the topology itself sets
    security.check_bind(running)
    security.check_tls(running)
    check_placement(running)
    stmgrs = int(resolved["topology.stmgrs"])
    packing = pack_round_robin(
        name, [(c.name, c.par) for c in definition.components.values()], stmgrs
    )
    sm = state_manager_for(engine)
    try:
        return _launch(sm, running, args, name, path, definition.components, resolved, packing)
    finally:
        sm.close()


def _launch(
    sm: StateManager,
    engine: EngineConfig,
    args: argparse.Namespace,
    name: str,
    path: Path,
    components: dict[str, Any],
    resolved: dict[str, Any],
    packing: PackingPlan,
) -> int:
    workdir = working_dir(name)
    record = {
        "name": name,
        "cluster": args.cluster,
        "attr": args.attr,
        "file": str(workdir / path.name),
        "search_dir": str(path.parent),
        "config": resolved,
        "submitted_at": time.time(),
        "user": getpass.getuser(),
        "components": {
            c.name: {
                "par": c.par,
                "spout": c.is_spout,
                "inputs": sorted({i.component for i in c.inputs}),
            }
            for c in components.values()
        },
    }
    if not sm.create_topology(name, record):
        raise TopologyExistsError(
            f"a topology named {name!r} already exists (heronpy-lite kill {args.cluster} {name})"
        )
    secret = security.new_secret() if engine.authentication else None
    scheduler = scheduler_for(sm, name, engine, secret)
    try:
        if workdir.exists():
            shutil.rmtree(workdir)  # leftovers of an earlier run of this name
        (workdir / "log").mkdir(parents=True)
        shutil.copy2(path, workdir / path.name)
        if engine.scheduler_class != "local":
            # containers on other hosts import the copy, which reaches them with the
            # working directory (scheduler/package.py)
            file, search_dir = copy_package(path, workdir)
            sm.set(TOPOLOGIES, name, {**record, "file": str(file), "search_dir": str(search_dir)})
        sm.set(PACKING_PLANS, name, packing.to_dict())
        sm.set(
            EXECUTION_STATE,
            name,
            {
                "state": "PAUSED" if args.deploy_deactivated else "RUNNING",
                "cluster": args.cluster,
                "submitted_at": record["submitted_at"],
            },
        )
        if secret is not None:
            # where the CLI finds it for control requests; the containers get it from
            # the scheduler; the state manager never sees it
            security.store_secret(security.secret_file(engine, args.cluster, name), secret)
        scheduler.schedule(packing)
        progress = launching.Progress(name)
        try:
            _wait_running(sm, name, packing, scheduler, engine.submit_timeout_secs, progress.update)
        finally:
            progress.clear()
    except BaseException:
        launching.stop_started(sm, name, scheduler, args.cluster)
        raise
    print(
        launching.launched_message(
            name,
            args.cluster,
            packing.num_containers,
            len(packing.tasks),
            workdir / "log",
            args.deploy_deactivated,
        )
    )
    return 0


def _wait_running(
    sm: StateManager,
    name: str,
    packing: PackingPlan,
    scheduler: Scheduler,
    timeout: float,
    progress: Callable[[int, int, int, int], None] = lambda *counts: None,
) -> None:
    deadline = time.monotonic() + timeout
    tasks = {t.task_id: t for t in packing.tasks}
    while True:
        problem = scheduler.problem()
        if problem is not None:
            raise SubmitError(problem)
        plan = sm.get(PPLANS, name) or {}
        instances = {int(k): v for k, v in plan.get("instances", [])}
        for task_id, status in instances.items():
            if (
                status.get("error")
                and status.get("restarts", 0) >= _FAILURES_BEFORE_GIVING_UP - 1
                and status.get("state") != "running"
            ):
                t = tasks[task_id]
                raise SubmitError(
                    f"instance {t.component}[{t.component_index}] (task {task_id}) "
                    f"keeps failing: {status['error']}"
                )
        running = sum(1 for t in tasks if instances.get(t, {}).get("state") == "running")
        progress(running, len(tasks), len(plan.get("stmgrs", [])), packing.num_containers)
        if running == len(tasks) and len(plan.get("stmgrs", [])) == packing.num_containers:
            return
        if time.monotonic() > deadline:
            errors = [f"task {k}: {v['error']}" for k, v in instances.items() if v.get("error")]
            raise SubmitError(
                f"only {running} of {len(tasks)} instances running after {timeout:g}s"
                + (f" ({'; '.join(errors)})" if errors else "")
                + f"; see {working_dir(name) / 'log'}"
            )
        time.sleep(0.05)
