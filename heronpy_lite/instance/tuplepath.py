"""Which tuple path a task runs: the C extension or the pure-Python reference.

`_cpath` (built from ``_cpath.c`` by ``pip install``) and `_pypath` have the
same objects, arguments and behaviour: both implement `TuplePath`. See
`_pypath`'s docstring for what they do and
docs/decisions/0015-compiled-tuple-path.md for why there are two. The C one
is used whenever it was built, unless ``HERONPY_LITE_NO_EXTENSIONS`` is set
to a non-empty value (how the tests run the reference).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgpack
import msgpack.fallback

from heronpy_lite import extensions
from heronpy_lite.api.tuple import HeronTuple
from heronpy_lite.errors import EmitError, RemoteProtocolError
from heronpy_lite.instance import _pypath
from heronpy_lite.instance.routing import StreamSpec
from heronpy_lite.wire.tuples import unpack_batch


class InFlight(Protocol):
    """A spout's trees in flight: root -> (tuple id, emitted at)."""

    def __len__(self) -> int: ...
    def add(self, root: int, tup_id: Any, emitted: float) -> None: ...
    def resolve(
        self, body: bytes | memoryview, now: float
    ) -> tuple[list[Any], float, list[Any]]: ...
    def expire(self, deadline: float) -> list[Any]: ...
    def clear(self) -> None: ...


class AckOut(Protocol):
    """A task's ``ack``/``fail`` and its acking traffic by spout task."""

    acked: int
    failed: int
    latency_count: int
    latency_sum: float

    def __bool__(self) -> bool: ...
    def init(self, spout_task: int, root: int, value: int) -> None: ...
    def ack(self, tup: Any) -> None: ...
    def fail(self, tup: Any) -> None: ...
    def take(self) -> list[tuple[int, bytes]]: ...


class Emitter(Protocol):
    """A task's ``emit``: finished frames collect in ``outbox``."""

    outbox: list[bytes]
    outbox_bytes: int
    immediate: list[Any]
    count: int
    rejected: int
    open_bytes: int

    @property
    def has_pending(self) -> bool: ...
    def __call__(self, tup: Any, *args: Any, **kwargs: Any) -> list[int] | None: ...
    def flush(self) -> None: ...
    def take(self) -> list[bytes]: ...
    def counts(self) -> dict[str, int]: ...


class MakeEmitter(Protocol):
    def __call__(
        self,
        streams: Sequence[StreamSpec],
        *,
        task_id: int,
        component: str,
        bolt: bool,
        reliable: bool,
        batch_max_tuples: int,
        batch_max_bytes: int,
        max_frame_bytes: int,
        in_flight: Any,
        acks: Any,
        warn: Callable[[str], None],
        clock: Callable[[], float],
    ) -> Emitter: ...


Process = Callable[[Any], Any]
OnError = Callable[[Exception, Any], Any]


class TuplePath(Protocol):
    """What `_pypath` and `_cpath` both are (see `_pypath`'s docstring)."""

    @property
    def Emitter(self) -> MakeEmitter: ...  # the classes' own names
    @property
    def AckOut(self) -> Callable[[Callable[[str], None]], AckOut]: ...
    @property
    def InFlight(self) -> Callable[[], InFlight]: ...
    def pack(self, values: Any) -> bytes: ...
    def unpack(self, body: bytes | memoryview) -> list[Any]: ...
    def deliver(
        self,
        process: Process,
        tuples: list[Any],
        component: str,
        stream: str,
        task: int,
        now: float,
        on_error: OnError,
    ) -> None: ...
    def deliver_reliable(
        self,
        process: Process,
        tuples: list[Any],
        component: str,
        stream: str,
        task: int,
        now: float,
        on_error: OnError,
    ) -> None: ...
    def call_repeatedly(
        self, fn: Callable[[], Any], times: int, in_flight: Any, max_pending: int
    ) -> tuple[int, Exception | None]: ...


def _load_native() -> TuplePath | None:
    try:
        importlib.import_module("heronpy_lite.instance._cpath")
    except ImportError:
        return None
    from heronpy_lite.instance import _cpath

    _cpath.configure(
        heron_tuple=HeronTuple,
        emit_error=EmitError,
        protocol_error=RemoteProtocolError,
        fallback_pack=msgpack.Packer(use_bin_type=True, autoreset=True).pack,
        fallback_unpack=unpack_batch,
        nest_limit=msgpack.fallback.DEFAULT_RECURSE_LIMIT,
    )
    path: TuplePath = _cpath
    return path


#: the C tuple path, or None where it was not built
NATIVE: TuplePath | None = _load_native()
PURE: TuplePath = _pypath

#: every implementation available here, by name (what the tests run against)
IMPLEMENTATIONS: dict[str, TuplePath] = {"python": PURE, **({"c": NATIVE} if NATIVE else {})}


def default() -> TuplePath:
    """The implementation a task uses: C where built and not switched off."""
    if NATIVE is not None and extensions.enabled():
        return NATIVE
    return PURE


def name_of(implementation: TuplePath) -> str:
    return "c" if implementation is NATIVE else "python"
