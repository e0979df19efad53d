"""The task host: the delegate a spout or bolt is built with.

Theory of operation
-------------------
heronpy's runtime builds a component as ``cls(delegate=host)``; the
component's ``emit``/``ack``/``fail``/``log`` forward here. `TaskHost` turns
emits into per-destination batches and batches into DATA frames, and turns
received batches into ``process`` calls. It never touches a socket or a
clock: the runner passes ``now`` in, takes finished frames from ``outbox``
and writes them.

The per-tuple work is done by the tuple path (`tuplepath`: C, or its pure
Python reference): ``emit`` *is* the path's `Emitter`, ``ack``/``fail`` its
`AckOut`'s, and received batches go through its ``deliver``. Grouping is
evaluated at emit time; a tuple is packed when it is emitted (a value
msgpack cannot encode, or a tuple too large for a frame, raises `EmitError`
at the ``emit`` call and sends nothing). A batch becomes a frame when it
holds ``batch_max_tuples``, when the next tuple would not fit in a frame, or
when the runner calls `flush` (end of a round once ``flush_interval`` has
passed, or when the task goes idle). What the emitter cannot route itself
(DIRECT and custom groupings, values that are not a list or tuple) comes
back to `_emit_general`, which chooses the tasks and hands them to
``Emitter.send``.

ATLEAST_ONCE (``reliable=True``): every tuple on the wire carries its
anchors, (spout task, root, edge id) triples (see `wire/acking.py`). A spout
emit with a ``tup_id`` creates a root and registers it in ``in_flight``; bolt
emits anchored to inputs derive new edge ids; ``ack``/``fail`` queue updates
per spout task, which leave as ACK frames with the next flush (always
*before* data frames, so a spout's init reaches its stmgr before any tuple of
the tree can). The stmgr's verdicts come back through `on_verdicts`.
``in_flight`` roots are also expired here, after ``2 * timeout + 1`` s, in
case the stmgr holding them died.

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
from types import ModuleType
from typing import Any

from heronpy_lite.api.spout.spout import Spout
from heronpy_lite.api.tuple import HeronTuple, TupleHelper
from heronpy_lite.errors import EmitError, LocalProtocolError
from heronpy_lite.instance import tuplepath
from heronpy_lite.instance.exception_log import ExceptionLog
from heronpy_lite.instance.routing import OutputRouter, Route
from heronpy_lite.wire.frames import data_body_limit, encode_ack, encode_data

_LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    None: logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_FULL_LOGS_PER_TYPE = 5
_ARRAY_HEADER_MAX = 5  # msgpack array32 header: a body is its entries plus this at most


class _StreamOut:
    """Per output stream: arity, routes, and the open batch of each destination."""

    __slots__ = ("arity", "batches", "has_direct", "routes", "stream")

    def __init__(
        self, stream: str, arity: int, routes: list[Route], has_direct: bool, path: ModuleType
    ) -> None:
        self.stream = stream
        self.arity = arity
        self.routes = routes
        self.has_direct = has_direct
        self.batches: dict[int, Any] = {
            task: path.Batch(stream, task) for route in routes for task in route.tasks
        }

    def spec(self, max_frame_bytes: int) -> tuple[str, int, int, list[Any] | None]:
        """This stream as the emitter takes it (see `_pypath.Emitter`)."""
        max_entry = data_body_limit(self.stream, max_frame_bytes) - _ARRAY_HEADER_MAX
        if any(route.kind is None for route in self.routes):
            return (self.stream, self.arity, max_entry, None)
        routes = [
            (
                route.kind,
                [self.batches[t] for t in route.tasks],
                route.key_indexes,
                route.choose,
                {t: self.batches[t] for t in route.tasks},
            )
            for route in self.routes
        ]
        return (self.stream, self.arity, max_entry, routes)


class TaskHost:
    """Delegate of one task. Create it, set ``component`` to the user's object, then run."""

    #: ``emit(tup, ...)`` with Spout.emit's positional order on a spout, Bolt.emit's on
    #: a bolt; both accept every keyword (``tup_id``, ``stream``, ``anchors``,
    #: ``direct_task``, ``need_task_ids``)
    emit: Callable[..., list[int] | None]
    ack: Callable[[Any], None]
    fail: Callable[[Any], None]

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
        batch_max_bytes: int = 1 << 20,
        reliable: bool = False,
        message_timeout_secs: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        path: ModuleType | None = None,
    ) -> None:
        self.topology = topology
        self.task_id = task_id
        self.component_name = component
        self.is_spout = is_spout
        self.logger = logger
        self.path = path or tuplepath.default()
        self.batch_max_tuples = batch_max_tuples
        self.max_frame_bytes = max_frame_bytes
        self.batch_max_bytes = batch_max_bytes
        self.outbox_bytes = 0
        self.task_components = task_components
        self._streams = {
            stream: _StreamOut(
                stream, router.arity[stream], routes, router.has_direct[stream], self.path
            )
            for stream, routes in router.routes.items()
        }
        self.component: Any = None
        self.outbox: list[bytes] = []
        self._flushed_count = 0  # emit_count at the last flush: has_pending compares
        #: spout ids to ack right after the round (the emitter appends; never rebound)
        self.immediate_acks: list[Any] = []
        # counters (the metrics issue exports these)
        self.executed: Counter[tuple[str, str]] = Counter()
        self.exceptions: Counter[str] = Counter()
        self.exception_log = ExceptionLog()  # the recent ones, with tracebacks
        self.dropped_frames = 0
        # ATLEAST_ONCE
        self.reliable = reliable
        self.clock = clock
        #: spout: its trees in flight, root -> (tup_id, emitted at)
        self.in_flight: Any = self.path.InFlight()
        self.instance_timeout = 2 * message_timeout_secs + 1 if message_timeout_secs else None
        self._next_expiry = clock() + (self.instance_timeout or 0) / 2
        self.completed = 0
        self.spout_acked = 0
        self.spout_failed = 0
        self.execute_seconds = 0.0
        self.complete_latency_sum = 0.0
        self.timed_out = 0
        self._acks = self.path.AckOut(self._complain)
        self._emitter = self.path.Emitter(
            [out.spec(max_frame_bytes) for out in self._streams.values()],
            general=self._emit_general if is_spout else self._emit_general_bolt,
            flush_one=self._flush_one,
            flush_all=self.flush,
            component=component,
            batch_max_tuples=batch_max_tuples,
            batch_max_bytes=batch_max_bytes,
            bolt=not is_spout,
            reliable=reliable,
            task_id=task_id,
            immediate=self.immediate_acks if is_spout else None,
            in_flight=self.in_flight,
            acks=self._acks,
            clock=clock,
            anchor_done=self._anchor_done,
        )
        self.emit = self._emitter
        self.ack = self._acks.ack
        self.fail = self._acks.fail

    # -- the delegate interface (called by user code) --

    def _emit_general(
        self,
        tup: Any,
        tup_id: Any = None,
        stream: str = "default",
        direct_task: int | None = None,
        need_task_ids: bool = False,
        anchors: Any = None,
    ) -> list[int] | None:
        """Any emit the emitter does not route itself. Validates and chooses every
        destination before touching a batch: an emit that raises (arity, a DIRECT
        consumer without direct_task, a bad custom grouping) sends nothing."""
        out = self._streams.get(stream)
        if out is None:
            raise EmitError(
                f"{self.component_name} emits on stream {stream!r}, which its "
                "outputs do not declare"
            )
        if type(tup) is not tuple and type(tup) is not list:
            tup = list(tup)
        if len(tup) != out.arity:
            raise EmitError(
                f"{self.component_name} emits {len(tup)} values on stream {stream!r}, "
                f"which declares {out.arity} fields"
            )
        if direct_task is not None and not out.has_direct:
            raise EmitError(
                f"direct_task given, but no consumer of stream {stream!r} uses Grouping.DIRECT"
            )
        chosen = [task for route in out.routes for task in route.choose(tup, direct_task)]
        if isinstance(anchors, HeronTuple):
            anchors = [anchors]  # heronpy takes a list; one tuple is meant as [tuple]
        self._emitter.send(stream, tup, [out.batches[t] for t in chosen], tup_id, anchors)
        return list(chosen) if need_task_ids else None

    def _emit_general_bolt(
        self,
        tup: Any,
        stream: str = "default",
        anchors: Any = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
        tup_id: Any = None,
    ) -> list[int] | None:
        """`_emit_general` with Bolt.emit's positional order."""
        return self._emit_general(tup, tup_id, stream, direct_task, need_task_ids, anchors)

    def _complain(self, what: str, tup: Any) -> None:
        if what == "twice":
            self.logger.warning("a tuple was acked or failed twice; ignoring the repeat")
        else:
            self.logger.error("%s() takes the HeronTuple given to process(), got %r", what, tup)

    def _anchor_done(self) -> None:
        self.logger.error("emit anchored to a tuple already acked or failed; not anchored")

    # -- counters --

    @property
    def emit_count(self) -> int:
        """Tuples emitted so far, every stream."""
        return self._emitter.count  # type: ignore[no-any-return]

    @property
    def emitted(self) -> dict[str, int]:
        """Tuples emitted, by stream (streams with none left out)."""
        return dict(self._emitter.counts())

    @property
    def dropped_unserializable(self) -> int:
        """Emits rejected because their values cannot be packed or are too large."""
        return int(self._emitter.rejected) + self.dropped_frames

    @property
    def pending_bytes(self) -> int:
        """Bytes emitted into open batches since they were all last flushed."""
        return int(self._emitter.pending_bytes)

    @property
    def acked(self) -> int:
        return int(self._acks.acked)

    @property
    def failed(self) -> int:
        return int(self._acks.failed)

    @property
    def process_latency_count(self) -> int:
        return int(self._acks.latency_count)

    @property
    def process_latency_sum(self) -> float:
        return float(self._acks.latency_sum)

    def ack_immediately(self) -> None:
        """Call the spout's ``ack`` for the ids emitted since the last call that need no
        tree: every id in ATMOST_ONCE (heronpy's rule), an emit without consumers."""
        if not self.immediate_acks:
            return
        ids = self.immediate_acks[:]
        self.immediate_acks.clear()  # kept: the emitter holds this list
        self.spout_acked += len(ids)
        self._ack_spout(ids)

    def log(self, message: str, level: str | None = None) -> None:
        if level not in _LOG_LEVELS:
            raise ValueError(f"log level {level!r} is not one of trace, debug, info, warn, error")
        self.logger.log(_LOG_LEVELS[level], message)

    # -- batching --

    @property
    def has_pending(self) -> bool:
        return self._emitter.count != self._flushed_count or bool(self._acks)

    def flush(self) -> None:
        """Turn every open batch into frames on ``outbox``."""
        if self._acks:
            self._flush_acks()
        for out in self._streams.values():
            for batch in out.batches.values():
                if len(batch):
                    self._flush_one(batch)
        self._flushed_count = self._emitter.count
        self._emitter.pending_bytes = 0

    def take_outbox(self) -> list[bytes]:
        """The finished frames, in order; the outbox starts empty again."""
        frames, self.outbox = self.outbox, []
        self.outbox_bytes = 0
        return frames

    def _flush_acks(self) -> None:
        for spout_task, body in self._acks.take():
            self.outbox.append(encode_ack(spout_task, self.task_id, body))

    def _flush_one(self, batch: Any) -> None:
        """One open batch -> a frame on ``outbox``; the batch starts empty again."""
        if self._acks:
            self._flush_acks()  # a spout's init must reach its stmgr before the tree's tuples
        tuples = len(batch)
        body = batch.take()
        try:
            frame = encode_data(
                batch.task, self.task_id, batch.stream, body, self.max_frame_bytes, tuples=tuples
            )
        except LocalProtocolError as exc:  # the emitter keeps batches within a frame
            self.dropped_frames += tuples
            self.logger.error("%d tuples on stream %r dropped: %s", tuples, batch.stream, exc)
            return
        self.outbox.append(frame)
        self.outbox_bytes += len(frame)

    # -- inbound --

    def process_batch(self, src_task: int, stream: str, tuples: list[Any]) -> None:
        """Call the bolt's ``process`` for every tuple of one received batch. At least
        once its entries are [*values, anchors]: a malformed batch raises
        `RemoteProtocolError` before any of it is processed, and a tuple whose
        ``process`` raises is failed at once (unless the bolt acked or failed it)."""
        component = self.task_components.get(src_task, "")
        deliver = self.path.deliver_reliable if self.reliable else self.path.deliver
        began = time.perf_counter()
        deliver(
            self.component.process,
            tuples,
            component,
            stream,
            src_task,
            time.time(),
            self._process_raised,
        )
        self.execute_seconds += time.perf_counter() - began  # per batch, not per tuple
        self.executed[(component, stream)] += len(tuples)

    def _process_raised(self, exc: Exception, tup: Any) -> None:
        self.user_exception("process", exc)
        roots = tup.roots  # None at most once, and for untracked tuples
        if roots is not None and not roots.done:
            self.fail(tup)

    def on_verdicts(self, body: bytes | memoryview) -> None:
        """The stmgr's verdicts on this spout's trees (an acking body): call
        ``ack``/``fail``. A malformed body raises `RemoteProtocolError`."""
        acked, latency, failed = self.in_flight.resolve(body, self.clock())
        self.completed += len(acked)
        self.spout_acked += len(acked)
        self.complete_latency_sum += latency
        self._ack_spout(acked)
        for tup_id in failed:
            self.spout_failed += 1
            self.call_user("fail", self.component.fail, tup_id)

    def _ack_spout(self, tup_ids: list[Any]) -> None:
        """The spout's ``ack`` for each id; not called when the class keeps heronpy's
        no-op ``Spout.ack``. An exception is reported and the other ids still go."""
        if not tup_ids or getattr(type(self.component), "ack", None) is Spout.ack:
            return
        ack = self.component.ack
        for tup_id in tup_ids:
            try:
                ack(tup_id)
            except Exception as exc:
                self.user_exception("ack", exc)

    def expire_in_flight(self) -> None:
        """Fail trees the stmgr never answered for (it died and forgot them)."""
        if self.instance_timeout is None or not len(self.in_flight):
            return
        now = self.clock()
        if now < self._next_expiry:
            return
        self._next_expiry = now + self.instance_timeout / 2
        for tup_id in self.in_flight.expire(now - self.instance_timeout):
            self.timed_out += 1
            self.spout_failed += 1
            self.call_user("fail", self.component.fail, tup_id)

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
        self.exception_log.record(where, exc, time.time())
        count = self.exceptions[name]
        text = message or f"{where}() raised {name}: {exc}"
        if count <= _FULL_LOGS_PER_TYPE:
            self.logger.error("%s", text, exc_info=exc)
        elif count % 1000 == 0:
            self.logger.error("%s (%d so far)", text, count)
