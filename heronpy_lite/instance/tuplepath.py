"""Which tuple path a task runs: the C extension or the pure-Python reference.

`_cpath` (built from ``_cpath.c`` by ``pip install``) and `_pypath` have the
same objects, arguments and behaviour; see `_pypath`'s docstring for what
they do and docs/decisions/0015-compiled-tuple-path.md for why there are two.
The C one is used whenever it was built, unless ``HERONPY_LITE_NO_EXTENSIONS``
is set to a non-empty value (how the tests run the reference).
"""

from __future__ import annotations

import importlib
from types import ModuleType

import msgpack
import msgpack.fallback

from heronpy_lite.api.tuple import HeronTuple
from heronpy_lite.config import extensions_enabled
from heronpy_lite.errors import EmitError, RemoteProtocolError
from heronpy_lite.instance import _pypath
from heronpy_lite.wire.tuples import unpack_batch


def _load_native() -> ModuleType | None:
    try:
        native = importlib.import_module("heronpy_lite.instance._cpath")
    except ImportError:
        return None
    native.configure(
        heron_tuple=HeronTuple,
        emit_error=EmitError,
        protocol_error=RemoteProtocolError,
        fallback_pack=msgpack.Packer(use_bin_type=True, autoreset=True).pack,
        fallback_unpack=unpack_batch,
        nest_limit=msgpack.fallback.DEFAULT_RECURSE_LIMIT,
    )
    return native


#: the C tuple path, or None where it was not built
NATIVE: ModuleType | None = _load_native()
PURE: ModuleType = _pypath

#: every implementation available here, by name (what the tests run against)
IMPLEMENTATIONS: dict[str, ModuleType] = {"python": PURE, **({"c": NATIVE} if NATIVE else {})}


def default() -> ModuleType:
    """The implementation a task uses: C where built and not switched off."""
    if NATIVE is not None and extensions_enabled():
        return NATIVE
    return PURE


def name_of(implementation: ModuleType) -> str:
    return "c" if implementation is NATIVE else "python"
