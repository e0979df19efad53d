"""``heronpy-lite version``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import heronpy_lite


def add_parser(sub: Any) -> None:
    p = sub.add_parser("version", help="print the version")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(f"heronpy-lite {heronpy_lite.__version__} (Python {sys.version.split()[0]})")
    return 0
