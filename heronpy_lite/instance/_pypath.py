"""The tuple path in pure Python: the reference for `_cpath.c`, and its fallback.

Theory of operation
-------------------
Four kinds of object carry every tuple of a task; nothing else in the task
does work per tuple:

- `Emitter`: the task's ``emit``. It takes the task's `StreamSpec` list
  (`routing`) and does everything an emit needs: it checks the stream and
  the arity, chooses every destination (evaluating shuffle, fields, all and
  one-task routes itself, calling a route's ``choose`` for direct and custom
  ones), packs the values once, appends an entry to each destination's
  `Batch`, and at least once starts the spout's tuple tree or anchors the
  bolt's tuple. An emit that raises sends nothing. Entries are *packed*: a
  tuple is msgpack-encoded when it is emitted, as heronpy serializes at emit,
  so a bad value fails at the ``emit`` call and a tuple mutated afterwards is
  sent as it was. Batches become DATA frames in the emitter's ``outbox``:
  before an entry that would outgrow a frame, once a batch holds
  ``batch_max_tuples``, when the open batches hold ``batch_max_bytes``, and
  at `flush`. Each destination task has one open batch at a time, whatever
  the stream, so that tuples reach it in emit order. The acking traffic
  (`AckOut`) is framed before any data frame that follows it.
- `AckOut`: the bolt's ``ack``/``fail`` and the task's acking traffic, per
  spout task, until `take`.
- `InFlight`: a spout's trees in flight, and its verdicts into tuple ids.
- `deliver` / `deliver_reliable`: one received batch into ``process`` calls;
  `call_repeatedly`: the spout loop's calls of ``next_tuple``.

Misuse that costs nothing but a message (an ack of something that is not a
received tuple, a tuple acked twice, an emit anchored to a finished tuple)
goes to ``warn``; the task's logger rate-limits it. Nothing here calls back
into the task.

Entries on the wire: at most once, an entry is the tuple's values array. At
least once it is the values followed by one more item, the tuple's anchors:
a binary string of little-endian u64 (spout task, root, edge id) triples,
empty for a tuple outside any tree.

Both implementations take the same arguments and behave the same (the
`TuplePath` protocol in `tuplepath.py`); ``tests/unit/test_tuplepath.py``
and the task tests run each test against both.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgpack
import msgpack.fallback

from heronpy_lite.api.tuple import HeronTuple
from heronpy_lite.errors import EmitError, RemoteProtocolError
from heronpy_lite.instance.routing import ALL, FIELDS, ONE, SHUFFLE, RouteSpec, StreamSpec
from heronpy_lite.wire.acking import AckBatch
from heronpy_lite.wire.frames import data_body_limit, encode_ack, encode_data
from heronpy_lite.wire.tuples import unpack_batch

_TRIPLE = struct.Struct("<QQQ")
_packer = msgpack.Packer(use_bin_type=True, autoreset=True)
_pack: Callable[[Any], bytes] = _packer.pack
_random64: Callable[[int], int] = random.Random().getrandbits

#: process latency is timed on a bolt's first ack and every 16th (Storm samples its
#: latency statistics the same way, topology.stats.sample.rate)
LATENCY_SAMPLE = 16
#: how far below a value the packer allows objects, given that values sit 3 levels
#: deep in a body and msgpack refuses more than its recursion limit either way
_VALUE_NEST_LIMIT = msgpack.fallback.DEFAULT_RECURSE_LIMIT - 3
_CONTAINERS = (list, tuple, dict)
_MASK64 = (1 << 64) - 1
_ARRAY_HEADER_MAX = 5  # msgpack array32 header: a body is its entries plus this at most


#: a received DATA body -> its entries (the C path shares recent short strings)
unpack = unpack_batch


def array_header(n: int) -> bytes:
    """The msgpack header of an array of ``n`` items."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def pack(values: Any) -> bytes:
    """One value as msgpack (``use_bin_type``), exactly as msgpack-python packs it."""
    return _pack(values)


