"""Which compiled parts this installation has, and whether processes use them.

The tuple path (``instance/_cpath``) and the XOR tracker (``stmgr/_ctracker``)
are C extensions with pure-Python twins (docs/decisions/0015). This module
answers without importing the roles that load them, so the CLI can say which
path runs.
"""

from __future__ import annotations

import importlib.util
import os

#: set (non-empty) to run the pure-Python tuple path and XOR tracker even where the
#: C extensions were built
NO_EXTENSIONS_ENV = "HERONPY_LITE_NO_EXTENSIONS"

MODULES = ("heronpy_lite.instance._cpath", "heronpy_lite.stmgr._ctracker")


def enabled() -> bool:
    """Whether processes use the C extensions where they were built."""
    return not os.environ.get(NO_EXTENSIONS_ENV)


def built() -> bool:
    """Whether both C extensions were compiled at install."""
    return all(importlib.util.find_spec(name) is not None for name in MODULES)


def describe() -> str:
    """Which tuple path processes run, in words."""
    if not built():
        return "pure Python (the C extensions were not built: reinstall with a C compiler)"
    if not enabled():
        return f"pure Python ({NO_EXTENSIONS_ENV} is set)"
    return "C extensions"
