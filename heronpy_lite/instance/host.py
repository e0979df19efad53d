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

ATLEAST_ONCE (``reliable=True``): each tuple on the wire is
``[values, anchors]``, ``anchors`` a flat list of (spout task, root, edge id)
triples (see `wire/acking.py`). A spout emit with a ``tup_id`` creates a root
and registers it in ``in_flight``; bolt emits anchored to inputs derive new
edge ids; ``ack``/``fail`` queue updates per spout task, which leave as ACK
frames with the next flush (always *before* data frames, so a spout's init
reaches its stmgr before any tuple of the tree can). The stmgr's verdicts
come back through `on_verdicts`. ``in_flight`` roots are also expired here,
after ``2 * timeout + 1`` s, in case the stmgr holding them died.

User exceptions (``process``, ``next_tuple``, ``process_tick``, ``ack``...)
are caught by the caller through `user_exception`: logged (the first few of
each type with traceback, then every 1000th) and counted by type. The task
keeps running.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from heronpy_lite.api.spout.spout import Spout
from heronpy_lite.api.tuple import HeronTuple, TupleHelper
from heronpy_lite.errors import EmitError, LocalProtocolError
from heronpy_lite.instance.routing import MEMO_KEYS, OutputRouter
from heronpy_lite.wire.acking import AckBatch
from heronpy_lite.wire.frames import encode_ack, encode_data
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


class _Batch(list[Any]):
    """The open batch of one destination task: created once, cleared at each flush,
    so a grouping can remember the batch itself rather than the task id."""

    __slots__ = ("stream", "task")

    def __init__(self, stream: str, task: int) -> None:
        super().__init__()
        self.stream = stream
        self.task = task


class _StreamOut:
    """Per output stream: arity, routes, and the open batch of each destination."""

    __slots__ = ("arity", "batches", "emitted", "has_direct", "routes", "single", "stream")

    def __init__(self, stream: str, arity: int, routes: list[Any], has_direct: bool) -> None:
        self.stream = stream
        self.arity = arity
        self.routes = routes
        self.has_direct = has_direct
        self.batches = {task: _Batch(stream, task) for route in routes for task in route.tasks}
        #: emits through the general paths (the fast emitter's are counted by the host)
        self.emitted = 0
        #: the one route of a stream with one consumer and no DIRECT: the fast emitter
        self.single = routes[0] if len(routes) == 1 and not has_direct else None


