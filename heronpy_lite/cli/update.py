"""``heronpy-lite update CLUSTER NAME --component-parallelism COMP:N [...]
[--container-number N]``: run a topology with other parallelisms or another
number of containers (docs/decisions/0047-key-groups.md).

What it does, in order:

1. checks the request against the topology: every component named exists,
   every N is an int >= 1, a fields-grouped bolt keeps no more tasks than its
   key groups, and at EFFECTIVELY_ONCE no component whose state is not keyed
   (a spout's offset; a stateful bolt without fields-grouped inputs) changes
   its parallelism, since that state cannot be split or merged;
2. at ATLEAST_ONCE, drains: the spouts are deactivated (if they are not) and
   every tree they emitted is acked (or failed) before any process stops, so nothing in
   flight is lost with them; at EFFECTIVELY_ONCE nothing needs to drain: every
   task restores the latest complete checkpoint, keyed state moved by key
   group, and the spouts replay from their offsets;
3. packs the tasks again (round robin), records the new plan and has the
   scheduler run it (`Scheduler.update`: every container restarts);
4. returns once every task of the new plan runs, activating the spouts again
   if it deactivated them, and says how long the topology paused.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from heronpy_lite.api.api_constants import TOPOLOGY_RELIABILITY_MODE, TOPOLOGY_STMGRS
from heronpy_lite.cli import launching
from heronpy_lite.cli.common import (
    add_cluster_args,
    control,
    require_topology,
    secret_of,
    state_manager,
    topology_engine,
)
from heronpy_lite.cli.submit import wait_running
from heronpy_lite.config import EngineConfig, message_timeout
from heronpy_lite.errors import ControlError
from heronpy_lite.keygroups import TOPOLOGY_KEYGROUPS, keygroups_for
from heronpy_lite.scheduler.base import scheduler_for
from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.statemgr.base import EXECUTION_STATE, TOPOLOGIES, StateManager
from heronpy_lite.tracker import model
from heronpy_lite.wire import metric_names as names

#: how long a drain waits when the topology's trees never time out
DEFAULT_MESSAGE_TIMEOUT_SECS = 30.0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "update",
        help="change a running topology's parallelism or number of containers",
        description="Run a topology with new component parallelisms and/or another "
        "number of containers. Keyed state moves with its key groups (EFFECTIVELY_ONCE); "
        "at ATLEAST_ONCE in-flight trees drain first. Returns when the new plan runs.",
    )
    add_cluster_args(p)
    p.add_argument("name")
    p.add_argument(
        "--component-parallelism",
        action="append",
        default=[],
        metavar="COMPONENT:N",
        help="the new parallelism of a component (repeatable)",
    )
    p.add_argument("--container-number", type=int, metavar="N", help="the new number of containers")
    p.set_defaults(run=run)


def parse_parallelism(items: list[str], components: dict[str, Any]) -> dict[str, int]:
    """``["count:4", ...]`` -> {"count": 4}; ControlError naming what is wrong."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.rpartition(":")
        if not sep or not name:
            raise ControlError(f"--component-parallelism {item!r}: expected COMPONENT:N")
        if name not in components:
            known = ", ".join(sorted(components))
            raise ControlError(f"no component {name!r} in this topology (it has: {known})")
        try:
            par = int(value)
        except ValueError:
            raise ControlError(f"--component-parallelism {item!r}: N must be an int") from None
        if par < 1:
            raise ControlError(f"--component-parallelism {item!r}: N must be >= 1")
        out[name] = par
    return out


def check_request(record: dict[str, Any], parallelism: dict[str, int]) -> None:
    """What the topology allows of ``parallelism`` (see the module docstring)."""
    config = record.get("config", {})
    effectively_once = config.get(TOPOLOGY_RELIABILITY_MODE) == "EFFECTIVELY_ONCE"
    for name, par in parallelism.items():
        spec = record["components"][name]
        if spec.get("keyed"):
            groups = keygroups_for(spec.get("config", {}), config)
            if par > groups:
                raise ControlError(
                    f"{name}: parallelism {par} is more than its {groups} key groups "
                    f"({TOPOLOGY_KEYGROUPS} is fixed when the topology is submitted)"
                )
        if (
            effectively_once
            and par != spec["par"]
            and spec.get("stateful")
            and not spec.get("keyed")
        ):
            what = "a spout's state (its offset)" if spec.get("spout") else "its state"
            raise ControlError(
                f"{name}: cannot change its parallelism at EFFECTIVELY_ONCE: {what} is "
                "not keyed by fields grouping, and cannot be split or merged"
            )


