"""The tuple path's contract, on both implementations (the ``tuple_path``
fixture): packing byte for byte as msgpack-python does, fields routing as
`Route.choose` does, the emit call's arguments, delivery, acks, verdicts."""

from __future__ import annotations

import enum
import math
import random
import struct
from collections import OrderedDict
from types import ModuleType
from typing import Any

import msgpack
import msgpack.fallback
import pytest
from routing_components import Sink, WordSpout, component_tasks, make_host, one_consumer

from heronpy_lite.api import Bolt, Grouping, HeronTuple, TopologyBuilder
from heronpy_lite.api.topology import definition_of
from heronpy_lite.errors import EmitError, RemoteProtocolError
from heronpy_lite.instance.routing import RouteSpec, choose_tasks, stable_hash, stream_specs
from heronpy_lite.instance.task import TaskInstance
from heronpy_lite.wire.acking import AckBatch
from heronpy_lite.wire.frames import FrameDecoder
from heronpy_lite.wire.tuples import unpack_batch

# ------------------------------------------------------------------- packing


class Color(enum.IntEnum):
    RED = 1


class Name(str):
    pass


EDGE_INTS = [
    0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63),
]  # fmt: skip
SIZES = [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536]


def edge_values() -> list[Any]:
    values: list[Any] = [None, True, False, 0.0, -0.0, 1.5, 1e308, math.inf, -math.inf]
    values += EDGE_INTS
    values += ["x" * n for n in SIZES] + [b"y" * n for n in SIZES]
    values += [list(range(n)) for n in (0, 15, 16, 70000)] + [tuple(range(16))]
    values += [{str(i): i for i in range(n)} for n in (0, 15, 16, 70000)]
    values += ["héllo wörld ✓", "\U0001f600" * 40, {1: "int key", None: [b"", {}]}]
    values += [Color.RED, Name("sub"), OrderedDict(a=1), [[[[]]]], {"n": [1, {"m": (2, 3)}]}]
    return values


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(2**63), 2**64 - 1) >> rng.randrange(64)
    if kind == 2:
        return rng.uniform(-1e6, 1e6)
    if kind == 3:
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(40)))
    if kind == 4:
        return rng.randbytes(rng.randrange(300))
    if kind == 5:
        return -rng.randrange(2**40)
    if kind == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(20))]
    if kind == 7:
        return tuple(random_value(rng, depth + 1) for _ in range(rng.randrange(5)))
    return {
        str(random_value(rng, 4)): random_value(rng, depth + 1) for _ in range(rng.randrange(6))
    }


def reference(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize("value", edge_values(), ids=lambda v: type(v).__name__)
def test_pack_writes_exactly_what_msgpack_writes(c_path: ModuleType, value: Any) -> None:
    assert c_path.pack(value) == reference(value)
    assert c_path.pack([value, value]) == reference([value, value])


def test_pack_matches_msgpack_on_random_nested_values(c_path: ModuleType) -> None:
    rng = random.Random(7)
    for _ in range(2000):
        value = random_value(rng)
        assert c_path.pack(value) == reference(value), value
    assert c_path.pack(math.nan) == reference(math.nan)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (object(), TypeError),
        ({1, 2}, TypeError),
        (2**64, OverflowError),
        (-(2**63) - 1, OverflowError),
    ],
    ids=["object", "set", "too-big", "too-small"],
)
def test_pack_refuses_what_msgpack_refuses(c_path: ModuleType, value: Any, error: type) -> None:
    with pytest.raises(error):
        c_path.pack([1, value])
    assert c_path.pack([1]) == reference([1])  # and goes on


def test_pack_refuses_nesting_deeper_than_msgpack_allows(c_path: ModuleType) -> None:
    limit = msgpack.fallback.DEFAULT_RECURSE_LIMIT
    for depth, ok in ((limit, True), (limit + 1, False)):
        deep: list[Any] = [1]
        for _ in range(depth - 1):
            deep = [deep]
        if ok:
            assert c_path.pack(deep) == reference(deep)
        else:
            with pytest.raises(ValueError):
                reference(deep)
            with pytest.raises(ValueError):
                c_path.pack(deep)