class Anchors:
    """``HeronTuple.roots`` in ATLEAST_ONCE: ``flat`` (spout task, root, edge id)
    triples as received, the tuple's ack value (XOR of the edges of tuples anchored
    to it) and whether it was acked or failed."""

    __slots__ = ("ack_val", "done", "flat")

    def __init__(self, flat: list[int]) -> None:
        self.flat = flat
        self.ack_val = 0
        self.done = False


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
        batch_max_bytes: int = 1 << 20,
        reliable: bool = False,
        message_timeout_secs: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topology = topology
        self.task_id = task_id
        self.component_name = component
        self.is_spout = is_spout
        self.logger = logger
        self.batch_max_tuples = batch_max_tuples
        self.max_frame_bytes = max_frame_bytes
        self.max_tuple_bytes = max_frame_bytes  # str/bytes values alone larger: never fits
        self.batch_max_bytes = batch_max_bytes
        self.pending_bytes = 0  # str/bytes values held in open batches
        self.outbox_bytes = 0
        self.task_components = task_components
        self._streams = {
            stream: _StreamOut(stream, router.arity[stream], routes, router.has_direct[stream])
            for stream, routes in router.routes.items()
        }
        self.component: Any = None
        self.outbox: list[bytes] = []
        self.emit_count = 0
        self._flushed_count = 0  # emit_count at the last flush: has_pending compares
        self.immediate_acks: list[Any] = []
        # counters (the metrics issue exports these)
        self.executed: Counter[tuple[str, str]] = Counter()
        self.acked = 0
        self.failed = 0
        self.exceptions: Counter[str] = Counter()
        self.dropped_unserializable = 0
        # ATLEAST_ONCE
        self.reliable = reliable
        self.clock = clock
        self._rand = random.Random().getrandbits
        self._acks_out: dict[int, AckBatch] = {}
        #: this spout's (root, init XOR) pairs since the last flush (kept: see _fast_emitter)
        self._own_init: list[int] = []
        #: spout: root -> (tup_id, emitted at)
        self.in_flight: dict[int, tuple[Any, float]] = {}
        self.instance_timeout = 2 * message_timeout_secs + 1 if message_timeout_secs else None
        self._next_expiry = clock() + (self.instance_timeout or 0) / 2
        self.completed = 0
        self.spout_acked = 0
        self.spout_failed = 0
        self.execute_seconds = 0.0
        self.process_latency_count = 0
        self.process_latency_sum = 0.0
        self.complete_latency_sum = 0.0
        self.timed_out = 0
        if reliable:
            self.emit = self._emit_reliable  # type: ignore[method-assign]
        fast = self._fast_emitter()
        if fast is not None:
            self.emit = fast  # type: ignore[method-assign]

    # -- the delegate interface (called by user code) --

    def emit(
        self,
        tup: Any,
        tup_id: Any = None,
        stream: str = "default",
        direct_task: int | None = None,
        need_task_ids: bool = False,
        anchors: Any = None,
    ) -> list[int] | None:
        """The delegate's emit. Positional order is `Spout.emit`'s, so a spout that
        does not override ``emit`` gets this method itself (one call less per tuple).
        A task whose default stream allows it replaces this with `_fast_emitter`."""
        return self._emit_general(tup, tup_id, stream, direct_task, need_task_ids)

    def _fast_emitter(self) -> Callable[..., list[int] | None] | None:
        """``emit`` for the common case, built once per task, or None: the default
        stream, one consumer whose grouping picks exactly one task, no anchors. The
        checks are `_destinations`' and a failing emit sends nothing; the destination
        batch is remembered per fields key; per-stream counts come from ``emit_count``
        (see `emitted`). In ATLEAST_ONCE a spout emit with an id starts its tree here
        (one destination: the init XOR is the one edge). Any other call goes to the
        general path (`_emit_general`, `_emit_reliable`)."""
        out = self._streams.get("default")
        route = out.single if out is not None else None
        if out is None or route is None or not route.one_task:
            return None
        name, arity, batches, choose = out.stream, out.arity, out.batches, route.choose
        reliable = self.reliable
        general = self._emit_reliable if reliable else self._emit_general
        flush_one = self._flush_one
        limit, batch_max_bytes = self.batch_max_tuples, self.batch_max_bytes
        max_tuple_bytes = self.max_tuple_bytes
        const = batches[route.tasks[0]] if len(route.tasks) == 1 else None
        key_index = route.key_index
        memo: dict[str, _Batch] = {}
        memo_get = memo.get
        is_spout, task_id = self.is_spout, self.task_id
        immediate = self.immediate_acks if is_spout else None
        own_init, in_flight, clock, rand = self._own_init, self.in_flight, self.clock, self._rand
        host = self

        def chosen_batch(tup: Any, key: Any) -> _Batch:
            batch = batches[choose(tup, None)[0]]
            if type(key) is str and len(memo) < MEMO_KEYS:
                memo[key] = batch
            return batch

        def emit(
            tup: Any,
            tup_id: Any = None,
            stream: str = "default",
            direct_task: int | None = None,
            need_task_ids: bool = False,
            anchors: Any = None,
        ) -> list[int] | None:
            if stream != name or direct_task is not None or need_task_ids or anchors:
                return general(tup, tup_id, stream, direct_task, need_task_ids, anchors)
            kind = type(tup)
            if kind is list:
                tup = tup[:]
            elif kind is not tuple:
                tup = list(tup)
            if len(tup) != arity:
                raise host._arity_error(tup, stream, arity)
            size = 0
            for value in tup:
                kind = type(value)
                if kind is str or kind is bytes:
                    size += len(value)
            if size > max_tuple_bytes:
                raise host._size_error(size, stream)
            if const is not None:
                batch = const
            elif key_index is None:
                batch = batches[choose(tup, None)[0]]
            else:
                key = tup[key_index]
                hit = memo_get(key) if type(key) is str else None
                batch = hit if hit is not None else chosen_batch(tup, key)
            if not reliable:
                batch.append(tup)
                if tup_id is not None and immediate is not None:
                    # heronpy acks a spout tuple with an id right after next_tuple
                    immediate.append(tup_id)
            elif tup_id is None or not is_spout:
                batch.append([tup, []])  # not part of any tree
            else:
                root = rand(64) or 1
                edge = rand(64) or 1
                own_init.append(root)
                own_init.append(edge)
                in_flight[root] = (tup_id, clock())
                batch.append([tup, [task_id, root, edge]])
            host.emit_count += 1
            if len(batch) >= limit:
                flush_one(batch)
            if size:
                pending = host.pending_bytes + size
                host.pending_bytes = pending
                if pending > batch_max_bytes:
                    host.flush()
            return None

        return emit

    def _emit_general(
        self,
        tup: Any,
        tup_id: Any,
        stream: str,
        direct_task: int | None,
        need_task_ids: bool,
        anchors: Any = None,
    ) -> list[int] | None:
        """Any emit in ATMOST_ONCE (``anchors`` mean nothing there)."""
        out, tup, chosen, size = self._destinations(tup, stream, direct_task)
        self._deliver(out, chosen, [tup] * len(chosen), size)
        if tup_id is not None and self.is_spout:
            self.immediate_acks.append(tup_id)
        return list(chosen) if need_task_ids else None

    def _deliver(self, out: _StreamOut, chosen: list[int], entries: list[Any], size: int) -> None:
        """Append one emit's entries to the batches of ``chosen``; count; bound bytes."""
        batches = out.batches
        limit = self.batch_max_tuples
        for task, entry in zip(chosen, entries, strict=True):
            batch = batches[task]
            batch.append(entry)
            if len(batch) >= limit:
                self._flush_one(batch)
        out.emitted += 1
        self.emit_count += 1
        if size:
            self.pending_bytes += size * len(chosen)
            if self.pending_bytes > self.batch_max_bytes:
                self.flush()

    @property
    def emitted(self) -> dict[str, int]:
        """Tuples emitted, by stream (streams with none left out). The general paths
        count per stream; every other emit went through the fast emitter, whose
        stream is the default one."""
        counts = {s: out.emitted for s, out in self._streams.items()}
        fast = self.emit_count - sum(counts.values())
        if fast:
            counts["default"] += fast
        return {s: n for s, n in counts.items() if n}

    def _arity_error(self, tup: Any, stream: str, arity: int) -> EmitError:
        return EmitError(
            f"{self.component_name} emits {len(tup)} values on stream "
            f"{stream!r}, which declares {arity} fields"
        )

    def _size_error(self, size: int, stream: str) -> EmitError:
        return EmitError(
            f"{self.component_name} emits a tuple of {size} bytes on stream {stream!r}; "
            f"the limit is {self.max_tuple_bytes} (heron.wire.max.frame.bytes)"
        )

    def _destinations(
        self, tup: Any, stream: str, direct_task: int | None
    ) -> tuple[_StreamOut, Any, list[int], int]:
        """Validate an emit and choose every destination, before touching a batch:
        an emit that raises (arity, a DIRECT consumer without direct_task, a bad
        custom grouping) sends nothing."""
        out = self._streams.get(stream)
        if out is None:
            raise EmitError(
                f"{self.component_name} emits on stream {stream!r}, which its "
                "outputs do not declare"
            )
        if type(tup) is not tuple:
            tup = list(tup)
        if len(tup) != out.arity:
            raise self._arity_error(tup, stream, out.arity)
        if direct_task is not None and not out.has_direct:
            raise EmitError(
                f"direct_task given, but no consumer of stream {stream!r} uses Grouping.DIRECT"
            )
        # Sizes of the str/bytes values: a clear error for a tuple no frame can hold,
        # and a byte bound on open batches (nested values are checked at flush).
        size = 0
        for value in tup:
            kind = type(value)
            if kind is bytes or kind is str:
                size += len(value)
        if size > self.max_tuple_bytes:
            raise self._size_error(size, stream)
        routes = out.routes
        if len(routes) == 1:
            chosen = routes[0].choose(tup, direct_task)
        else:
            chosen = [task for route in routes for task in route.choose(tup, direct_task)]
        return out, tup, chosen, size

    def _emit_reliable(
        self,
        tup: Any,
        tup_id: Any = None,
        stream: str = "default",
        direct_task: int | None = None,
        need_task_ids: bool = False,
        anchors: Any = None,
    ) -> list[int] | None:
        out, tup, chosen, size = self._destinations(tup, stream, direct_task)
        rand = self._rand
        entries: list[list[Any]]
        if self.is_spout and tup_id is not None:
            root = rand(64) or 1
            xor = 0
            entries = []
            for _ in chosen:
                edge = rand(64)
                xor ^= edge
                entries.append([tup, [self.task_id, root, edge]])
            if chosen:
                self._own_init.extend((root, xor))
                self.in_flight[root] = (tup_id, self.clock())
            else:
                self.immediate_acks.append(tup_id)  # no consumer: the tree is complete
        elif anchors:
            entries = [[tup, self._anchor(anchors, rand)] for _ in chosen]
        else:
            entries = [[tup, []]] * len(chosen)
        self._deliver(out, chosen, entries, size)
        return list(chosen) if need_task_ids else None

    def _anchor(self, anchors: Any, rand: Callable[[int], int]) -> list[int]:
        """The anchors of one new tuple copy: a fresh edge id per anchor (Storm's scheme)."""
        ids: dict[tuple[int, int], int] = {}
        for a in anchors:
            roots = getattr(a, "roots", None)
            if type(roots) is not Anchors:
                continue
            if roots.done:
                self.logger.error("emit anchored to a tuple already acked or failed; not anchored")
                continue
            edge = rand(64)
            roots.ack_val ^= edge
            flat = roots.flat
            for i in range(0, len(flat), 3):
                key = (flat[i], flat[i + 1])
                ids[key] = ids.get(key, 0) ^ edge
        return [x for (task, root), edge in ids.items() for x in (task, root, edge)]

    def _acks_for(self, spout_task: int) -> AckBatch:
        """The ack traffic to ``spout_task`` since the last flush."""
        batch = self._acks_out.get(spout_task)
        if batch is None:
            batch = self._acks_out[spout_task] = AckBatch()
        return batch

    def ack(self, tup: Any) -> None:
        if not isinstance(tup, HeronTuple):
            self.logger.error("ack() takes the HeronTuple given to process(), got %r", tup)
            return
        roots = tup.roots
        if type(roots) is Anchors:
            if roots.done:
                self.logger.warning("a tuple was acked or failed twice; ignoring the repeat")
                return
            roots.done = True
            flat, ack_val = roots.flat, roots.ack_val
            if len(flat) == 3:  # one root: the common case
                self._acks_for(flat[0]).update.extend((flat[1], flat[2] ^ ack_val))
            else:
                for i in range(0, len(flat), 3):
                    self._acks_for(flat[i]).update.extend((flat[i + 1], flat[i + 2] ^ ack_val))
        self.process_latency_count += 1
        self.process_latency_sum += time.time() - tup.creation_time
        self.acked += 1

    def fail(self, tup: Any) -> None:
        if not isinstance(tup, HeronTuple):
            self.logger.error("fail() takes the HeronTuple given to process(), got %r", tup)
            return
        roots = tup.roots
        if type(roots) is Anchors:
            if roots.done:
                self.logger.warning("a tuple was acked or failed twice; ignoring the repeat")
                return
            roots.done = True
            flat = roots.flat
            for i in range(0, len(flat), 3):
                self._acks_for(flat[i]).fail.append(flat[i + 1])
        self.failed += 1

    def ack_immediately(self) -> None:
        """Call the spout's ``ack`` for the ids emitted since the last call that need no
        tree: every id in ATMOST_ONCE (heronpy's rule), an emit without consumers."""
        if not self.immediate_acks:
            return
        ids = self.immediate_acks[:]
        self.immediate_acks.clear()  # kept: the fast emitter holds this list
        self.spout_acked += len(ids)
        self._ack_spout(ids)

    def log(self, message: str, level: str | None = None) -> None:
        if level not in _LOG_LEVELS:
            raise ValueError(f"log level {level!r} is not one of trace, debug, info, warn, error")
        self.logger.log(_LOG_LEVELS[level], message)

    # -- batching --

    @property
    def has_pending(self) -> bool:
        return self.emit_count != self._flushed_count or bool(self._acks_out or self._own_init)

    def flush(self) -> None:
        """Turn every open batch into frames on ``outbox``."""
        if self._acks_out or self._own_init:
            self._flush_acks()
        for out in self._streams.values():
            for batch in out.batches.values():
                if batch:
                    self._flush_one(batch)
        self._flushed_count = self.emit_count
        self.pending_bytes = 0

    def take_outbox(self) -> list[bytes]:
        """The finished frames, in order; the outbox starts empty again."""
        frames, self.outbox = self.outbox, []
        self.outbox_bytes = 0
        return frames

    def _flush_acks(self) -> None:
        if self._own_init:
            self._acks_for(self.task_id).init.extend(self._own_init)
            self._own_init.clear()
        for spout_task, batch in self._acks_out.items():
            self.outbox.append(encode_ack(spout_task, self.task_id, batch.encode()))
        self._acks_out.clear()

    def _flush_one(self, batch: _Batch) -> None:
        """One open batch -> frame(s) on ``outbox``; the batch starts empty again."""
        self._flush_batch(batch.stream, batch.task, batch)
        batch.clear()

    def _flush_batch(self, stream: str, task: int, batch: list[Any]) -> None:
        if self._acks_out or self._own_init:
            self._flush_acks()  # a spout's init must reach its stmgr before the tree's tuples
        try:
            body = pack_batch(batch)
        except (TypeError, ValueError, OverflowError):
            batch = self._drop_unserializable(stream, batch)
            if not batch:
                return
            body = pack_batch(batch)
        try:
            frame = encode_data(
                task, self.task_id, stream, body, self.max_frame_bytes, tuples=len(batch)
            )
            self.outbox.append(frame)
            self.outbox_bytes += len(frame)
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
        new, cls = tuple.__new__, HeronTuple  # skips namedtuple.__new__
        began = time.perf_counter()
        for values in tuples:
            try:
                process(new(cls, (None, component, stream, src_task, values, now, None)))
            except Exception as exc:
                self.user_exception("process", exc)
        self.execute_seconds += time.perf_counter() - began  # per batch, not per tuple
        self.executed[(component, stream)] += len(tuples)

    def process_batch_reliable(self, src_task: int, stream: str, tuples: list[Any]) -> None:
        """``process_batch`` for ATLEAST_ONCE: entries are [values, anchors]. A tuple
        whose ``process`` raises is failed at once (unless the bolt acked or failed it)."""
        process = self.component.process
        component = self.task_components.get(src_task, "")
        now = time.time()
        new, cls = tuple.__new__, HeronTuple  # skips namedtuple.__new__
        began = time.perf_counter()
        for values, flat in tuples:
            if flat:
                roots = Anchors(flat)
                tup = new(cls, (flat[2], component, stream, src_task, values, now, roots))
            else:
                tup = new(cls, (None, component, stream, src_task, values, now, None))
            try:
                process(tup)
            except Exception as exc:
                self.user_exception("process", exc)
                if flat and not roots.done:
                    self.fail(tup)
        self.execute_seconds += time.perf_counter() - began
        self.executed[(component, stream)] += len(tuples)

    def on_verdicts(self, batch: AckBatch) -> None:
        """The stmgr's verdicts on this spout's trees: call ``ack``/``fail``."""
        now = self.clock()
        spout = self.component
        in_flight = self.in_flight
        completed = 0
        latency = 0.0
        acked_ids = []
        for root in batch.acked:
            entry = in_flight.pop(root, None)
            if entry is not None:
                completed += 1
                latency += now - entry[1]
                acked_ids.append(entry[0])
        self.completed += completed
        self.spout_acked += completed
        self.complete_latency_sum += latency
        self._ack_spout(acked_ids)
        for root in batch.failed:
            entry = in_flight.pop(root, None)
            if entry is not None:
                self.spout_failed += 1
                self.call_user("fail", spout.fail, entry[0])

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
        if self.instance_timeout is None or not self.in_flight:
            return
        now = self.clock()
        if now < self._next_expiry:
            return
        self._next_expiry = now + self.instance_timeout / 2
        deadline = now - self.instance_timeout
        expired = [root for root, (_, t) in self.in_flight.items() if t < deadline]
        for root in expired:
            tup_id, _ = self.in_flight.pop(root)
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
        count = self.exceptions[name]
        text = message or f"{where}() raised {name}: {exc}"
        if count <= _FULL_LOGS_PER_TYPE:
            self.logger.error("%s", text, exc_info=exc)
        elif count % 1000 == 0:
            self.logger.error("%s (%d so far)", text, count)
