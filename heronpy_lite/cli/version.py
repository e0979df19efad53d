"""``heronpy-lite version``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import heronpy_lite
from heronpy_lite import extensions


def add_parser(sub: Any) -> None:
    p = sub.add_parser("version", help="print the version")
    p.set_defaults(run=run)


def tuple_path() -> str:
    """Which tuple path processes run (docs/decisions/0015-compiled-tuple-path.md)."""
    return extensions.describe()


def run(args: argparse.Namespace) -> int:
    print(f"heronpy-lite {heronpy_lite.__version__} (Python {sys.version.split()[0]})")
    print(f"tuple path: {tuple_path()}")
    return 0