def test_a_batch_holds_packed_entries_and_gives_one_frame(tuple_path: ModuleType) -> None:
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout")
    emitter = host.emitter
    assert (emitter.open_bytes, emitter.has_pending) == (0, False)
    values = [["w", i] for i in range(20)]
    for v in values:
        host.emit(v)
    assert emitter.open_bytes == sum(len(reference(v)) for v in values) and emitter.has_pending
    assert emitter.outbox == []
    emitter.flush()
    (frame,) = emitter.take()
    (decoded,) = FrameDecoder().feed(frame)
    assert (decoded.dst_task, decoded.src_task, decoded.stream, decoded.tuples) == (
        2,
        1,
        "default",
        20,
    )
    assert unpack_batch(decoded.body) == values
    assert (emitter.open_bytes, emitter.has_pending, emitter.outbox_bytes) == (0, False, 0)
    emitter.flush()
    assert emitter.take() == []


# ----------------------------------------------------------- emit and routing


def sent(host: TaskInstance) -> dict[int, list[Any]]:
    host.flush()
    out: dict[int, list[Any]] = {}
    for frame in FrameDecoder().feed(b"".join(host.take_output())):
        out.setdefault(frame.dst_task, []).extend(unpack_batch(frame.body))  # type: ignore[union-attr]
    return out


KEYS = ["word", "", "ünïcode", 0, 1, -1, 2**47, 2**48 + 3, -(2**62), 2**63, b"raw", 1.5, None,
        True, [1, 2], Name("sub"), Color.RED]  # fmt: skip


def reference_route(builder: TopologyBuilder) -> RouteSpec:
    """The spout's one route, whose definition (`routing.choose_tasks`) the
    emitters are held to."""
    definition = definition_of(builder)
    (route,) = stream_specs(definition, "spout", component_tasks(definition))["default"].routes
    return route


def test_fields_grouping_sends_every_key_where_its_definition_says(tuple_path: ModuleType) -> None:
    builder = one_consumer(Grouping.fields("word"), par=5)
    host = make_host(builder, "spout")
    route = reference_route(builder)
    expected: dict[int, list[Any]] = {}
    for i, key in enumerate(KEYS * 3):
        host.emit([key, i])
        (task,) = choose_tasks(route, [key, i], None)
        expected.setdefault(task, []).append([key, i])
    got = sent(host)
    assert {t: [v[1] for v in vs] for t, vs in got.items()} == {
        t: [v[1] for v in vs] for t, vs in expected.items()
    }


def test_fields_grouping_on_two_fields_agrees_with_its_definition(tuple_path: ModuleType) -> None:
    builder = one_consumer(Grouping.fields("count", "word"), par=7)
    host = make_host(builder, "spout")
    route = reference_route(builder)
    rng = random.Random(3)
    emitted = [[rng.choice(KEYS[:9]), rng.choice(KEYS[:9])] for _ in range(300)]
    for values in emitted:
        host.emit(values)
    got = sent(host)
    for values in emitted:
        (task,) = choose_tasks(route, values, None)
        assert values in got[task]


def test_shuffle_is_round_robin_and_all_copies_to_every_task(tuple_path: ModuleType) -> None:
    b = TopologyBuilder("t")
    s = b.add_spout("spout", WordSpout, par=1)
    b.add_bolt("shuf", Sink, par=3, inputs={s: Grouping.SHUFFLE})  # tasks 2-4
    b.add_bolt("all", Sink, par=2, inputs={s: Grouping.ALL})  # tasks 5-6
    host = make_host(b, "spout")
    for i in range(9):
        assert host.emit(["w", i], need_task_ids=True)[-2:] == [5, 6]
    got = sent(host)
    assert [len(got[t]) for t in (2, 3, 4)] == [3, 3, 3]
    assert got[5] == got[6] == [["w", i] for i in range(9)]


class Nothing(WordSpout):
    pass


def test_spout_emit_takes_spout_emit_s_order_and_every_keyword(tuple_path: ModuleType) -> None:
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout")
    host.emit(["a", 1], "id-a")  # tup_id is the second positional, as in Spout.emit
    host.emit(["b", 2], None, "default", None, True)
    host.emit(["c", 3], stream="default", tup_id="id-c", need_task_ids=False)
    assert host.emit(["d", 4], need_task_ids=1) == [2]
    host.emit(x for x in ("e", 5))  # any iterable
    with pytest.raises(TypeError):
        host.emit(["f", 6], stream="default", bogus=1)
    with pytest.raises(TypeError):
        host.emit(["f", 6], "id", tup_id="twice")
    assert host.emitter.immediate == ["id-a", "id-c"]
    assert sent(host) == {2: [["a", 1], ["b", 2], ["c", 3], ["d", 4], ["e", 5]]}


