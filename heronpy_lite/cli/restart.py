"""``heronpy-lite restart CLUSTER NAME [CONTAINER]``: restart containers."""

from __future__ import annotations

import argparse
from typing import Any

from heronpy_lite.cli.common import (
    add_cluster_args,
    require_topology,
    secret_of,
    state_manager,
    topology_engine,
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
    with state_manager(args) as sm:
        engine = topology_engine(require_topology(sm, args.name))
        secret = secret_of(args, engine, required=False)
        targets = restart_containers(sm, args.name, args.container, engine, secret)
    print(f"Restarting container(s) {', '.join(map(str, targets))} of {args.name!r}.")
    return 0


def restart_containers(
    sm: StateManager,
    name: str,
    container: int | None,
    engine: EngineConfig,
    secret: bytes | None = None,
) -> list[int]:
    """Restart ``container`` (all of them if None) through the topology's scheduler
    (``secret``: to hand to a scheduler it may have to start again); the containers
    asked for. ControlError if there is no such container."""
    return scheduler_for(sm, name, engine, secret).restart(container)
