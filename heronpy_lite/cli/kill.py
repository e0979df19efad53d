"""``heronpy-lite kill CLUSTER NAME``: stop every process, remove every node.

No pid from the state manager is signalled unless it is still the process
that was recorded and one of this topology's (scheduler/identity.py); and
whatever the nodes say, every live process carrying the topology's markers
is stopped, so a topology whose nodes are missing, corrupt or rewritten is
still cleaned up, and nothing is left behind.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from heronpy_lite import security
from heronpy_lite.checkpoint.store import CheckpointStore, store_root
from heronpy_lite.cli.common import (
    add_cluster_args,
    engine_from_args,
    require_topology,
    state_manager,
    topology_engine,
)
from heronpy_lite.errors import CorruptStateError, TopologyNotFoundError
from heronpy_lite.scheduler import identity
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
        try:
            engine = topology_engine(require_topology(sm, args.name))
        except TopologyNotFoundError:
            # no record: still kill what carries its markers (a failed submit's leftovers)
            engine = engine_from_args(args)
            if not identity.find_ours(identity.markers(args.name, engine)):
                raise
        except CorruptStateError:
            engine = engine_from_args(args)  # kill is how such a topology goes away
        scheduler = scheduler_for(sm, args.name, engine)
        kill_topology(sm, args.name, scheduler, args.cluster)
    for note in scheduler.notes:
        print(f"warning: {note}", file=sys.stderr)
    print(f"Topology {args.name!r} killed.")
    return 0


def kill_topology(sm: StateManager, name: str, scheduler: Scheduler, cluster: str) -> None:
    """Stop every process of ``name`` (the scheduler's verb), then delete every node
    of the topology (a container that outlived the kill ends itself when it finds
    its record gone), its checkpoints and the CLI's copy of its secret."""
    scheduler.kill()
    sm.delete_topology(name)
    # EFFECTIVELY_ONCE: its checkpoints go with it (a new submit starts clean)
    CheckpointStore(store_root(scheduler.engine), name).drop()
    security.forget_secret(scheduler.engine, cluster, name)
    # Prometheus stops scraping endpoints that are gone (file_sd drops a missing file)
    scrape_targets_file(name).unlink(missing_ok=True)