class Relay(Bolt):
    outputs = ["word", "count"]

    def process(self, tup: Any) -> None:
        pass


def relay_host(**options: Any) -> TaskInstance:
    """The relay bolt (task 2) of spout -> relay -> sink (task 3)."""
    b = TopologyBuilder("t")
    s = b.add_spout("spout", WordSpout, par=1)
    r = b.add_bolt("relay", Relay, par=1, inputs=[s])
    b.add_bolt("sink", Sink, par=1, inputs=[r])
    return make_host(b, "relay", **options)


def test_bolt_emit_takes_bolt_emit_s_order(tuple_path: ModuleType) -> None:
    host = relay_host()
    host.emit(["a", 1], "default", None)  # (tup, stream, anchors, ...), as in Bolt.emit
    assert host.emit(["b", 2], "default", [], None, True) == [3]
    host.emit(["c", 3], tup_id="ignored on a bolt")
    with pytest.raises(EmitError, match="'other'"):
        host.emit(["d", 4], "other")
    assert host.emitter.immediate == []
    assert sent(host) == {3: [["a", 1], ["b", 2], ["c", 3]]}


def test_emit_checks_arity_before_anything_is_sent(tuple_path: ModuleType) -> None:
    host = make_host(one_consumer(Grouping.fields("word"), par=2), "spout")
    with pytest.raises(
        EmitError, match="spout emits 3 values on stream 'default', which declares 2"
    ):
        host.emit(["a", 1, 2], tup_id="x")
    assert host.emitter.immediate == [] and not host.has_pending and host.emit_count == 0


def test_full_batches_leave_at_emit_and_bytes_bound_the_open_ones(tuple_path: ModuleType) -> None:
    host = make_host(one_consumer(Grouping.SHUFFLE, par=2), "spout", batch_max_tuples=4)
    for i in range(8):
        host.emit(["w", i])
    assert len(host.emitter.outbox) == 2  # each destination's batch left as it reached 4
    assert sorted(v[1] for vs in sent(host).values() for v in vs) == list(range(8))
    host2 = make_host(one_consumer(Grouping.SHUFFLE, par=2), "spout", batch_max_bytes=3000)
    for i in range(4):
        host2.emit(["z" * 1000, i])
    # flushed at 3015 bytes: nothing is open
    assert len(host2.emitter.outbox) == 2 and host2.emitter.open_bytes == 1005
    assert sorted(v[1] for vs in sent(host2).values() for v in vs) == [0, 1, 2, 3]


# ----------------------------------------------------------------- delivery


def test_deliver_builds_heron_tuples_and_reports_exceptions(tuple_path: ModuleType) -> None:
    seen: list[Any] = []
    errors: list[tuple[str, Any]] = []

    def process(tup: Any) -> None:
        if tup.values[0] == "bad":
            raise ValueError("boom")
        seen.append(tup)

    tuples = [["a", 1], ["bad", 2], ["c", 3]]
    tuple_path.deliver(
        process, tuples, "src", "s", 4, 12.5, lambda e, t: errors.append((str(e), t))
    )
    assert [tuple(t) for t in seen] == [
        (None, "src", "s", 4, ["a", 1], 12.5, None),
        (None, "src", "s", 4, ["c", 3], 12.5, None),
    ]
    assert all(type(t) is HeronTuple for t in seen)
    assert [(e, t.values) for e, t in errors] == [("boom", ["bad", 2])]


def test_tuples_kept_by_process_keep_their_values_the_rest_read_right(
    tuple_path: ModuleType,
) -> None:
    kept: list[Any] = []
    read: list[Any] = []

    def process(tup: Any) -> None:
        read.append((tup.values[1], tup.id, tup.roots))
        if tup.values[1] % 3 == 0:
            kept.append(tup)

    tuple_path.deliver(process, [["w", i] for i in range(10)], "c", "s", 1, 0.0, print)
    assert read == [(i, None, None) for i in range(10)]
    assert [t.values for t in kept] == [["w", 0], ["w", 3], ["w", 6], ["w", 9]]
    read.clear()
    kept.clear()
    entries = [["w", i, TRIPLE.pack(1, 100 + i, 7 + i) if i % 2 else b""] for i in range(10)]
    tuple_path.deliver_reliable(process, entries, "c", "s", 1, 0.0, print)
    assert [(v, tid) for v, tid, _ in read] == [(i, 7 + i if i % 2 else None) for i in range(10)]
    assert [r is None for _, _, r in read] == [i % 2 == 0 for i in range(10)]
    assert [(t.values, t.id) for t in kept] == [(["w", 0], None), (["w", 3], 10), (["w", 6], None),
                                                (["w", 9], 16)]  # fmt: skip
    assert kept[1].roots.flat == TRIPLE.pack(1, 103, 10)


