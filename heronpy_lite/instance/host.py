"""The task host: the delegate a spout or bolt is built with.

Theory of operation
-------------------
heronpy's runtime builds a component as ``cls(delegate=host)``; the
component's ``emit``/``ack``/``fail``/``log`` forward here. `TaskHost` turns
emits into per-destination batches and batches into DATA frames, and turns
received batches into ``process`` calls. It never touches a socket or a
clock: the runner passes ``now`` in, takes finished frames from ``outbox``
and writes them.

Batches: emit appends the tuple's values to the batch of every destination
task (grouping is evaluated here, at emit time). A batch becomes a frame when
it holds ``batch_max_tuples`` or when the runner calls `flush` (end of a
round once ``flush_interval`` has passed, or when the task goes idle). Values
are packed with msgpack at flush time; a tuple that msgpack cannot encode is
dropped with an error (logged, counted) and the rest of its batch goes on.

User exceptions (``process``, ``next_tuple``, ``process_tick``, ``ack``...)
are caught by the caller through `user_exception`: logged (the first few of
each type with traceback, then every 1000th) and counted by type. The task
keeps running.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from heronpy_lite.api.tuple import HeronTuple, TupleHelper
from heronpy_lite.errors import EmitError, LocalProtocolError
from heronpy_lite.instance.routing import OutputRouter
from heronpy_lite.wire.frames import encode_data
from heronpy_lite.wire.tuples import pack_batch, pack_one

_LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    None: logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_FULL_LOGS_PER_TYPE = 5


class _StreamOut:
    """Per output stream: arity, routes, and the open batch of each destination."""

    __slots__ = ("arity", "batches", "has_direct", "routes", "stream")

    def __init__(self, stream: str, arity: int, routes: list[Any], has_direct: bool) -> None:
        self.stream = stream
        self.arity = arity
        self.routes = routes
        self.has_direct = has_direct
        self.batches: dict[int, list[Any]] = {}


class TaskHost:
    """Delegate of one task. Create it, set ``component`` to the user's object, then run."""

    def __init__(
        self,
        *,
        topology: str,
        task_id: int,
        component: str,
        is_spout: bool,
        router: OutputRouter,
        task_components: dict[int, str],
        batch_max_tuples: int,
        max_frame_bytes: int,
        logger: logging.Logger,
    ) -> None:
        self.topology = topology
        self.task_id = task_id
        self.component_name = component
        self.is_spout = is_spout
        self.logger = logger
        self.batch_max_tuples = batch_max_tuples
        self.max_frame_bytes = max_frame_bytes
        self.task_components = task_components
        self._streams = {
            stream: _StreamOut(stream, router.arity[stream], routes, router.has_direct[stream])
            for stream, routes in router.routes.items()
        }
        self.component: Any = None
        self.outbox: list[bytes] = []
        self.pending_tuples = 0
        self.emit_count = 0
        self.immediate_acks: list[Any] = []
        # counters (the metrics issue exports these)
        self.emitted: Counter[str] = Counter()
        self.executed: Counter[tuple[str, str]] = Counter()
        self.acked = 0
        self.failed = 0
        self.exceptions: Counter[str] = Counter()
        self.dropped_unserializable = 0

    # -- the delegate interface (called by user code) --

    def emit(
        self,
        tup: Any,
        tup_id: Any = None,
        stream: str = "default",
        anchors: Any = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        out = self._streams.get(stream)
        if out is None:
            raise EmitError(
                f"{self.component_name} emits on stream {stream!r}, which its "
                "outputs do not declare"
            )
        if type(tup) is not tuple:
            tup = list(tup)
        if len(tup) != out.arity:
            raise EmitError(
                f"{self.component_name} emits {len(tup)} values on stream "
                f"{stream!r}, which declares {out.arity} fields"
            )
        if direct_task is not None and not out.has_direct:
            raise EmitError(
                f"direct_task given, but no consumer of stream {stream!r} uses Grouping.DIRECT"
            )
        routes = out.routes
        # Choose every destination before touching a batch: an emit that raises
        # (a DIRECT consumer without direct_task, a bad custom grouping) sends nothing.
        if len(routes) == 1:
            chosen = routes[0].choose(tup, direct_task)
        else:
            chosen = [task for route in routes for task in route.choose(tup, direct_task)]
        batches = out.batches
        limit = self.batch_max_tuples
        for task in chosen:
            batch = batches.get(task)
            if batch is None:
                batches[task] = batch = []
            batch.append(tup)
            if len(batch) >= limit:
                self._flush_batch(stream, task, batch)
                batches[task] = []
        self.pending_tuples += 1
        self.emit_count += 1
        self.emitted[stream] += 1
        if tup_id is not None and self.is_spout:
            # ATMOST_ONCE: heronpy acks a spout tuple with an id right after next_tuple.
            self.immediate_acks.append(tup_id)
        return list(chosen) if need_task_ids else None

    def ack(self, tup: Any) -> None:
        if not isinstance(tup, HeronTuple):
            self.logger.error("ack() takes the HeronTuple given to process(), got %r", tup)
            return
        self.acked += 1

    def fail(self, tup: Any) -> None:
        if not isinstance(tup, HeronTuple):
            self.logger.error("fail() takes the HeronTuple given to process(), got %r", tup)
            return
        self.failed += 1

    def log(self, message: str, level: str | None = None) -> None:
        if level not in _LOG_LEVELS:
            raise ValueError(f"log level {level!r} is not one of trace, debug, info, warn, error")
        self.logger.log(_LOG_LEVELS[level], message)

    # -- batching --

    @property
    def has_pending(self) -> bool:
        return self.pending_tuples > 0

    def flush(self) -> None:
        """Turn every open batch into frames on ``outbox``."""
        for out in self._streams.values():
            batches = out.batches
            for task, batch in batches.items():
                if batch:
                    self._flush_batch(out.stream, task, batch)
            batches.clear()
        self.pending_tuples = 0

    def _flush_batch(self, stream: str, task: int, batch: list[Any]) -> None:
        try:
            body = pack_batch(batch)
        except (TypeError, ValueError, OverflowError):
            batch = self._drop_unserializable(stream, batch)
            if not batch:
                return
            body = pack_batch(batch)
        try:
            self.outbox.append(encode_data(task, self.task_id, stream, body, self.max_frame_bytes))
        except LocalProtocolError as exc:
            if len(batch) == 1:
                self.dropped_unserializable += 1
                self.logger.error("tuple on stream %r dropped: %s", stream, exc)
                return
            half = len(batch) // 2
            self._flush_batch(stream, task, batch[:half])
            self._flush_batch(stream, task, batch[half:])

    def _drop_unserializable(self, stream: str, batch: list[Any]) -> list[Any]:
        good = []
        for values in batch:
            try:
                pack_one(values)
            except (TypeError, ValueError, OverflowError) as exc:
                self.dropped_unserializable += 1
                self.user_exception(
                    "emit",
                    exc,
                    f"values on stream {stream!r} are not msgpack-serializable: {values!r:.200}",
                )
            else:
                good.append(values)
        return good

    # -- inbound --

    def process_batch(self, src_task: int, stream: str, tuples: list[Any]) -> None:
        """Call the bolt's ``process`` for every tuple of one received batch."""
        process = self.component.process
        component = self.task_components.get(src_task, "")
        now = time.time()
        make = HeronTuple
        for values in tuples:
            try:
                process(make(None, component, stream, src_task, values, now, None))
            except Exception as exc:
                self.user_exception("process", exc)
        self.executed[(component, stream)] += len(tuples)

    def process_tick(self) -> None:
        try:
            self.component.process_tick(TupleHelper.make_tick_tuple())
        except Exception as exc:
            self.user_exception("process_tick", exc)

    def call_user(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            self.user_exception(what, exc)
            return None

    def user_exception(self, where: str, exc: BaseException, message: str = "") -> None:
        name = type(exc).__name__
        self.exceptions[name] += 1
        count = self.exceptions[name]
        text = message or f"{where}() raised {name}: {exc}"
        if count <= _FULL_LOGS_PER_TYPE:
            self.logger.error("%s", text, exc_info=exc)
        elif count % 1000 == 0:
            self.logger.error("%s (%d so far)", text, count)
