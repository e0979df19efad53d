"""``heronpy-lite activate|deactivate CLUSTER NAME``."""

from __future__ import annotations

import argparse
from typing import Any

from heronpy_lite.cli.common import (
    add_cluster_args,
    control,
    require_topology,
    secret_of,
    state_manager,
    topology_engine,
)
from heronpy_lite.errors import ControlError


def add_parser(sub: Any) -> None:
    for verb, what in (
        ("activate", "resume the spouts of a topology"),
        ("deactivate", "pause the spouts of a topology; in-flight tuples drain"),
    ):
        p = sub.add_parser(verb, help=what, description=what[0].upper() + what[1:] + ".")
        add_cluster_args(p)
        p.add_argument("name")
        p.set_defaults(run=run, command=verb)


def run(args: argparse.Namespace) -> int:
    with state_manager(args) as sm:
        engine = topology_engine(require_topology(sm, args.name))
        secret = secret_of(args, engine)
        response = control(sm, args.name, args.command, engine=engine, secret=secret)
    if not response.ok:
        raise ControlError(f"{args.command} {args.name}: {response.message}")
    print(response.message)
    return 0
