"""``heronpy-lite restart CLUSTER NAME [CONTAINER]``: restart containers."""

from __future__ import annotations

import argparse
from typing import Any

from heronpy_lite.cli.common import (
    add_cluster_args,
    engine_from_args,
    require_topology,
    state_manager,
)
from heronpy_lite.config import EngineConfig
from heronpy_lite.scheduler.base import scheduler_for
from heronpy_lite.statemgr.base import StateManager


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
    engine = engine_from_args(args)
    with state_manager(args) as sm:
        require_topology(sm, args.name)
        targets = restart_containers(sm, args.name, args.container, engine)
    print(f"Restarting container(s) {', '.join(map(str, targets))} of {args.name!r}.")
    return 0


def restart_containers(
    sm: StateManager, name: str, container: int | None, engine: EngineConfig
) -> list[int]:
    """Restart ``container`` (all of them if None) through the topology's scheduler;
    the containers asked for. ControlError if there is no such container."""
    return scheduler_for(sm, name, engine).restart(container)