def _too_deep(values: Any) -> bool:
    """Whether an object sits more than _VALUE_NEST_LIMIT levels below one of the
    values (the C packer checks this as it packs)."""
    stack = [(v, 0) for v in values if isinstance(v, _CONTAINERS)]
    while stack:
        container, depth = stack.pop()
        if depth >= _VALUE_NEST_LIMIT and container:
            return True
        items = (
            [*container.keys(), *container.values()] if isinstance(container, dict) else container
        )
        stack.extend((c, depth + 1) for c in items if isinstance(c, _CONTAINERS))
    return False


def triples(flat: bytes) -> Iterator[tuple[int, int, int]]:
    """The (spout task, root, edge id) triples of an anchors string."""
    return _TRIPLE.iter_unpack(flat)


class Batch:
    """The open batch of one stream to one destination task: packed entries and
    their count (the emitter appends to ``_parts`` and ``nbytes`` itself)."""

    __slots__ = ("_parts", "dest", "nbytes", "stream", "task")

    def __init__(self, stream: str, task: int, dest: _Destination) -> None:
        self.stream = stream
        self.task = task
        self.dest = dest
        self._parts: list[bytes] = []
        #: bytes of the entries held (the body adds at most 5 for the array header)
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._parts)

    def take(self) -> bytes:
        """The DATA body of everything held; the batch is empty again."""
        parts = self._parts
        body = array_header(len(parts)) + b"".join(parts)
        parts.clear()
        self.nbytes = 0
        return body


class InFlight:
    """A spout's trees in flight: root -> (tuple id, emitted at)."""

    __slots__ = ("_trees",)

    def __init__(self) -> None:
        self._trees: dict[int, tuple[Any, float]] = {}

    def __len__(self) -> int:
        return len(self._trees)

    def add(self, root: int, tup_id: Any, emitted: float) -> None:
        """A new tree."""
        self._trees[root] = (tup_id, emitted)

    def resolve(self, body: bytes | memoryview, now: float) -> tuple[list[Any], float, list[Any]]:
        """A spout's verdicts (an acking body): remove each acked and failed root;
        returns (acked ids, their summed latency, failed ids). Roots no longer in
        flight (expired here already) are skipped."""
        batch = AckBatch.decode(body)
        trees = self._trees
        acked: list[Any] = []
        latency = 0.0
        for root in batch.acked:
            entry = trees.pop(root, None)
            if entry is not None:
                acked.append(entry[0])
                latency += now - entry[1]
        failed = [entry[0] for root in batch.failed if (entry := trees.pop(root, None))]
        return acked, latency, failed

    def expire(self, deadline: float) -> list[Any]:
        """Remove the trees emitted before ``deadline``; their tuple ids."""
        expired = [root for root, (_, emitted) in self._trees.items() if emitted < deadline]
        return [self._trees.pop(root)[0] for root in expired]

    def clear(self) -> None:
        self._trees.clear()


class Anchors:
    """``HeronTuple.roots`` at least once: the tuple's anchors as received
    (``flat``), its ack value (the XOR of the edge ids of the tuples anchored to
    it) and whether it was acked or failed."""

    __slots__ = ("ack_val", "done", "flat")

    def __init__(self, flat: bytes) -> None:
        self.flat = flat
        self.ack_val = 0
        self.done = False