def run(args: argparse.Namespace) -> int:
    if not args.component_parallelism and args.container_number is None:
        raise ControlError(
            "nothing to update: give --component-parallelism and/or --container-number"
        )
    with state_manager(args) as sm:
        record = require_topology(sm, args.name)
        engine = topology_engine(record)
        components = record["components"]
        parallelism = parse_parallelism(args.component_parallelism, components)
        containers = args.container_number
        if containers is not None and containers < 1:
            raise ControlError(f"--container-number {containers}: must be >= 1")
        check_request(record, parallelism)
        same = all(components[c]["par"] == n for c, n in parallelism.items())
        if same and containers in (None, record["config"].get(TOPOLOGY_STMGRS, 1)):
            raise ControlError(f"nothing to update: {args.name!r} already runs that plan")
        secret = secret_of(args, engine, required=False)
        pause = update_topology(sm, args.name, record, engine, secret, parallelism, containers)
    changes = [f"{c}: {components[c]['par']} -> {n}" for c, n in parallelism.items()]
    if containers is not None:
        changes.append(f"containers: {record['config'].get(TOPOLOGY_STMGRS, 1)} -> {containers}")
    print(f"Updated {args.name!r} ({'; '.join(changes)}); paused {pause:.1f}s.")
    return 0


def update_topology(
    sm: StateManager,
    name: str,
    record: dict[str, Any],
    engine: EngineConfig,
    secret: bytes | None,
    parallelism: dict[str, int],
    containers: int | None,
) -> float:
    """Run ``name`` with ``parallelism`` and ``containers``; the seconds from the
    spouts stopping to the new plan running."""
    config = dict(record["config"])
    if containers is not None:
        config[TOPOLOGY_STMGRS] = containers
    components = {
        c: {**spec, "par": parallelism.get(c, spec["par"])}
        for c, spec in record["components"].items()
    }
    packing = pack_round_robin(
        name, [(c, spec["par"]) for c, spec in components.items()], int(config[TOPOLOGY_STMGRS])
    )
    mode = config.get(TOPOLOGY_RELIABILITY_MODE)
    execution = sm.get(EXECUTION_STATE, name) or {}
    was_running = execution.get("state", "RUNNING") == "RUNNING"
    started = time.monotonic()
    if mode == "ATLEAST_ONCE":
        # deactivated or not, what is still in flight finishes first
        _ask(sm, name, "deactivate", engine, secret)
        try:
            drain(sm, name, engine, time.time())
        except BaseException:
            if was_running:  # not updated: it goes on as it was
                _ask(sm, name, "activate", engine, secret)
            raise
    sm.set(TOPOLOGIES, name, {**record, "config": config, "components": components})
    scheduler = scheduler_for(sm, name, engine, secret)
    scheduler.update(packing)
    progress = launching.Progress(name)
    try:
        wait_running(sm, name, packing, scheduler, engine.submit_timeout_secs, progress.update)
    finally:
        progress.clear()
    if mode == "ATLEAST_ONCE" and was_running:
        _ask(sm, name, "activate", engine, secret)
    return time.monotonic() - started


def _ask(
    sm: StateManager, name: str, command: str, engine: EngineConfig, secret: bytes | None
) -> None:
    response = control(sm, name, command, engine=engine, secret=secret)
    if not response.ok and "already" not in response.message:
        raise ControlError(f"update {name}: {command}: {response.message}")


def drain(sm: StateManager, name: str, engine: EngineConfig, since: float) -> None:
    """Wait until every spout task reports, in a metrics snapshot taken after
    ``since``, no tree pending: everything it emitted is acked or failed. At most
    ``topology.message.timeout.secs`` and a few export intervals: by then every
    tree has timed out (and was failed to its spout)."""
    t = model.read_topology(sm, name)
    # without message timeouts a tree could stay pending for ever: wait as by default
    timeout = message_timeout(t.record["config"]) or DEFAULT_MESSAGE_TIMEOUT_SECS
    deadline = time.monotonic() + timeout + 5 * engine.metrics_interval_secs + 5
    spouts = {
        task
        for task, (component, _, _) in t.task_placement().items()
        if t.components.get(component, {}).get("spout")
    }
    while time.monotonic() < deadline:
        if _pending_since(t, since, spouts) == 0:
            return
        time.sleep(engine.metrics_interval_secs / 4)
        t = model.read_topology(sm, name)
    raise ControlError(f"update {name}: trees still pending after {timeout:g}s; not updated")


def _pending_since(t: model.Topology, since: float, spouts: set[int]) -> int | None:
    """The trees pending at every spout task in its latest snapshot, or None if a
    spout task has no snapshot taken after ``since`` yet."""
    latest: dict[int, tuple[float, float]] = {}
    for document in model.fetch_windows(t, 1):
        for source in document.get("sources", []):
            task = source.get("source", "").removeprefix("task-")
            if not task.isdigit() or int(task) not in spouts:
                continue
            for metric, _kind, _labels, value, _increase in source.get("series", []):
                if metric == names.PENDING:
                    latest[int(task)] = (float(source["time"]), float(value))
    if set(latest) != spouts or any(at < since for at, _ in latest.values()):
        return None
    return int(sum(pending for _, pending in latest.values()))
