"""Load a user's topology: used by the CLI at submit and by every instance process
at start (user classes are never pickled: each process builds the topology
itself, the same way; docs/decisions/0004 and 0016).

Two ways to find the topology, as ``heron submit`` has:

- ``ATTR``: import the file and take its attribute ``ATTR`` (a `Topology`
  subclass, a `TopologyBuilder`, or any object with
  ``_to_topology_builder(name)``). For a ``.zip``/``.pex`` ATTR is the
  dotted path ``package.module.Attr`` inside it, as Heron takes a class path.
- ``-``: run the file as ``__main__`` with ``sys.argv = [FILE, *args]`` and
  take what it hands over through heronpy's ``TopologyBuilder.build_and_submit()``
  or ``Topology.write()``. A ``.zip`` runs its ``__main__.py``; a ``.pex`` runs
  the module its PEX-INFO names as entry point (never the pex's own bootstrap,
  so its bundled heronpy never runs).

Before any user code runs, `heronpy` is made another name of heronpy_lite in
this process (`_import_hook`), and the folders a project's imports are rooted
at are put on ``sys.path``: the file's own folder (as Python does for a
script), the archive itself, ``--package-root``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
import types
import zipfile
import zipimport
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from heronpy_lite.api import _import_hook
from heronpy_lite.api.component.component_spec import resolve_class_path
from heronpy_lite.api.topology import (
    Topology,
    TopologyBuilder,
    TopologyDefinition,
    definition_of,
    receiving,
)
from heronpy_lite.errors import TopologyError, TopologyLoadError

#: ATTR that means: run the file as __main__ and take what it hands over
RUN_AS_MAIN = "-"
ARCHIVE_SUFFIXES = (".zip", ".pex")


def is_archive(path: str | Path) -> bool:
    return str(path).endswith(ARCHIVE_SUFFIXES)


def load_topology(
    path: str | Path,
    attr: str,
    name: str | None = None,
    search_dir: str | Path | None = None,
    *,
    argv: Sequence[str] | None = None,
    package_root: str | Path | None = None,
) -> TopologyDefinition:
    """Build and validate the topology of ``path`` (`TopologyError` if invalid).

    Args:
        path: a ``.py`` file, or a ``.zip``/``.pex`` archive.
        attr: the attribute (dotted path in an archive) naming the topology, or
            ``"-"`` to run the file as ``__main__``.
        name: the topology's name; default: what the topology calls itself (a
            builder's name, a class's name), else ``attr``.
        search_dir: the folder on ``sys.path`` for a ``.py`` file (default: its
            own folder; instances pass the folder of the file as submitted).
        argv: ``sys.argv`` while a ``-`` file runs (default: ``[path]``).
        package_root: an extra folder on ``sys.path``: the one the project's
            imports are rooted at (``import examples.src.python...``).
    """
    _import_hook.install()
    path = Path(path).resolve()
    if not path.is_file():
        raise TopologyLoadError(f"topology file {path} does not exist")
    archive = is_archive(path)
    folders = [str(path)] if archive else [str(Path(search_dir or path.parent).resolve())]
    if archive:
        folders += _pex_dependency_dirs(path)
    if package_root is not None:
        root = Path(package_root).resolve()
        if not root.is_dir():
            raise TopologyLoadError(f"--package-root {package_root} is not a directory")
        folders.append(str(root))
    for folder in reversed(folders):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    default_name = attr if attr != RUN_AS_MAIN else None
    if attr == RUN_AS_MAIN:
        return _run_as_main(path, list(argv) if argv else [str(path)], name)
    if archive:
        return _definition(_from_archive(path, attr), name, default_name, path)
    module = import_topology_file(path, folders[0])
    return _definition(find_topology(module, attr), name, default_name, path)


def _definition(
    obj: Any, name: str | None, default_name: str | None, path: Path
) -> TopologyDefinition:
    try:
        return definition_of(obj, name, default_name)
    except TopologyError:
        raise
    except Exception as exc:  # user code ran: _to_topology_builder, a class path's module
        raise _load_error(f"{path.name}: building the topology raised", exc, path) from exc


# -- ATTR: import -----------------------------------------------------------------------


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
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if not isinstance(exc, Exception) and not isinstance(exc, SystemExit):
            raise
        raise _load_error(f"{path.name} failed to import", exc, path) from exc
    return module


def _is_topology(value: Any) -> bool:
    return (
        isinstance(value, TopologyBuilder)
        or (isinstance(value, type) and issubclass(value, Topology) and value is not Topology)
        or (not isinstance(value, type) and callable(getattr(value, "_to_topology_builder", None)))
    )


def _candidates(module: ModuleType) -> list[str]:
    return sorted(name for name, value in vars(module).items() if _is_topology(value))


def find_topology(module: ModuleType, attr: str) -> Any:
    """``module.attr``, checked to be something `definition_of` takes."""
    obj = getattr(module, attr, None)
    if obj is None:
        found = _candidates(module)
        hint = f" (it defines: {', '.join(found)})" if found else ""
        if not found and _mentions_build_and_submit(module):
            hint = " (it builds its topology when run: submit it with '-', as `FILE - NAME`)"
        raise TopologyLoadError(f"{module.__file__} defines no {attr!r}{hint}")
    if not _is_topology(obj):
        raise TopologyLoadError(
            f"{attr!r} is a {type(obj).__name__}, not a Topology subclass, a TopologyBuilder "
            "or an object with _to_topology_builder()"
        )
    return obj


def _mentions_build_and_submit(module: ModuleType) -> bool:
    try:
        source = Path(module.__file__ or "").read_text(errors="replace")
    except OSError:
        return False
    return "build_and_submit" in source or ".write()" in source


def _from_archive(path: Path, attr: str) -> Any:
    try:
        obj = resolve_class_path(attr)
    except (ImportError, AttributeError) as exc:
        if isinstance(exc, ImportError) and "not a dotted" in str(exc):
            raise TopologyLoadError(
                f"in an archive, ATTR is a dotted path package.module.Attr (got {attr!r})"
            ) from None
        raise _load_error(f"{path.name}: cannot import {attr!r}", exc, path) from exc
    except Exception as exc:
        raise _load_error(f"{path.name}: importing {attr!r} raised", exc, path) from exc
    if not _is_topology(obj):
        raise TopologyLoadError(
            f"{attr!r} is a {type(obj).__name__}, not a Topology subclass, a TopologyBuilder "
            "or an object with _to_topology_builder()"
        )
    return obj


# -- "-": run as __main__ ---------------------------------------------------------------


def _run_as_main(path: Path, argv: list[str], name: str | None) -> TopologyDefinition:
    code, filename, package = _main_code(path)
    handed: list[Any] = []
    with _as_main(filename, package, argv) as module:
        try:
            with receiving(handed.append):
                exec(code, module.__dict__)
        except SystemExit as exc:
            if exc.code not in (None, 0) and not handed:
                raise TopologyLoadError(
                    f"{path.name} exited with status {exc.code} before handing over a "
                    f"topology (it ran with sys.argv = {argv!r})"
                ) from None
        except Exception as exc:
            raise _load_error(f"{path.name} raised", exc, path) from exc
        if not handed:
            found = _candidates(module)
            hint = (
                f"; it defines {', '.join(found)}: submit `FILE {found[0]}` instead of '-'"
                if found
                else ""
            )
            raise TopologyLoadError(
                f"{path.name} ran as __main__ (sys.argv = {argv!r}) and handed over no "
                "topology: with '-', it must call TopologyBuilder.build_and_submit() or "
                f"Topology.write(){hint}"
            )
        if len(handed) > 1:
            names = ", ".join(_own_name(t) for t in handed)
            raise TopologyLoadError(
                f"{path.name} handed over {len(handed)} topologies ({names}); "
                "heronpy-lite submits one per run"
            )
        # while the file is still __main__: a class path "__main__.X" resolves
        return _definition(handed[0], name, None, path)


def _own_name(topology: Any) -> str:
    return str(getattr(topology, "topology_name", None) or type(topology).__name__)


def _main_code(path: Path) -> tuple[types.CodeType, str, str]:
    """(code, __file__, __package__) of what running ``path`` runs."""
    if not is_archive(path):
        source = path.read_bytes()
        try:
            return compile(source, str(path), "exec"), str(path), ""
        except SyntaxError as exc:
            raise _load_error(f"{path.name} failed to compile", exc, path) from exc
    entry = _pex_entry_point(path)
    if entry is None:
        try:
            code = zipimport.zipimporter(str(path)).get_code("__main__")
        except zipimport.ZipImportError:
            raise TopologyLoadError(f"{path.name} has no __main__.py to run with '-'") from None
        return code, f"{path}/__main__.py", ""
    module_name, _, function = entry.partition(":")
    try:
        spec = importlib.util.find_spec(module_name)
    except ImportError as exc:
        raise _load_error(f"{path.name}: its entry point {entry!r}", exc, path) from exc
    if spec is None or spec.loader is None or not hasattr(spec.loader, "get_code"):
        raise TopologyLoadError(f"{path.name}: its entry point {entry!r} was not found in it")
    if function:
        code = compile(
            f"import {module_name} as _entry\n_entry.{function}()\n", f"<{entry}>", "exec"
        )
        return code, f"{path}/<{entry}>", ""
    code = spec.loader.get_code(module_name)
    return code, str(spec.origin or path), module_name.rpartition(".")[0]


def _pex_entry_point(path: Path) -> str | None:
    """The ``entry_point`` of a pex's PEX-INFO; None for a plain zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            if "PEX-INFO" not in archive.namelist():
                return None
            info = json.loads(archive.read("PEX-INFO"))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise TopologyLoadError(f"{path.name} is not a readable zip or pex: {exc}") from None
    entry = info.get("entry_point")
    if not entry:
        raise TopologyLoadError(f"{path.name}: its PEX-INFO names no entry_point to run")
    return str(entry)


