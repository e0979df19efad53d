# The C tuple path (_cpath.c): the same objects and behaviour as _pypath.py.
from collections.abc import Callable, Sequence
from typing import Any

from heronpy_lite.instance.routing import StreamSpec

class Anchors:
    flat: bytes
    ack_val: int
    done: bool

class InFlight:
    def __len__(self) -> int: ...
    def add(self, root: int, tup_id: Any, emitted: float) -> None: ...
    def resolve(
        self, body: bytes | memoryview, now: float
    ) -> tuple[list[Any], float, list[Any]]: ...
    def expire(self, deadline: float) -> list[Any]: ...
    def clear(self) -> None: ...

class AckOut:
    acked: int
    failed: int
    latency_count: int
    latency_sum: float
    def __init__(self, warn: Callable[[str], None]) -> None: ...
    def __bool__(self) -> bool: ...
    def init(self, spout_task: int, root: int, value: int) -> None: ...
    def ack(self, tup: Any) -> None: ...
    def fail(self, tup: Any) -> None: ...
    def take(self) -> list[tuple[int, bytes]]: ...

class Emitter:
    outbox: list[bytes]
    outbox_bytes: int
    immediate: list[Any]
    count: int
    rejected: int
    open_bytes: int
    def __init__(
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
        in_flight: InFlight,
        acks: AckOut,
        warn: Callable[[str], None],
        clock: Callable[[], float],
    ) -> None: ...
    @property
    def has_pending(self) -> bool: ...
    def __call__(self, tup: Any, *args: Any, **kwargs: Any) -> list[int] | None: ...
    def flush(self) -> None: ...
    def take(self) -> list[bytes]: ...
    def counts(self) -> dict[str, int]: ...

def configure(
    *,
    heron_tuple: type,
    emit_error: type[BaseException],
    protocol_error: type[BaseException],
    fallback_pack: Callable[[Any], bytes],
    fallback_unpack: Callable[[bytes | memoryview], list[Any]],
    nest_limit: int,
) -> None: ...
def pack(values: Any) -> bytes: ...
def unpack(body: bytes | memoryview) -> list[Any]: ...
def stable_hash(value: Any) -> int | None: ...
def deliver(
    process: Callable[[Any], Any],
    tuples: list[Any],
    component: str,
    stream: str,
    task: int,
    now: float,
    on_error: Callable[[Exception, Any], Any],
) -> None: ...
def deliver_reliable(
    process: Callable[[Any], Any],
    tuples: list[Any],
    component: str,
    stream: str,
    task: int,
    now: float,
    on_error: Callable[[Exception, Any], Any],
) -> None: ...
def call_repeatedly(
    fn: Callable[[], Any], times: int, in_flight: InFlight | None, max_pending: int
) -> tuple[int, Exception | None]: ...
