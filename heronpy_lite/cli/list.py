"""``heronpy-lite list CLUSTER``: the topologies and their states."""

from __future__ import annotations

import argparse
from typing import Any

from heronpy_lite.cli.common import add_cluster_args, state_manager
from heronpy_lite.statemgr.base import EXECUTION_STATE


def add_parser(sub: Any) -> None:
    p = sub.add_parser("list", help="list topologies", description="List topologies.")
    add_cluster_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with state_manager(args) as sm:
        names = sm.list_topologies()
        if not names:
            print(f"No topologies in cluster {args.cluster!r}.")
            return 0
        print(f"{'NAME':<32} STATE")
        for name in names:
            state = (sm.get(EXECUTION_STATE, name) or {}).get("state", "UNKNOWN")
            print(f"{name:<32} {state}")
    return 0
