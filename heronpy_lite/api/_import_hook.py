"""``heronpy`` as another name of ``heronpy_lite`` inside heronpy_lite's own processes.

Theory of operation
-------------------
A Heron topology imports ``heronpy.api.bolt.bolt`` and friends. The loader
(the CLI's submit, every instance process) calls `install` before it runs the
user's file; from then on, in that process, ``heronpy`` and every
``heronpy.X`` resolve to the module object ``heronpy_lite.X``: the very same
object under two names, so ``heronpy.api.bolt.bolt.Bolt is
heronpy_lite.api.bolt.bolt.Bolt`` and the engine's checks on user classes hold.

`HeronpyAlias` is a meta path finder placed first on ``sys.meta_path``, so it
wins over a real heronpy installed in the same environment (which is then
never imported in that process). ``import heronpy_lite`` alone installs
nothing: a user's own process, or a test, where heronpy_lite and the real
heronpy live side by side keeps the real one.

The alias loader returns the already imported ``heronpy_lite.X`` from
``create_module`` and gives it back its own ``__spec__`` in ``exec_module``
(the import system stamps the alias spec on the module in between), so
``heronpy_lite.X`` stays what it was. A ``heronpy.X`` that heronpy_lite does
not have fails with heronpy's module name in the error.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

ALIAS = "heronpy"
TARGET = "heronpy_lite"


def target_name(fullname: str) -> str:
    """``heronpy.api.bolt`` -> ``heronpy_lite.api.bolt``."""
    return TARGET + fullname[len(ALIAS) :]


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        # the import system has set module.__spec__ to the alias spec: restore the
        # module's own (its body already ran when heronpy_lite.X was imported)
        real_spec = _SPECS.get(self.target)
        if real_spec is not None:
            module.__spec__ = real_spec


#: the spec of each aliased heronpy_lite module, taken before the import system
#: overwrites it (keyed by the heronpy_lite name)
_SPECS: dict[str, importlib.machinery.ModuleSpec] = {}


class HeronpyAlias(importlib.abc.MetaPathFinder):
    """Finds ``heronpy`` and ``heronpy.*`` as their ``heronpy_lite`` modules."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        real = target_name(fullname)
        module = sys.modules.get(real)
        if module is None:
            try:
                found = importlib.util.find_spec(real)
            except ModuleNotFoundError:
                found = None
            if found is None:
                raise ModuleNotFoundError(
                    f"No module named {fullname!r} (heronpy_lite has no {real})", name=fullname
                )
            module = importlib.import_module(real)
        real_spec = module.__spec__
        if real_spec is not None:
            _SPECS.setdefault(real, real_spec)
        return importlib.machinery.ModuleSpec(
            fullname,
            _AliasLoader(real),
            is_package=hasattr(module, "__path__"),
        )


def installed() -> bool:
    return any(isinstance(finder, HeronpyAlias) for finder in sys.meta_path)


def install() -> None:
    """Resolve ``heronpy`` to heronpy_lite in this process from now on (idempotent).

    A real heronpy imported earlier in this process is forgotten first, so that
    nothing loaded afterwards mixes its classes with heronpy_lite's.
    """
    if installed():
        return
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        if not getattr(sys.modules[name], "__name__", "").startswith(TARGET):
            del sys.modules[name]
    sys.meta_path.insert(0, HeronpyAlias())


def uninstall() -> None:
    """Undo `install` (tests): the alias finder goes, and so do the aliased names."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, HeronpyAlias)]
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        del sys.modules[name]