class _Destination:
    """One destination task. Of its batches (one per stream) at most one holds
    entries, the open one: an emit on another stream to it sends the open batch
    first, so that its tuples leave, and arrive, in emit order whatever their
    streams (Storm's and Heron's guarantee)."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open: Batch | None = None


class _Route:
    __slots__ = ("batches", "by_task", "choose", "kind", "next")

    def __init__(self, spec: RouteSpec, batches: dict[int, Batch]) -> None:
        self.kind = spec.kind
        self.batches = [batches[t] for t in spec.tasks]
        self.by_task = {t: batches[t] for t in spec.tasks}
        self.choose: Any = spec.choose
        self.next = random.randrange(len(self.batches)) if self.batches else 0


class _Stream:
    __slots__ = ("arity", "count", "direct", "max_entry", "name", "routes")

    def __init__(self, spec: StreamSpec, batches: dict[int, Batch], max_frame_bytes: int) -> None:
        self.name = spec.name
        self.arity = spec.arity
        self.direct = spec.direct
        self.max_entry = data_body_limit(spec.name, max_frame_bytes) - _ARRAY_HEADER_MAX
        self.routes = [_Route(r, batches) for r in spec.routes]
        self.count = 0


class _Emitter:
    """A task's ``emit`` (see the module docstring), called with Spout.emit's
    positional order, or Bolt.emit's when ``bolt``; both accept all six
    keywords. Finished frames, acking frames first, collect in ``outbox``."""

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
    ) -> None:
        if batch_max_tuples < 1:
            raise ValueError("batch_max_tuples must be at least 1")
        destinations: dict[int, _Destination] = {}
        self._streams: dict[str, _Stream] = {}
        for spec in streams:
            batches: dict[int, Batch] = {}
            for route in spec.routes:
                for task in route.tasks:
                    dest = destinations.setdefault(task, _Destination())
                    batches[task] = Batch(spec.name, task, dest)
            self._streams[spec.name] = _Stream(spec, batches, max_frame_bytes)
        self._destinations = list(destinations.values())
        self._task_id = task_id
        self._component = component
        self._bolt = bolt
        self._reliable = reliable
        self._limit = batch_max_tuples
        self._batch_max_bytes = batch_max_bytes
        self._max_frame_bytes = max_frame_bytes
        self._in_flight = in_flight
        self._acks = acks
        self._warn = warn
        self._clock = clock
        self._busy = False
        #: roots: consecutive from a random start (what the C tables index by)
        self._next_root = _random64(64)
        #: spout: ids to ack right after the round (at most once, or no consumer)
        self.immediate: list[Any] = []
        #: finished frames, in the order they must be written, and their bytes
        self.outbox: list[bytes] = []
        self.outbox_bytes = 0
        #: tuples emitted (every stream); emits rejected for their values
        self.count = 0
        self.rejected = 0
        #: bytes of the entries in open batches
        self.open_bytes = 0

    def __call__(self, tup: Any, *args: Any, **kwargs: Any) -> list[int] | None:
        raise NotImplementedError  # _SpoutEmitter's or _BoltEmitter's

    # -- what the task reads --

    def counts(self) -> dict[str, int]:
        """Tuples emitted by stream (streams with none left out)."""
        return {name: s.count for name, s in self._streams.items() if s.count}

    @property
    def has_pending(self) -> bool:
        """Whether open batches or acking traffic wait for a flush."""
        return self.open_bytes > 0 or bool(self._acks)

    def flush(self) -> None:
        """Every open batch, and the acking traffic, into the outbox."""
        if self._acks:
            self._frame_acks()
        for dest in self._destinations:
            batch = dest.open
            if batch is not None and batch._parts:
                self._frame(batch)

    def take(self) -> list[bytes]:
        """The finished frames, in order; the outbox starts empty again."""
        frames, self.outbox = self.outbox, []
        self.outbox_bytes = 0
        return frames

    # -- emit --

    def _emit(
        self,
        tup: Any,
        tup_id: Any,
        stream: str,
        direct_task: Any,
        need_task_ids: Any,
        anchors: Any,
    ) -> list[int] | None:
        if self._busy:
            raise RuntimeError("emit() called while an emit is in progress")
        out = self._streams.get(stream)
        if out is None:
            raise EmitError(
                f"{self._component} emits on stream {stream!r}, which its outputs do not declare"
            )
        if type(tup) is not tuple:
            tup = tuple(tup)  # as it is now: routing and packing can run Python code
        if len(tup) != out.arity:
            raise EmitError(
                f"{self._component} emits {len(tup)} values on stream {stream!r}, "
                f"which declares {out.arity} fields"
            )
        if direct_task is not None and not out.direct:
            raise EmitError(
                f"direct_task given, but no consumer of stream {stream!r} uses Grouping.DIRECT"
            )
        batches: list[Batch] = []
        for route in out.routes:
            kind = route.kind
            if kind == ONE:
                batches.append(route.batches[0])
            elif kind == SHUFFLE:
                i = route.next
                route.next = i + 1 if i + 1 < len(route.batches) else 0
                batches.append(route.batches[i])
            elif kind == ALL:
                batches.extend(route.batches)
            elif kind == FIELDS:
                (task,) = route.choose(tup, None)
                batches.append(route.by_task[task])
            else:
                self._busy = True  # user code (a custom grouping) must not emit meanwhile
                try:
                    chosen = route.choose(list(tup), direct_task)
                finally:
                    self._busy = False
                by_task = route.by_task
                batches.extend(by_task[t] for t in chosen)
        if self._reliable and self._bolt and anchors is not None:
            if isinstance(anchors, HeronTuple):
                anchors = [anchors]  # heronpy takes a list; one tuple is meant as [tuple]
            elif type(anchors) is not list and type(anchors) is not tuple:
                anchors = list(anchors)
        if len(batches) == 1 and not self._reliable:
            self._send_one(out, tup, batches[0], tup_id)
        else:
            self._send(out, tup, batches, tup_id, anchors)
        return [b.task for b in batches] if need_task_ids else None

    def _send_one(self, out: _Stream, tup: Any, batch: Batch, tup_id: Any) -> None:
        """`_send` at most once to one batch: what most emits are, in fewer steps."""
        entry = self._packed(out, tup, b"", False)
        if tup_id is not None and not self._bolt:
            self.immediate.append(tup_id)
        # `_add`, inlined: the common emit
        dest = batch.dest
        if dest.open is not batch:
            if dest.open is not None and dest.open._parts:
                self._frame(dest.open)
            dest.open = batch
        n = len(entry)
        if batch.nbytes + n > out.max_entry:
            self._frame(batch)
        parts = batch._parts
        parts.append(entry)
        batch.nbytes += n
        self.open_bytes += n
        if len(parts) >= self._limit:
            self._frame(batch)
        out.count += 1
        self.count += 1
        if self.open_bytes > self._batch_max_bytes:
            self.flush()

    def _send(
        self, out: _Stream, tup: Any, batches: list[Batch], tup_id: Any, anchors: Any
    ) -> None:
        """Pack ``tup`` into each of ``batches``; start or extend its tree at least
        once; count it."""
        spout = not self._bolt
        if not self._reliable:
            entries = [self._packed(out, tup, b"", False)] * len(batches)
            if tup_id is not None and spout:
                self.immediate.append(tup_id)
        elif spout and tup_id is not None:
            entries = self._start_tree(out, tup, tup_id, len(batches))
        elif not spout and anchors:
            entries = []
            for _ in batches:
                flat, edges = self._anchor(anchors)
                entries.append(self._packed(out, tup, flat, True))
                for roots, edge in edges:  # only once the copy is known to fit
                    roots.ack_val ^= edge
        else:
            entries = [self._packed(out, tup, b"", True)] * len(batches)
        for batch, entry in zip(batches, entries, strict=True):
            self._add(out, batch, entry)
        out.count += 1
        self.count += 1
        if self.open_bytes > self._batch_max_bytes:
            self.flush()

    def _add(self, out: _Stream, batch: Batch, entry: bytes) -> None:
        """One entry into ``batch``: the destination's other open batch leaves
        first (emit order), and so does this one if the frame would overflow; a
        batch that reaches the tuple limit leaves right after."""
        dest = batch.dest
        if dest.open is not batch:
            if dest.open is not None and dest.open._parts:
                self._frame(dest.open)
            dest.open = batch
        n = len(entry)
        if batch.nbytes + n > out.max_entry:
            self._frame(batch)
        parts = batch._parts
        parts.append(entry)
        batch.nbytes += n
        self.open_bytes += n
        if len(parts) >= self._limit:
            self._frame(batch)

    def _frame(self, batch: Batch) -> None:
        """One batch -> a DATA frame in the outbox, after any acking traffic (a
        spout's init must reach its stmgr before the tree's tuples)."""
        if self._acks:
            self._frame_acks()
        tuples = len(batch)
        self.open_bytes -= batch.nbytes
        frame = encode_data(
            batch.task,
            self._task_id,
            batch.stream,
            batch.take(),
            self._max_frame_bytes,
            tuples=tuples,
        )
        self.outbox.append(frame)
        self.outbox_bytes += len(frame)

    def _frame_acks(self) -> None:
        for spout_task, body in self._acks.take():
            frame = encode_ack(spout_task, self._task_id, body, self._max_frame_bytes)
            self.outbox.append(frame)
            self.outbox_bytes += len(frame)

    def _packed(self, out: _Stream, tup: Any, anchors: bytes, reliable: bool) -> bytes:
        """One entry, [*values] or, ``reliable``, [*values, anchors]; `EmitError` for
        values msgpack refuses, a tuple too large for a frame, or one nested too deep
        for the receiver (each level takes a byte at least: only long entries are
        walked)."""
        try:
            entry = _pack([*tup, anchors]) if reliable else _pack(tup)
        except (TypeError, ValueError, OverflowError) as exc:
            raise self._refused(out, exc) from exc
        if len(entry) > out.max_entry:
            raise self._refused(out, len(entry))
        if len(entry) > _VALUE_NEST_LIMIT and _too_deep(tup):
            raise self._refused(out, ValueError("recursion limit exceeded."))
        return entry

    def _refused(self, out: _Stream, why: Exception | int) -> EmitError:
        """The error for an emit whose values cannot be packed or are too large."""
        self.rejected += 1
        if isinstance(why, Exception):
            return EmitError(f"values on stream {out.name!r} are not msgpack-serializable: {why}")
        return EmitError(
            f"{self._component} emits a tuple of {why} bytes on stream "
            f"{out.name!r}; the limit is {out.max_entry} (heron.wire.max.frame.bytes)"
        )

    def _start_tree(self, out: _Stream, tup: Any, tup_id: Any, copies: int) -> list[bytes]:
        if not copies:
            self._packed(out, tup, b"", True)  # checked all the same
            self.immediate.append(tup_id)  # no consumer: complete already
            return []
        root = self._next_root
        self._next_root = (root + 1) & _MASK64
        xor = 0
        entries = []
        for _ in range(copies):
            edge = _random64(64) or 1
            xor ^= edge
            entries.append(self._packed(out, tup, _TRIPLE.pack(self._task_id, root, edge), True))
        self._acks.init(self._task_id, root, xor)
        self._in_flight.add(root, tup_id, self._clock())
        return entries

    def _anchor(self, anchors: Any) -> tuple[bytes, list[tuple[Anchors, int]]]:
        """The anchors of one new tuple copy, a fresh edge id per input (Storm's
        scheme), and the (input's anchors, edge) pairs to XOR into the inputs' ack
        values once the copy is known to fit in a frame."""
        ids: dict[tuple[int, int], int] = {}
        edges: list[tuple[Anchors, int]] = []
        for a in anchors:
            roots = a.roots if isinstance(a, HeronTuple) else None
            if type(roots) is not Anchors:
                continue
            if roots.done:
                self._warn("emit anchored to a tuple already acked or failed; not anchored")
                continue
            edge = _random64(64) or 1
            edges.append((roots, edge))
            for task, root, _ in triples(roots.flat):
                ids[(task, root)] = ids.get((task, root), 0) ^ edge
        flat = b"".join(_TRIPLE.pack(task, root, edge) for (task, root), edge in ids.items())
        return flat, edges


class _SpoutEmitter(_Emitter):
    def __call__(
        self,
        tup: Any,
        tup_id: Any = None,
        stream: str = "default",
        direct_task: Any = None,
        need_task_ids: Any = False,
        anchors: Any = None,
    ) -> list[int] | None:
        return self._emit(tup, tup_id, stream, direct_task, need_task_ids, anchors)


class _BoltEmitter(_Emitter):
    def __call__(
        self,
        tup: Any,
        stream: str = "default",
        anchors: Any = None,
        direct_task: Any = None,
        need_task_ids: Any = False,
        tup_id: Any = None,
    ) -> list[int] | None:
        return self._emit(tup, tup_id, stream, direct_task, need_task_ids, anchors)


def Emitter(  # the class's name in _cpath
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
) -> _Emitter:
    """A task's emitter: Spout.emit's positional order, or Bolt.emit's when ``bolt``."""
    cls = _BoltEmitter if bolt else _SpoutEmitter
    return cls(
        streams,
        task_id=task_id,
        component=component,
        bolt=bolt,
        reliable=reliable,
        batch_max_tuples=batch_max_tuples,
        batch_max_bytes=batch_max_bytes,
        max_frame_bytes=max_frame_bytes,
        in_flight=in_flight,
        acks=acks,
        warn=warn,
        clock=clock,
    )


#: the warning for a tuple acked or failed again
TWICE = "a tuple was acked or failed twice; ignoring the repeat"


class AckOut:
    """A task's ``ack``/``fail`` and its outgoing acking traffic by spout task.
    ``warn(message)`` hears of a misuse: an argument that is not a HeronTuple, a
    tuple acked or failed twice."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self._warn = warn
        self._out: dict[int, AckBatch] = {}
        self.acked = 0
        self.failed = 0
        self.latency_count = 0
        self.latency_sum = 0.0

    def __bool__(self) -> bool:
        return bool(self._out)

    def _batch(self, spout_task: int) -> AckBatch:
        batch = self._out.get(spout_task)
        if batch is None:
            batch = self._out[spout_task] = AckBatch()
        return batch

    def init(self, spout_task: int, root: int, value: int) -> None:
        """A spout's new tree: ``value`` is the XOR of its first edge ids."""
        self._batch(spout_task).init.extend((root, value))

    def ack(self, tup: Any) -> None:
        if self._settle(tup, "ack"):
            if not self.acked % LATENCY_SAMPLE:
                self.latency_count += 1
                self.latency_sum += time.time() - tup.creation_time
            self.acked += 1

    def fail(self, tup: Any) -> None:
        if self._settle(tup, "fail"):
            self.failed += 1

    def _settle(self, tup: Any, what: str) -> bool:
        """Send the updates ("ack") or fails ("fail") of tup's roots; False after a
        complaint."""
        if not isinstance(tup, HeronTuple):
            self._warn(f"{what}() takes the HeronTuple given to process(), got {tup!r:.80}")
            return False
        roots = tup.roots
        if type(roots) is Anchors:
            if roots.done:
                self._warn(TWICE)
                return False
            roots.done = True
            for task, root, edge in triples(roots.flat):
                batch = self._batch(task)
                if what == "ack":
                    batch.update.extend((root, edge ^ roots.ack_val))
                else:
                    batch.fail.append(root)
        return True

    def take(self) -> list[tuple[int, bytes]]:
        """Each spout task's acking body since the last call."""
        bodies = [(task, batch.encode()) for task, batch in self._out.items()]
        self._out.clear()
        return bodies


def call_repeatedly(
    fn: Callable[[], Any], times: int, in_flight: InFlight | None, max_pending: int
) -> tuple[int, Exception | None]:
    """Call ``fn()`` up to ``times`` times; stop after a call that raises (the
    exception is returned) or once ``in_flight`` (if not None) holds ``max_pending``
    entries. Returns (calls made, exception or None)."""
    for calls in range(1, times + 1):
        try:
            fn()
        except Exception as exc:
            return calls, exc
        if in_flight is not None and len(in_flight) >= max_pending:
            return calls, None
    return times, None


def deliver(
    process: Callable[[Any], Any],
    tuples: list[Any],
    component: str,
    stream: str,
    task: int,
    now: float,
    on_error: Callable[[Exception, Any], Any],
) -> None:
    """Call ``process`` with a HeronTuple for each values list of a batch."""
    new, cls = tuple.__new__, HeronTuple  # skips namedtuple.__new__
    for values in tuples:
        tup = new(cls, (None, component, stream, task, values, now, None))
        try:
            process(tup)
        except Exception as exc:
            on_error(exc, tup)


def deliver_reliable(
    process: Callable[[Any], Any],
    tuples: list[Any],
    component: str,
    stream: str,
    task: int,
    now: float,
    on_error: Callable[[Exception, Any], Any],
) -> None:
    """`deliver` for at-least-once entries ([*values, anchors]); a malformed batch
    raises `RemoteProtocolError` before any tuple of it is processed."""
    for entry in tuples:
        if type(entry) is not list or not entry:
            raise RemoteProtocolError("at-least-once entry is not a non-empty array")
        anchors = entry[-1]
        if type(anchors) is not bytes or len(anchors) % _TRIPLE.size:
            raise RemoteProtocolError("at-least-once entry without valid anchors")
    new, cls = tuple.__new__, HeronTuple
    for entry in tuples:
        flat = entry.pop()
        if flat:
            tup = new(
                cls,
                (_TRIPLE.unpack_from(flat)[2], component, stream, task, entry, now, Anchors(flat)),
            )
        else:
            tup = new(cls, (None, component, stream, task, entry, now, None))
        try:
            process(tup)
        except Exception as exc:
            on_error(exc, tup)
