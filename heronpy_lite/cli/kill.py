"""``heronpy-lite kill CLUSTER NAME``: stop every process, remove every node."""

from __future__ import annotations

import argparse
from typing import Any

from heronpy_lite import security
from heronpy_lite.cli.common import (
    add_cluster_args,
    require_topology,
    state_manager,
    topology_engine,
)
from heronpy_lite.scheduler.base import Scheduler, scheduler_for
from heronpy_lite.scheduler.local import scrape_targets_file
from heronpy_lite.statemgr.base import StateManager


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "kill",
        help="kill a topology",
        description="Stop every process of a topology and remove its state.",
    )
    add_cluster_args(p)
    p.add_argument("name")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with state_manager(args) as sm:
        engine = topology_engine(require_topology(sm, args.name))
        kill_topology(sm, args.name, scheduler_for(sm, args.name, engine), args.cluster)
    print(f"Topology {args.name!r} killed.")
    return 0


def kill_topology(sm: StateManager, name: str, scheduler: Scheduler, cluster: str) -> None:
    """Stop every process of ``name`` (the scheduler's verb), then delete every node
    of the topology (a container that outlived the kill ends itself when it finds
    its record gone) and the CLI's copy of its secret."""
    scheduler.kill()
    sm.delete_topology(name)
    security.forget_secret(scheduler.engine, cluster, name)
    # Prometheus stops scraping endpoints that are gone (file_sd drops a missing file)
    scrape_targets_file(name).unlink(missing_ok=True)