def _pex_dependency_dirs(path: Path) -> list[str]:
    """``ARCHIVE/.deps/<dist>`` for the dependencies a pex bundles, but heronpy's
    (heronpy_lite stands in for it)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise TopologyLoadError(f"{path.name} is not a readable zip or pex: {exc}") from None
    dists = sorted({n.split("/")[1] for n in names if n.startswith(".deps/") and n.count("/") >= 2})
    return [f"{path}/.deps/{d}" for d in dists if d and not d.lower().startswith("heronpy")]


@contextmanager
def _as_main(filename: str, package: str, argv: list[str]) -> Iterator[ModuleType]:
    """A fresh ``__main__`` module and ``sys.argv`` while the block runs; both restored
    afterwards (the topology's classes keep their module alive)."""
    module = types.ModuleType("__main__")
    module.__file__ = filename
    module.__package__ = package or None
    module.__builtins__ = __builtins__  # type: ignore[attr-defined]
    saved_main = sys.modules.get("__main__")
    saved_argv = sys.argv
    sys.modules["__main__"] = module
    sys.argv = argv
    try:
        yield module
    finally:
        sys.argv = saved_argv
        if saved_main is not None:
            sys.modules["__main__"] = saved_main


# -- errors -----------------------------------------------------------------------------


def _user_frame(tb: TracebackType | None) -> tuple[str, int] | None:
    """The innermost frame of user code (not the import machinery, not heronpy_lite)."""
    found = None
    pkg = str(Path(__file__).resolve().parent.parent)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        machinery = filename.startswith("<frozen") or "/importlib/" in filename
        if not machinery and not filename.startswith(pkg):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _load_error(what: str, exc: BaseException, path: Path) -> TopologyLoadError:
    """One line: what failed, the exception, and where; for a failed import the
    module that failed and the file that imported it."""
    message = f"{what}: {type(exc).__name__}: {exc}"
    where = _user_frame(exc.__traceback__)
    # the import system names the module it could not import (a user's own
    # `raise ImportError(...)` names none): the frame below is the importer
    if isinstance(exc, ImportError) and exc.name is not None and where is not None:
        message += f" (imported by {where[0]}, line {where[1]})"
    elif where is not None:
        message += f" (at {where[0]}, line {where[1]})"
    if isinstance(exc, ImportError):
        missing = getattr(exc, "name", None)
        if isinstance(exc, ModuleNotFoundError) and missing:
            top = missing.split(".")[0]
            if top != _import_hook.ALIAS and not _importable(top):
                message += (
                    f"; no folder on the path has {top!r}: pass the folder the project's "
                    "imports are rooted at with --package-root"
                )
    err = TopologyLoadError(message)
    err.detail = "".join(  # type: ignore[attr-defined]
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    return err
