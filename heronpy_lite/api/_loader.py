"""Load a user's topology file and find its topology: used by the CLI at submit
and by every instance process at start (user classes are never pickled)."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from heronpy_lite.api.topology import Topology, TopologyBuilder, TopologyDefinition, definition_of
from heronpy_lite.errors import TopologyLoadError


def import_topology_file(path: str | Path, search_dir: str | Path | None = None) -> ModuleType:
    """Import ``path`` as a fresh module, with ``search_dir`` (default: its folder) on sys.path."""
    path = Path(path).resolve()
    if not path.is_file():
        raise TopologyLoadError(f"topology file {path} does not exist")
    search = str(Path(search_dir).resolve() if search_dir else path.parent)
    if search not in sys.path:
        sys.path.insert(0, search)
    module_name = f"_heronpy_lite_topology_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TopologyLoadError(f"{path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        err = TopologyLoadError(f"{path.name} failed to import: {type(exc).__name__}: {exc}")
        err.__cause__ = exc
        err.detail = traceback.format_exc()  # type: ignore[attr-defined]
        raise err from exc
    return module


def find_topology(module: ModuleType, attr: str) -> Any:
    obj = getattr(module, attr, None)
    if obj is None:
        candidates = sorted(
            name
            for name, value in vars(module).items()
            if isinstance(value, TopologyBuilder)
            or (isinstance(value, type) and issubclass(value, Topology) and value is not Topology)
            or (not isinstance(value, type) and hasattr(value, "_to_topology_builder"))
        )
        hint = f" (it defines: {', '.join(candidates)})" if candidates else ""
        raise TopologyLoadError(f"{module.__file__} defines no {attr!r}{hint}")
    if not (
        isinstance(obj, TopologyBuilder)
        or (isinstance(obj, type) and issubclass(obj, Topology) and obj is not Topology)
        or (not isinstance(obj, type) and hasattr(obj, "_to_topology_builder"))
    ):
        raise TopologyLoadError(
            f"{attr!r} is a {type(obj).__name__}, not a Topology subclass or a TopologyBuilder"
        )
    return obj


def load_topology(
    path: str | Path, attr: str, name: str | None = None, search_dir: str | Path | None = None
) -> TopologyDefinition:
    """Import ``path``, find ``attr`` and validate it (`TopologyError` if invalid)."""
    module = import_topology_file(path, search_dir)
    return definition_of(find_topology(module, attr), name)
