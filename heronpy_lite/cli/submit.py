"""``heronpy-lite submit CLUSTER FILE ATTR [ARGS...]``: validate, record, launch, wait.

ATTR names the topology in FILE, or is ``-``: FILE then runs as ``__main__``
with ``sys.argv = [FILE, *ARGS]`` and hands its topology over, as with
``heron submit CLUSTER FILE.pex - NAME ARGS...`` (see `api._loader`). Options
of this command may come anywhere after ATTR; everything else there, and
everything after ``--``, is ARGS, in order.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from heronpy_lite import config, security
from heronpy_lite.api._loader import RUN_AS_MAIN, load_topology
from heronpy_lite.api.state.stateful_component import StatefulComponent
from heronpy_lite.api.topology import check_cycles, check_effectively_once
from heronpy_lite.cli import launching
from heronpy_lite.cli.common import add_cluster_args, engine_for
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import ConfigError, SubmitError, TopologyError, TopologyExistsError
from heronpy_lite.keygroups import TOPOLOGY_KEYGROUPS
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
from heronpy_lite.tmaster import autoscaling
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
    p.add_argument("file", help="the topology's .py file, or a .zip/.pex holding it")
    p.add_argument(
        "attr",
        help="a Topology subclass, a TopologyBuilder (or an object with "
        "_to_topology_builder) in FILE; package.module.Attr in a .zip/.pex; or '-' to run "
        "FILE as __main__ and take the topology its build_and_submit()/write() hands over",
    )
    p.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        metavar="ARGS",
        help="with '-': FILE's sys.argv[1:] (Heron's NAME first); with ATTR: an optional "
        "topology NAME",
    )
    p.add_argument(
        "--name",
        help="topology name (default: the topology's own: a TopologyBuilder's name, a "
        "Topology class's name; else ATTR)",
    )
    p.add_argument(
        "--package-root",
        metavar="DIR",
        help="the folder the project's imports are rooted at (e.g. the one holding "
        "'examples/' for 'import examples.src.python.bolt'); every instance uses it too",
    )
    p.add_argument(
        "--deploy-deactivated", action="store_true", help="start with spouts deactivated"
    )
    p.set_defaults(run=run)
    _OPTIONS.clear()
    for action in p._actions:  # the options that may also follow ATTR
        for option in action.option_strings:
            if option.startswith("--"):
                _OPTIONS[option] = action


#: this command's options by flag (``--name``: its action), to find them after ATTR
_OPTIONS: dict[str, argparse.Action] = {}


def split_trailing(args: argparse.Namespace) -> list[str]:
    """Take this command's options out of the tokens after ATTR (argparse leaves them
    there) into ``args``; return the rest, in order: the topology's arguments."""
    rest: list[str] = []
    tokens = list(args.args or [])
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            rest.extend(tokens[i:])
            break
        flag, eq, inline = token.partition("=")
        action = _OPTIONS.get(flag)
        if action is None or action.dest == "help":
            rest.append(token)
            continue
        if action.nargs == 0:
            setattr(args, action.dest, True)
            continue
        if eq:
            value = inline
        elif i < len(tokens):
            value = tokens[i]
            i += 1
        else:
            raise SubmitError(f"option {flag} needs a value")
        if isinstance(action, argparse._AppendAction):
            getattr(args, action.dest).append(value)
        else:
            setattr(args, action.dest, value)
    return rest


def run(args: argparse.Namespace) -> int:
    topology_args = split_trailing(args)
    properties = config.parse_properties(args.config_property)
    engine = engine_for(args.cluster, args.config_path, properties)
    path = Path(args.file).resolve()
    name = args.name
    if args.attr != RUN_AS_MAIN and topology_args:
        # Heron's `heron submit CLUSTER FILE CLASS NAME`: the first argument names it
        if len(topology_args) > 1:
            raise SubmitError(
                f"unexpected arguments {topology_args[1:]!r}: only a '-' submit passes "
                "arguments to FILE"
            )
        name = name or topology_args[0]
    if name is not None and not _NAME.match(name):
        raise TopologyError(f"invalid topology name {name!r}: use letters, digits, _ . -")
    package_root = str(Path(args.package_root).resolve()) if args.package_root else None
    argv = [str(path), *topology_args]
    definition = load_topology(path, args.attr, name, argv=argv, package_root=package_root)
    name = definition.name
    if not _NAME.match(name):
        raise TopologyError(
            f"invalid topology name {name!r}: use letters, digits, _ . - (or --name NAME)"
        )
    args.topology_argv = argv
    args.package_root = package_root
    resolved = config.resolve(args.cluster, args.config_path, properties, definition.config)
    check_cycles(definition, resolved)
    for component in definition.components.values():
        try:
            config.component_config(resolved, component.config)
        except ConfigError as exc:
            raise ConfigError(f"component {component.name!r}: {exc}") from None
    if resolved.get("topology.reliability.mode") == "EFFECTIVELY_ONCE":
        check_effectively_once(definition)
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
        "source": str(path),
        "search_dir": str(path.parent),
        "argv": args.topology_argv,
        "package_root": args.package_root,
        "config": resolved,
        "submitted_at": time.time(),
        "user": getpass.getuser(),
        "components": {
            c.name: {
                "par": c.par,
                "spout": c.is_spout,
                "inputs": sorted({i.component for i in c.inputs}),
                # what update needs to know (cli/update.py)
                "stateful": issubclass(c.python_class, StatefulComponent),
                "keyed": c.key_fields > 0,
                "config": {k: v for k, v in c.config.items() if k == TOPOLOGY_KEYGROUPS},
            }
            for c in components.values()
        },
    }
    autoscaling.config_of(record)  # TopologyError if its topology.autoscale.* are wrong
    if not sm.create_topology(name, record):
        raise TopologyExistsError(
            f"a topology named {name!r} already exists (heronpy-lite kill {args.cluster} {name})"
        )
    secret = security.new_secret() if engine.authentication else None
    scheduler = scheduler_for(sm, name, engine, secret)
    try:
        try:
            if workdir.exists():
                shutil.rmtree(workdir)  # leftovers of an earlier run of this name
            (workdir / "log").mkdir(parents=True)
            shutil.copy2(path, workdir / path.name)
        except OSError as exc:
            raise SubmitError(
                f"cannot prepare the working directory {workdir}: {exc.strerror or exc}"
            ) from exc
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
            wait_running(sm, name, packing, scheduler, engine.submit_timeout_secs, progress.update)
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


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Any]:
    try:
        out = open(path, "ab")  # noqa: SIM115 (closed below, once the child has it)
    except OSError as exc:
        raise SubmitError(f"cannot open {path}: {exc.strerror or exc}") from exc
    with out:
        yield out


def wait_running(
    sm: StateManager,
    name: str,
    packing: PackingPlan,
    scheduler: Scheduler,
    timeout: float,
    progress: Callable[[int, int, int, int], None] = lambda *counts: None,
) -> None:
    deadline = time.monotonic() + timeout
    tasks = {t.task_id: t for t in packing.tasks}
    wanted = packing.to_dict()
    while True:
        problem = scheduler.problem()
        if problem is not None:
            raise SubmitError(problem)
        plan = sm.get(PPLANS, name) or {}
        if plan.get("packing", wanted) != wanted:
            plan = {}  # the plan before an update: its tasks are not these
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
