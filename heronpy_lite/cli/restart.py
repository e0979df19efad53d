"""``heronpy-lite restart CLUSTER NAME [CONTAINER]``: restart containers."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from typing import Any

from heronpy_lite.cli.common import (
    add_cluster_args,
    engine_from_args,
    require_topology,
    state_manager,
)
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import ControlError
from heronpy_lite.scheduler import identity
from heronpy_lite.statemgr.base import SCHEDULERS, StateManager


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "restart",
        help="restart a topology's containers",
        description="Restart one container (0 = tmaster) or all of them; the "
        "scheduler starts them again.",
    )
    add_cluster_args(p)
    p.add_argument("name")
    p.add_argument("container", type=int, nargs="?")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with state_manager(args) as sm:
        require_topology(sm, args.name)
        targets = restart_containers(sm, args.name, args.container, engine_from_args(args))
    print(f"Restarting container(s) {', '.join(targets)} of {args.name!r}.")
    return 0


def restart_containers(
    sm: StateManager, name: str, container: int | None, engine: EngineConfig | None = None
) -> list[str]:
    """SIGTERM the executor of ``container`` (all of them if None); the scheduler
    starts it again. The containers asked for; ControlError if there is none, or
    if a recorded executor is not that topology's process any more (its start
    time, command line or environment differ: scheduler/identity.py)."""
    scheduler = sm.get(SCHEDULERS, name)
    if scheduler is None:
        raise ControlError(f"the scheduler of {name!r} is not running")
    if engine is None:
        engine = EngineConfig.from_config(sm.get_topology(name)["config"])
    expected = identity.markers(name, engine)
    executors = scheduler.get("executors", {})
    targets = [str(container)] if container is not None else sorted(executors)
    for c in targets:
        if c not in executors:
            raise ControlError(f"{name!r} has no container {c}")
    for c in targets:
        pid = executors[c].get("pid")
        if not pid:
            continue
        if not identity.is_ours(executors[c], expected):
            raise ControlError(
                f"pid {pid}, recorded as the executor of container {c}, is not a process of "
                f"{name!r}: not signalled"
            )
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGTERM)
    return targets
