"""``heronpy-lite version``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import heronpy_lite
from heronpy_lite.config import NO_EXTENSIONS_ENV, extensions_enabled
from heronpy_lite.instance import tuplepath
from heronpy_lite.stmgr import acking


def add_parser(sub: Any) -> None:
    p = sub.add_parser("version", help="print the version")
    p.set_defaults(run=run)


def tuple_path() -> str:
    """Which tuple path processes run (docs/decisions/0015-compiled-tuple-path.md)."""
    if tuplepath.NATIVE is None or acking.NATIVE is None:
        return "pure Python (the C extensions were not built: reinstall with a C compiler)"
    if not extensions_enabled():
        return f"pure Python ({NO_EXTENSIONS_ENV} is set)"
    return "C extensions"


def run(args: argparse.Namespace) -> int:
    print(f"heronpy-lite {heronpy_lite.__version__} (Python {sys.version.split()[0]})")
    print(f"tuple path: {tuple_path()}")
    return 0
