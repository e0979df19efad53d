"""The tuple path in pure Python: the reference for `_cpath.c`, and its fallback.

Theory of operation
-------------------
Four kinds of object carry every tuple of a task; nothing else in the task
does work per tuple:

- `Batch`: the open batch of one destination task. It holds *packed* entries:
  a tuple is msgpack-encoded when it is emitted, as heronpy serializes at
  emit, so a bad value fails at the ``emit`` call and a tuple mutated
  afterwards is sent as it was. `take` returns the DATA body (one msgpack
  array of the entries) and leaves the batch empty.
- `Emitter`: the task's ``emit``. For a declared stream whose consumers all
  have a grouping it can evaluate (shuffle, none, fields, all, lowest) and a
  list or tuple of values, it checks the arity, packs the values once, picks
  the batches and appends; at least once it also starts the spout's tuple
  tree or anchors the bolt's tuple. Every other call (DIRECT or custom
  groupings, another iterable, an undeclared stream) goes to ``general``, the
  host's slow path, which chooses the batches itself and calls `Emitter.send`.
  A batch that would outgrow a frame is flushed before the entry is added;
  one that reaches the tuple limit right after. When the open batches hold
  ``batch_max_bytes`` the emitter asks the host to flush them all.
- `AckOut`: the bolt's ``ack``/``fail`` and the task's acking traffic, per
  spout task, until `take`.
- `InFlight`: a spout's trees in flight, and its verdicts into tuple ids.
- `deliver` / `deliver_reliable`: one received batch into ``process`` calls;
  `call_repeatedly`: the spout loop's calls of ``next_tuple``.

Entries on the wire: at most once, an entry is the tuple's values array. At
least once it is the values followed by one more item, the tuple's anchors:
a binary string of little-endian u64 (spout task, root, edge id) triples,
empty for a tuple outside any tree.

Both implementations take the same arguments and behave the same;
``tests/unit/test_tuplepath.py`` runs each test against both.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import msgpack.fallback

from heronpy_lite.api.tuple import HeronTuple
from heronpy_lite.errors import EmitError, RemoteProtocolError
from heronpy_lite.wire.acking import AckBatch
from heronpy_lite.wire.tuples import unpack_batch

_TRIPLE = struct.Struct("<QQQ")
_packer = msgpack.Packer(use_bin_type=True, autoreset=True)
_pack: Callable[[Any], bytes] = _packer.pack
_random64: Callable[[int], int] = random.Random().getrandbits

#: kinds of route the emitter evaluates itself (see `host._StreamOut.spec`)
ONE, SHUFFLE, ALL, FIELDS = "one", "shuffle", "all", "fields"
#: process latency is timed on a bolt's first ack and every 16th (Storm samples its
#: latency statistics the same way, topology.stats.sample.rate)
LATENCY_SAMPLE = 16
#: how far below a value the packer allows objects, given that values sit 3 levels
#: deep in a body and msgpack refuses more than its recursion limit either way
_VALUE_NEST_LIMIT = msgpack.fallback.DEFAULT_RECURSE_LIMIT - 3
_CONTAINERS = (list, tuple, dict)
_MASK64 = (1 << 64) - 1


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
    """The open batch of one destination task: packed entries and their count (the
    emitter appends to ``_parts`` and ``nbytes`` itself)."""

    __slots__ = ("_parts", "nbytes", "stream", "task")

    def __init__(self, stream: str, task: int) -> None:
        self.stream = stream
        self.task = task
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


class _Route:
    __slots__ = ("batches", "by_task", "choose", "kind", "next")

    def __init__(self, spec: tuple[Any, ...]) -> None:
        self.kind, self.batches, _keys, self.choose, self.by_task = spec
        self.next = random.randrange(len(self.batches)) if self.batches else 0


class _Stream:
    __slots__ = ("arity", "count", "max_entry", "name", "routes")

    def __init__(self, spec: tuple[Any, ...]) -> None:
        self.name, self.arity, self.max_entry, routes = spec
        self.routes = None if routes is None else [_Route(r) for r in routes]
        self.count = 0


class Emitter:
    """A task's ``emit`` (see the module docstring). ``streams`` holds one
    ``(name, arity, max_entry, routes)`` per declared stream, ``routes`` None
    when the stream needs ``general``; a route is ``(kind, batches, key
    indexes, choose, {task: batch})``. Called with Spout.emit's positional
    order, or Bolt.emit's when ``bolt``; both accept all six keywords."""

    def __init__(
        self,
        streams: list[tuple[Any, ...]],
        *,
        general: Callable[..., list[int] | None],
        flush_one: Callable[[Batch], None],
        flush_all: Callable[[], None],
        component: str,
        batch_max_tuples: int,
        batch_max_bytes: int,
        bolt: bool,
        reliable: bool,
        task_id: int,
        immediate: list[Any] | None,
        in_flight: InFlight,
        acks: AckOut,
        clock: Callable[[], float],
        anchor_done: Callable[[], None],
    ) -> None:
        self._streams = {spec[0]: _Stream(spec) for spec in streams}
        self._general = general
        self._flush_one = flush_one
        self._flush_all = flush_all
        self._component = component
        self._limit = batch_max_tuples
        self._batch_max_bytes = batch_max_bytes
        self._bolt = bolt
        self._reliable = reliable
        self._task_id = task_id
        self._immediate = immediate
        self._in_flight = in_flight
        self._acks = acks
        self._clock = clock
        self._anchor_done = anchor_done
        #: roots: consecutive from a random start (what the C tables index by)
        self._next_root = _random64(64)
        #: tuples emitted (every stream); emits rejected for their values
        self.count = 0
        self.rejected = 0
        #: bytes of the entries in open batches since the host last flushed them all
        self.pending_bytes = 0

    def __new__(cls, *args: Any, bolt: bool, **kwargs: Any) -> Emitter:
        return object.__new__(_BoltEmitter if bolt else _SpoutEmitter)

    def counts(self) -> dict[str, int]:
        """Tuples emitted by stream (streams with none left out)."""
        return {name: s.count for name, s in self._streams.items() if s.count}

    def _emit(
        self,
        tup: Any,
        tup_id: Any,
        stream: str,
        direct_task: Any,
        need_task_ids: Any,
        anchors: Any,
    ) -> list[int] | None:
        out = self._streams.get(stream)
        if (
            out is None
            or out.routes is None
            or direct_task is not None
            or (type(tup) is not list and type(tup) is not tuple)
            or (
                self._reliable
                and self._immediate is None
                and anchors is not None
                and type(anchors) is not list
                and type(anchors) is not tuple
            )
        ):
            return self._general(
                tup,
                tup_id=tup_id,
                stream=stream,
                direct_task=direct_task,
                need_task_ids=need_task_ids,
                anchors=anchors,
            )
        if len(tup) != out.arity:
            raise EmitError(
                f"{self._component} emits {len(tup)} values on stream {stream!r}, "
                f"which declares {out.arity} fields"
            )
        if type(tup) is list:
            tup = tuple(tup)  # as it is now: routing and packing can run Python code
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
            else:
                (task,) = route.choose(tup, None)
                batches.append(route.by_task[task])
        if len(batches) == 1 and not self._reliable:
            self._send_one(out, tup, batches[0], tup_id)
        else:
            self.send(stream, tup, batches, tup_id, anchors)
        return [b.task for b in batches] if need_task_ids else None

    def _send_one(self, out: _Stream, tup: Any, batch: Batch, tup_id: Any) -> None:
        """`send` at most once to one batch: what most emits are, in fewer steps."""
        entry = self._packed(out, tup, b"", False)
        n = len(entry)
        if tup_id is not None and self._immediate is not None:
            self._immediate.append(tup_id)
        if batch.nbytes + n > out.max_entry:
            self._flush_one(batch)
        parts = batch._parts
        parts.append(entry)
        batch.nbytes += n
        if len(parts) >= self._limit:
            self._flush_one(batch)
        out.count += 1
        self.count += 1
        self.pending_bytes += n
        if self.pending_bytes > self._batch_max_bytes:
            self._flush_all()

    def send(self, stream: str, tup: Any, batches: list[Batch], tup_id: Any, anchors: Any) -> None:
        """Pack ``tup`` (a list or tuple of the stream's arity) into each of ``batches``;
        start or extend its tree at least once; count it."""
        out = self._streams[stream]
        if type(tup) is list:
            tup = tuple(tup)
        spout = self._immediate is not None
        if not self._reliable:
            entries = [self._packed(out, tup, b"", False)] * len(batches)
            if tup_id is not None and spout:
                self._immediate.append(tup_id)  # type: ignore[union-attr]
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
        limit, space = self._limit, out.max_entry
        flush_one = self._flush_one
        size = 0
        for batch, entry in zip(batches, entries, strict=True):
            n = len(entry)
            if batch.nbytes + n > space:
                flush_one(batch)  # the frame would overflow: send what it holds first
            parts = batch._parts
            parts.append(entry)
            batch.nbytes += n
            size += n
            if len(parts) >= limit:
                flush_one(batch)
        out.count += 1
        self.count += 1
        self.pending_bytes += size
        if self.pending_bytes > self._batch_max_bytes:
            self._flush_all()

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
            self._immediate.append(tup_id)  # type: ignore[union-attr]  # no consumer: complete
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
                self._anchor_done()
                continue
            edge = _random64(64) or 1
            edges.append((roots, edge))
            for task, root, _ in triples(roots.flat):
                ids[(task, root)] = ids.get((task, root), 0) ^ edge
        flat = b"".join(_TRIPLE.pack(task, root, edge) for (task, root), edge in ids.items())
        return flat, edges


class _SpoutEmitter(Emitter):
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


class _BoltEmitter(Emitter):
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


class AckOut:
    """A task's ``ack``/``fail`` and its outgoing acking traffic by spout task.
    ``complain(what, tup)`` logs a misuse: ``what`` is "ack" or "fail" for an
    argument that is not a HeronTuple, "twice" for a tuple already acked or failed."""

    def __init__(self, complain: Callable[[str, Any], None]) -> None:
        self._complain = complain
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
            self._complain(what, tup)
            return False
        roots = tup.roots
        if type(roots) is Anchors:
            if roots.done:
                self._complain("twice", tup)
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