def test_deliver_lets_keyboard_interrupt_through(tuple_path: ModuleType) -> None:
    def process(tup: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tuple_path.deliver(process, [["a"]], "c", "s", 1, 0.0, lambda e, t: None)


TRIPLE = struct.Struct("<QQQ")


@pytest.mark.parametrize(
    "entry",
    [["no anchors"], [], "not a list", ["v", b"short"], ["v", "str anchors"]],
    ids=["values-only", "empty", "not-a-list", "short-anchors", "str-anchors"],
)
def test_deliver_reliable_refuses_a_malformed_batch_before_processing(
    tuple_path: ModuleType, entry: Any
) -> None:
    seen: list[Any] = []
    with pytest.raises(RemoteProtocolError):
        tuple_path.deliver_reliable(
            seen.append, [["ok", b""], entry], "c", "s", 1, 0.0, lambda e, t: None
        )
    assert seen == []


def test_deliver_reliable_gives_tracked_tuples_anchors_and_ids(tuple_path: ModuleType) -> None:
    seen: list[Any] = []
    flat = TRIPLE.pack(1, 99, 12345)
    tuple_path.deliver_reliable(
        seen.append, [["a", 1, flat], ["b", 2, b""]], "c", "s", 1, 0.0, lambda e, t: None
    )
    tracked, untracked = seen
    assert tracked.values == ["a", 1] and tracked.id == 12345
    assert (tracked.roots.flat, tracked.roots.ack_val, tracked.roots.done) == (flat, 0, False)
    assert untracked.values == ["b", 2] and untracked.id is None and untracked.roots is None


def test_ack_out_sends_updates_per_spout_task_and_complains_once(tuple_path: ModuleType) -> None:
    complaints: list[str] = []
    acks = tuple_path.AckOut(complaints.append)
    seen: list[Any] = []
    flat = TRIPLE.pack(1, 10, 0b1100) + TRIPLE.pack(2, 20, 0b0011)
    tuple_path.deliver_reliable(seen.append, [["a", flat]], "c", "s", 1, 0.0, print)
    (tup,) = seen
    tup.roots.ack_val = 0b0101
    assert not acks
    acks.ack(tup)
    acks.ack(tup)
    acks.fail(tup)
    acks.ack("not a tuple")
    assert complaints == [
        "a tuple was acked or failed twice; ignoring the repeat",
        "a tuple was acked or failed twice; ignoring the repeat",
        "ack() takes the HeronTuple given to process(), got 'not a tuple'",
    ]
    assert acks and (acks.acked, acks.failed, acks.latency_count) == (1, 0, 1)
    bodies = dict(acks.take())
    assert AckBatch.decode(bodies[1]) == AckBatch(update=[10, 0b1001])
    assert AckBatch.decode(bodies[2]) == AckBatch(update=[20, 0b0110])
    assert not acks and acks.take() == []


def test_in_flight_resolves_verdicts_and_skips_roots_no_longer_in_flight(
    tuple_path: ModuleType,
) -> None:
    in_flight = tuple_path.InFlight()
    for root, tup_id, emitted in [(5, "five", 1.0), (6, "six", 2.0), (7, "seven", 3.0)]:
        in_flight.add(root, tup_id, emitted)
    body = AckBatch(acked=[5, 6, 99], failed=[7, 98]).encode()
    acked, latency, failed = in_flight.resolve(body, 4.0)
    assert (acked, latency, failed, len(in_flight)) == (["five", "six"], 5.0, ["seven"], 0)
    with pytest.raises(RemoteProtocolError):
        in_flight.resolve(b"\x95", 0.0)


def test_in_flight_expires_exactly_the_trees_emitted_before_the_deadline(
    tuple_path: ModuleType,
) -> None:
    in_flight = tuple_path.InFlight()
    rng = random.Random(5)
    roots = list(dict.fromkeys(rng.getrandbits(64) | 1 for _ in range(5100)))[:5000]
    for i, root in enumerate(roots):
        in_flight.add(root, ("id", i), float(i % 100))
    expired = in_flight.expire(50.0)
    assert sorted(i for _, i in expired) == [i for i in range(5000) if i % 100 < 50]
    assert len(in_flight) == 2500
    body = AckBatch(acked=roots).encode()
    acked, _, _ = in_flight.resolve(body, 100.0)
    assert sorted(i for _, i in acked) == [i for i in range(5000) if i % 100 >= 50]
    in_flight.add(1, "x", 0.0)
    in_flight.clear()
    assert len(in_flight) == 0 and in_flight.expire(1e9) == []


def test_an_anchored_emit_merges_roots_and_xors_each_input(tuple_path: ModuleType) -> None:
    host = relay_host(reliable=True)
    inputs: list[Any] = []
    one = TRIPLE.pack(1, 10, 111)
    two = TRIPLE.pack(1, 10, 222) + TRIPLE.pack(1, 20, 333)
    tuple_path.deliver_reliable(
        inputs.append, [["a", 1, one], ["b", 2, two]], "spout", "default", 1, 0.0, print
    )
    host.emit(["x", 0], anchors=inputs)
    host.emit(["y", 0], anchors=inputs[0])  # one tuple, not a list: anchored all the same
    (x, y) = sent(host)[3]
    edges = {(task, root): edge for task, root, edge in TRIPLE.iter_unpack(x[2])}
    assert set(edges) == {(1, 10), (1, 20)}
    e1, e2 = inputs[0].roots.ack_val, inputs[1].roots.ack_val
    ((_, _, e1y),) = TRIPLE.iter_unpack(y[2])
    assert edges == {(1, 10): (e1 ^ e1y) ^ e2, (1, 20): e2}
    assert x[:2] == ["x", 0] and y[:2] == ["y", 0]


def test_call_repeatedly_stops_at_an_exception_or_at_max_pending(tuple_path: ModuleType) -> None:
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("third")

    done, exc = tuple_path.call_repeatedly(fn, 10, None, 0)
    assert done == 3 and isinstance(exc, ValueError) and str(exc) == "third"
    done, exc = tuple_path.call_repeatedly(fn, 4, None, 0)
    assert (done, exc, len(calls)) == (4, None, 7)
    in_flight = tuple_path.InFlight()
    done, exc = tuple_path.call_repeatedly(
        lambda: in_flight.add(len(in_flight) + 1, "id", 0.0), 10, in_flight, 4
    )
    assert (done, exc, len(in_flight)) == (4, None, 4)

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tuple_path.call_repeatedly(interrupt, 5, None, 0)


def test_in_flight_agrees_with_a_dict_on_random_traffic(tuple_path: ModuleType) -> None:
    """Consecutive roots (what an emitter draws), stragglers, random roots and roots
    whose low bits are all alike (which switch the table to its seeded mix), added,
    resolved and expired in random order: the table must agree with a dict."""
    rng = random.Random(11)
    in_flight = tuple_path.InFlight()
    model: dict[int, tuple[int, float]] = {}
    next_root = 2**64 - 3000  # the sequence wraps past 2**64 during the test
    for step in range(30_000):
        op = rng.random()
        if op < 0.55:
            kind = rng.random()
            if kind < 0.85:
                root, next_root = next_root, (next_root + 1) % 2**64
            elif kind < 0.95:
                root = rng.getrandbits(64)
            else:  # low bits all alike: what a hostile sender would choose
                root = rng.randrange(1, 1 << 20) << 32
            if root in model:
                continue
            model[root] = (step, float(step))
            in_flight.add(root, step, float(step))
        elif op < 0.95 and model:
            roots = rng.sample(sorted(model), min(len(model), rng.randrange(1, 40)))
            roots.append(rng.getrandbits(64))  # one that is not in flight
            half = len(roots) // 2
            acked, latency, failed = in_flight.resolve(
                AckBatch(acked=roots[:half], failed=roots[half:]).encode(), 1e6
            )
            assert acked == [model[r][0] for r in roots[:half] if r in model]
            assert failed == [model[r][0] for r in roots[half:] if r in model]
            assert latency == pytest.approx(
                sum(1e6 - model[r][1] for r in roots[:half] if r in model)
            )
            for r in roots:
                model.pop(r, None)
        elif model:
            deadline = float(step - rng.randrange(2000))
            expired = in_flight.expire(deadline)
            assert sorted(expired) == sorted(i for i, t in model.values() if t < deadline)
            model = {r: v for r, v in model.items() if v[1] >= deadline}
        assert len(in_flight) == len(model)


def test_the_c_stable_hash_is_the_definition_s_where_it_hashes(c_path: ModuleType) -> None:
    """The C emitter hashes str, bytes and 64-bit ints itself; anything else goes to
    the route's choose, which uses routing.stable_hash (the definition)."""
    rng = random.Random(17)
    native = [*KEYS[:9], *(random_value(rng, 4) for _ in range(3000))]
    for value in native:
        got = c_path.stable_hash(value)  # type: ignore[attr-defined]
        if type(value) in (str, bytes) or (type(value) is int and -(2**63) <= value < 2**63):
            assert got == stable_hash(value), value
        else:
            assert got is None, value


# ------------------------------------------------------------------ unpacking


def test_unpack_reads_back_what_msgpack_wrote(c_path: ModuleType) -> None:
    rng = random.Random(13)
    batches = [[[v] for v in edge_values()], [[random_value(rng)] for _ in range(3000)]]
    batches += [[], [[1.5]], [[]] * 20]
    for batch in batches:
        body = reference(batch)
        assert c_path.unpack(body) == unpack_batch(body)
        assert c_path.unpack(memoryview(body)) == unpack_batch(body)
    single = msgpack.packb([[1.5, -2.25]], use_single_float=True)
    assert c_path.unpack(single) == [[1.5, -2.25]]


def test_unpack_shares_recent_short_strings(c_path: ModuleType) -> None:
    body = reference([["word", "x" * 40, "wörd"], ["word", "x" * 40, "wörd"]])
    (a, b) = c_path.unpack(body)
    assert a == b == ["word", "x" * 40, "wörd"]
    assert a[0] is b[0]  # short ASCII: one object
    assert a[1] is not b[1] and a[2] is not b[2]  # long, or not ASCII: decoded each time


def test_unpack_hands_ext_types_to_msgpack(c_path: ModuleType) -> None:
    body = reference([[msgpack.ExtType(5, b"data"), 1]])
    assert c_path.unpack(body) == [[msgpack.ExtType(5, b"data"), 1]]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xc1",
        b"\x92\x01",
        b"\x91\x01\x02",
        b"\x91\xd9\x02\xff\xfe",
        b"\x91\x81\x91\x01\x01",
        b"\xdd\xff\xff\xff\xff",  # claims 4 billion entries
        b"\x91\xc6\xff\xff\xff\xff",  # a bin of 4 GiB
        reference({"a": 1}),
        reference(5),
        b"\x91" * 1024 + b"\x90",  # nested deeper than msgpack allows
    ],
    ids=[
        "empty",
        "never-used",
        "short",
        "extra",
        "bad-utf8",
        "unhashable-key",
        "huge-array",
        "huge-bin",
        "map",
        "int",
        "too-deep",
    ],
)
def test_unpack_refuses_what_unpack_batch_refuses(c_path: ModuleType, body: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as expected:
        unpack_batch(body)
    with pytest.raises(RemoteProtocolError) as got:
        c_path.unpack(body)
    assert str(got.value) == str(expected.value)


def test_unpack_takes_nesting_up_to_msgpack_s_limit(c_path: ModuleType) -> None:
    def depth(value: Any) -> int:  # == on such lists would exceed Python's recursion limit
        levels = 0
        while value:
            (value,) = value
            levels += 1
        return levels

    body = b"\x91" * 1023 + b"\x90"
    assert depth(c_path.unpack(body)) == depth(unpack_batch(body)) == 1023


def test_version_says_which_tuple_path_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from heronpy_lite.cli import version
    from heronpy_lite.extensions import NO_EXTENSIONS_ENV
    from heronpy_lite.instance import tuplepath
    from heronpy_lite.stmgr import acking

    monkeypatch.delenv(NO_EXTENSIONS_ENV, raising=False)
    if tuplepath.NATIVE is None or acking.NATIVE is None:
        assert version.tuple_path().startswith("pure Python (the C extensions were not built")
        assert tuplepath.default() is tuplepath.PURE
        return
    assert version.tuple_path() == "C extensions"
    assert tuplepath.default() is tuplepath.NATIVE
    monkeypatch.setenv(NO_EXTENSIONS_ENV, "1")
    assert version.tuple_path() == f"pure Python ({NO_EXTENSIONS_ENV} is set)"
    assert tuplepath.default() is tuplepath.PURE


# ------------------------------------------------ what the review found


class Shrinking(dict):
    """A value whose packing runs Python code that empties the list being emitted."""

    victim: list[Any] = []

    def items(self) -> Any:
        self.victim.clear()
        return super().items()


def test_a_list_changed_while_it_is_packed_is_sent_as_it_was(tuple_path: ModuleType) -> None:
    for grouping in (Grouping.SHUFFLE, Grouping.fields("count")):
        host = make_host(one_consumer(grouping, par=2), "spout")
        values: list[Any] = [Shrinking(a=1), "x" * 50]
        Shrinking.victim = values
        host.emit(values)
        host.emit(["next", 2])  # and the batch it shares is intact
        got = sorted((v for vs in sent(host).values() for v in vs), key=str)
        assert got == sorted([[{"a": 1}, "x" * 50], ["next", 2]], key=str)


def test_a_refused_anchored_emit_leaves_its_inputs_as_they_were(tuple_path: ModuleType) -> None:
    host = relay_host(reliable=True, max_frame_bytes=1024)
    inputs: list[Any] = []
    entries = [["a", 1, TRIPLE.pack(1, 10, 111)]]
    tuple_path.deliver_reliable(inputs.append, entries, "spout", "default", 1, 0.0, print)
    with pytest.raises(EmitError, match="a tuple of"):
        host.emit(["x" * 2000, 0], anchors=inputs)
    assert inputs[0].roots.ack_val == 0  # acking it still completes its tree
    host.emit(["y", 0], anchors=inputs)
    assert inputs[0].roots.ack_val != 0


def test_an_emit_anchored_to_many_roots_merges_them_all(tuple_path: ModuleType) -> None:
    host = relay_host(reliable=True)
    inputs: list[Any] = []
    first = b"".join(TRIPLE.pack(root % 7, root, 1) for root in range(3000))
    second = b"".join(TRIPLE.pack(root % 7, root, 2) for root in range(1500, 4500))
    entries = [["a", 1, first], ["b", 2, second]]
    tuple_path.deliver_reliable(inputs.append, entries, "spout", "default", 1, 0.0, print)
    host.emit(["x", 0], anchors=inputs)
    ((*_, flat),) = sent(host)[3]
    e1, e2 = inputs[0].roots.ack_val, inputs[1].roots.ack_val
    merged = {(task, root): edge for task, root, edge in TRIPLE.iter_unpack(flat)}
    expected: dict[tuple[int, int], int] = {}
    for edge, triples in ((e1, first), (e2, second)):
        for task, root, _ in TRIPLE.iter_unpack(triples):
            expected[(task, root)] = expected.get((task, root), 0) ^ edge
    assert merged == expected and len(merged) == 4500
    assert [key for key in merged] == list(expected)  # first seen, first written


def test_acks_for_many_spout_tasks_go_to_each_of_them(tuple_path: ModuleType) -> None:
    """100 spout tasks: more than AckOut scans (8) and more than it keeps past a take (64)."""
    acks = tuple_path.AckOut(lambda message: None)
    flat = b"".join(TRIPLE.pack(task, 1000 + task, task) for task in range(100))
    expected = {task: AckBatch(update=[1000 + task, task]) for task in range(100)}
    for _ in range(2):  # the second time, after the targets were forgotten
        seen: list[Any] = []
        tuple_path.deliver_reliable(seen.append, [["a", flat]], "c", "s", 1, 0.0, print)
        acks.ack(seen[0])
        bodies = {task: AckBatch.decode(body) for task, body in acks.take()}
        assert bodies == expected
    assert acks.take() == []


def test_a_value_too_deep_for_the_receiver_is_refused_at_emit(tuple_path: ModuleType) -> None:
    def nested(levels: int) -> Any:
        value: Any = [1]
        for _ in range(levels - 1):
            value = [value]
        return value

    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout")
    deepest = None
    for levels in range(1015, 1030):
        try:
            host.emit([nested(levels), 0])
        except EmitError as exc:
            assert "recursion limit exceeded" in str(exc)
            break
        deepest = levels
    assert deepest == 1021
    host.flush()
    (frame,) = FrameDecoder().feed(b"".join(host.take_output()))
    assert len(tuple_path.unpack(frame.body)) == 1021 - 1015 + 1  # the receiver takes them all
