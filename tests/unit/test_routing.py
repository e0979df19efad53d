"""Groupings at emit time (OutputRouter/Route) and the task host (TaskHost)."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from typing import Any

import pytest

from heronpy_lite.api import (
    Bolt,
    GlobalStreamId,
    Grouping,
    HeronTuple,
    ICustomGrouping,
    Spout,
    Stream,
    TopologyBuilder,
)
from heronpy_lite.api.topology import TopologyDefinition, definition_of
from heronpy_lite.errors import EmitError
from heronpy_lite.instance.host import TaskHost
from heronpy_lite.instance.routing import OutputRouter, Route, stable_hash
from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.wire.frames import DEFAULT_MAX_FRAME_BYTES, DataFrame, FrameDecoder
from heronpy_lite.wire.tuples import unpack_batch

# ----------------------------------------------------------------- topology helpers


class WordSpout(Spout):
    outputs = ["word", "count"]

    def next_tuple(self) -> None:
        pass


class MultiStreamSpout(Spout):
    outputs = ["word", "count", Stream(fields=["cmd"], name="control")]

    def next_tuple(self) -> None:
        pass


class Recorder(Bolt):
    outputs = ["out"]

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        pass

    def process(self, tup: Any) -> None:
        self.seen = [*getattr(self, "seen", []), tup]


class Sink(Bolt):
    def process(self, tup: Any) -> None:
        pass


def component_tasks(definition: TopologyDefinition, containers: int = 1) -> dict[str, list[int]]:
    plan = pack_round_robin(
        definition.name, [(c.name, c.par) for c in definition.components.values()], containers
    )
    return {name: plan.component_tasks(name) for name in definition.components}


def one_consumer(grouping: Any, par: int = 4, spout: type = WordSpout) -> TopologyBuilder:
    """spout (task 1) -> sink (tasks 2 .. par+1) with ``grouping`` on the default stream."""
    builder = TopologyBuilder("routing")
    words = builder.add_spout("spout", spout, par=1)
    builder.add_bolt("sink", Sink, par=par, inputs={words: grouping})
    return builder


def router_for(
    builder: TopologyBuilder, component: str = "spout", context: Any = None, containers: int = 1
) -> OutputRouter:
    definition = definition_of(builder)
    return OutputRouter(definition, component, component_tasks(definition, containers), context)


def route_counts(router: OutputRouter, values_list: list[list[Any]]) -> Counter[int]:
    counts: Counter[int] = Counter()
    for values in values_list:
        counts.update(router.destinations("default", values))
    return counts


# ------------------------------------------------------------------------- groupings


@pytest.mark.parametrize(
    "grouping", [Grouping.SHUFFLE, Grouping.NONE, Grouping.LOCAL_OR_SHUFFLE], ids=str
)
def test_shuffle_like_groupings_spread_exactly_evenly(grouping):
    n, k = 4, 25
    router = router_for(one_consumer(grouping, par=n))
    counts = route_counts(router, [["w", i] for i in range(n * k)])
    assert counts == {2: k, 3: k, 4: k, 5: k}


def test_shuffle_is_round_robin_every_window_of_n_hits_every_task_once():
    router = router_for(one_consumer(Grouping.SHUFFLE, par=3))
    seq = [router.destinations("default", ["w", i]) for i in range(30)]
    assert all(len(d) == 1 for d in seq)
    flat = [d[0] for d in seq]
    for start in range(0, 30, 3):
        assert sorted(flat[start : start + 3]) == [2, 3, 4]
    # strict rotation: the task after t is always the same one
    assert len({(a, b) for a, b in itertools.pairwise(flat)}) == 3


def test_shuffle_with_a_single_task_always_picks_it():
    router = router_for(one_consumer(Grouping.SHUFFLE, par=1))
    assert route_counts(router, [["w", i] for i in range(10)]) == {2: 10}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("apple", 2838417488),
        ("banana", 59467727),
        ("heron", 2088913833),
        ("", 0),
        (b"apple", 2838417488),
        (42, 42),
        (-1, 2**48 - 1),
        (2**60, 0),
        ([1, "a"], 3127263330),
        ((1, "a"), 3127263330),
        (1.5, 3622288468),
        (True, 3496967303),
        (None, 1231433021),
    ],
)
def test_stable_hash_is_a_fixed_function_independent_of_pythonhashseed(value, expected):
    # hard-coded values: these must be identical in every process of every run
    assert stable_hash(value) == expected


def test_fields_grouping_sends_a_key_to_its_hard_coded_task():
    router = router_for(one_consumer(Grouping.fields("word"), par=4))
    # tasks [2, 3, 4, 5]; index = crc32(word) % 4
    assert router.destinations("default", ["apple", 1]) == [2]  # 2838417488 % 4 == 0
    assert router.destinations("default", ["banana", 1]) == [5]  # 59467727 % 4 == 3
    assert router.destinations("default", ["heron", 1]) == [3]  # 2088913833 % 4 == 1


def test_fields_grouping_same_key_always_same_task_across_routers():
    keys = [f"key-{i}" for i in range(200)]
    first = router_for(one_consumer(Grouping.fields("word"), par=4))
    second = router_for(one_consumer(Grouping.fields("word"), par=4))
    mapping = {k: first.destinations("default", [k, 0]) for k in keys}
    for i in range(3):
        for k in keys:
            assert first.destinations("default", [k, i]) == mapping[k]
            assert second.destinations("default", [k, i + 100]) == mapping[k]
    assert {d[0] for d in mapping.values()} == {2, 3, 4, 5}  # keys spread over every task


def test_fields_grouping_on_an_int_field():
    router = router_for(one_consumer(Grouping.fields("count"), par=4))
    assert [router.destinations("default", ["x", i])[0] for i in range(8)] == [2, 3, 4, 5] * 2


def test_fields_grouping_on_multiple_fields():
    router = router_for(one_consumer(Grouping.fields("word", "count"), par=4))
    # ((0 * 31 + stable_hash("apple")) * 31 + stable_hash(7)) & (2**48 - 1) == 87990942135
    assert router.destinations("default", ["apple", 7]) == [5]  # 87990942135 % 4 == 3
    seen = {
        (w, c): router.destinations("default", [w, c]) for w in ("a", "b", "c") for c in range(5)
    }
    for (w, c), dest in seen.items():
        assert router.destinations("default", [w, c]) == dest
    assert len({d[0] for d in seen.values()}) > 1


def test_fields_grouping_field_order_is_the_grouping_order():
    # Grouping.fields("count", "word") hashes count first: a different function
    router = router_for(one_consumer(Grouping.fields("count", "word"), par=4))
    # ((0 * 31 + 7) * 31 + stable_hash("apple")) & mask == 2838417705, % 4 == 1
    assert router.destinations("default", ["apple", 7]) == [3]


def test_fields_grouping_ignores_the_other_fields():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", MultiStreamSpout, par=1)
    builder.add_bolt("sink", Sink, par=5, inputs={spout: Grouping.fields("word")})
    router = router_for(builder)
    dests = {tuple(router.destinations("default", ["same", i])) for i in range(50)}
    assert len(dests) == 1


def test_all_grouping_sends_to_every_task():
    router = router_for(one_consumer(Grouping.ALL, par=3))
    assert router.destinations("default", ["w", 1]) == [2, 3, 4]
    assert router.destinations("default", ["w", 2]) == [2, 3, 4]


@pytest.mark.parametrize("grouping", [Grouping.LOWEST, Grouping.GLOBAL], ids=["lowest", "global"])
def test_lowest_and_global_send_to_the_lowest_task_id(grouping):
    assert Grouping.GLOBAL == Grouping.LOWEST
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", WordSpout, par=3)  # tasks 1..3
    builder.add_bolt("sink", Sink, par=3, inputs={spout: grouping})  # tasks 4..6
    router = router_for(builder, containers=2)  # sink tasks spread over containers
    assert {tuple(router.destinations("default", ["w", i])) for i in range(10)} == {(4,)}


def test_direct_grouping_sends_to_the_given_task():
    router = router_for(one_consumer(Grouping.DIRECT, par=3))
    for task in (2, 3, 4):
        assert router.destinations("default", ["w", 1], direct_task=task) == [task]


def test_direct_grouping_without_direct_task_is_an_emit_error():
    router = router_for(one_consumer(Grouping.DIRECT, par=3))
    with pytest.raises(EmitError, match="direct_task"):
        router.destinations("default", ["w", 1])


@pytest.mark.parametrize("task", [1, 5, 0, -1, 99])
def test_direct_grouping_to_a_foreign_task_is_an_emit_error(task):
    router = router_for(one_consumer(Grouping.DIRECT, par=3))  # sink tasks 2..4
    with pytest.raises(EmitError, match=f"direct_task {task} is not a task of 'sink'"):
        router.destinations("default", ["w", 1], direct_task=task)


def test_direct_task_on_a_stream_without_a_direct_consumer_is_an_emit_error():
    router = router_for(one_consumer(Grouping.SHUFFLE, par=3))
    with pytest.raises(EmitError, match="no consumer"):
        router.destinations("default", ["w", 1], direct_task=2)


class RecordingGrouping(ICustomGrouping):
    """Sends each tuple to the target task at index ``values[1] % n``."""

    def __init__(self) -> None:
        self.prepared: list[tuple[Any, str, str, list[int]]] = []
        self.seen: list[list[Any]] = []

    def prepare(self, context: Any, component: str, stream: str, target_tasks: list[int]) -> None:
        self.prepared.append((context, component, stream, list(target_tasks)))
        self.targets = list(target_tasks)

    def choose_tasks(self, values: list[Any]) -> list[int]:
        self.seen.append(list(values))
        return [self.targets[values[1] % len(self.targets)]]


def test_custom_grouping_is_prepared_with_the_target_tasks_and_honoured():
    grouper = RecordingGrouping()
    context = object()
    router = router_for(one_consumer(Grouping.custom(grouper), par=3), context=context)
    assert grouper.prepared == [(context, "spout", "default", [2, 3, 4])]
    assert [router.destinations("default", ["w", i]) for i in range(4)] == [[2], [3], [4], [2]]
    assert grouper.seen == [["w", 0], ["w", 1], ["w", 2], ["w", 3]]


def test_custom_grouping_on_a_named_stream_is_prepared_with_that_stream():
    grouper = RecordingGrouping()
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", MultiStreamSpout, par=1)
    builder.add_bolt("sink", Sink, par=2, inputs={spout["control"]: Grouping.custom(grouper)})
    router_for(builder)
    assert [(c, s, t) for _, c, s, t in grouper.prepared] == [("spout", "control", [2, 3])]


class FixedGrouping(ICustomGrouping):
    def __init__(self, result: Any) -> None:
        self.result = result

    def prepare(self, context: Any, component: str, stream: str, target_tasks: list[int]) -> None:
        pass

    def choose_tasks(self, values: list[Any]) -> Any:
        return self.result


def test_custom_grouping_may_return_several_tasks_or_none():
    assert router_for(one_consumer(Grouping.custom(FixedGrouping([2, 4])), par=3)).destinations(
        "default", ["w", 1]
    ) == [2, 4]
    assert (
        router_for(one_consumer(Grouping.custom(FixedGrouping([])), par=3)).destinations(
            "default", ["w", 1]
        )
        == []
    )


@pytest.mark.parametrize(
    "result",
    [[1], [2, 99], (2,), None, 2, "2"],
    ids=["foreign", "partly-foreign", "tuple", "none", "int", "str"],
)
def test_custom_grouping_with_an_invalid_result_is_an_emit_error(result):
    router = router_for(one_consumer(Grouping.custom(FixedGrouping(result)), par=3))
    with pytest.raises(EmitError, match="choose_tasks returned"):
        router.destinations("default", ["w", 1])


def test_undeclared_stream_is_an_emit_error():
    router = router_for(one_consumer(Grouping.SHUFFLE))
    with pytest.raises(EmitError, match="'nope' is not declared"):
        router.destinations("nope", ["w", 1])


@pytest.mark.parametrize("values", [[], ["w"], ["w", 1, 2]])
def test_wrong_arity_is_an_emit_error(values):
    router = router_for(one_consumer(Grouping.SHUFFLE))
    with pytest.raises(EmitError, match=f"declares 2 fields, emit has {len(values)} values"):
        router.destinations("default", values)


def test_several_consumers_of_one_stream_each_get_their_share():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", WordSpout, par=1)  # task 1
    builder.add_bolt("all", Sink, par=2, inputs={spout: Grouping.ALL})  # 2, 3
    builder.add_bolt("low", Sink, par=2, inputs={spout: Grouping.LOWEST})  # 4, 5
    builder.add_bolt("shuf", Sink, par=2, inputs=[spout])  # 6, 7
    router = router_for(builder)
    counts = route_counts(router, [["w", i] for i in range(10)])
    assert counts == {2: 10, 3: 10, 4: 10, 6: 5, 7: 5}


def test_streams_route_independently_and_unconsumed_streams_go_nowhere():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", MultiStreamSpout, par=1)  # task 1
    builder.add_bolt("data", Sink, par=2, inputs={spout: Grouping.ALL})  # 2, 3
    builder.add_bolt(
        "ctl", Sink, par=2, inputs={GlobalStreamId("spout", "control"): Grouping.ALL}
    )  # 4, 5
    builder.add_bolt("leaf", Recorder, par=1, inputs={spout["control"]: Grouping.ALL})  # 6
    router = router_for(builder)
    assert router.destinations("default", ["w", 1]) == [2, 3]
    assert router.destinations("control", ["stop"]) == [4, 5, 6]
    leaf = router_for(builder, component="leaf")
    assert leaf.destinations("default", ["x"]) == []  # declared, no consumer
    assert router.arity == {"default": 2, "control": 1}


def test_route_sorts_its_tasks():
    route = Route("sink", Grouping.LOWEST, [9, 3, 5], ["word"])
    assert route.tasks == [3, 5, 9]
    assert route.choose(["w"], None) == [3]
    assert not route.is_direct
    assert Route("sink", Grouping.DIRECT, [1], ["word"]).is_direct


# ---------------------------------------------------------------------------- TaskHost


def make_host(
    builder: TopologyBuilder,
    component: str,
    *,
    batch_max_tuples: int = 1024,
    batch_max_bytes: int = 1 << 20,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> TaskHost:
    """A host built as the instance runner builds it, with the component attached."""
    definition = definition_of(builder)
    plan = pack_round_robin(
        definition.name, [(c.name, c.par) for c in definition.components.values()], 1
    )
    tasks = {name: plan.component_tasks(name) for name in definition.components}
    me = definition.components[component]
    host = TaskHost(
        topology=definition.name,
        task_id=tasks[component][0],
        component=component,
        is_spout=me.is_spout,
        router=OutputRouter(definition, component, tasks, None),
        task_components={t.task_id: t.component for t in plan.tasks},
        batch_max_tuples=batch_max_tuples,
        batch_max_bytes=batch_max_bytes,
        max_frame_bytes=max_frame_bytes,
        logger=logging.getLogger("tests.unit.host"),
    )
    host.component = me.python_class(delegate=host)
    return host


def decode_outbox(host: TaskHost) -> list[DataFrame]:
    frames = FrameDecoder().feed(b"".join(host.outbox))
    assert all(isinstance(f, DataFrame) for f in frames)
    return frames  # type: ignore[return-value]


def delivered(host: TaskHost) -> dict[int, list[list[Any]]]:
    """dst task -> tuples, in frame order."""
    result: dict[int, list[list[Any]]] = {}
    for frame in decode_outbox(host):
        result.setdefault(frame.dst_task, []).extend(unpack_batch(frame.body))
    return result


def test_emit_batches_per_destination_until_flush():
    host = make_host(one_consumer(Grouping.ALL, par=3), "spout")
    host.component.emit(["a", 1])
    host.component.emit(["b", 2])
    assert host.outbox == []
    assert host.has_pending
    host.flush()
    frames = decode_outbox(host)
    assert sorted(f.dst_task for f in frames) == [2, 3, 4]  # one frame per destination
    for frame in frames:
        assert frame.src_task == 1
        assert frame.stream == "default"
        assert unpack_batch(frame.body) == [["a", 1], ["b", 2]]
    assert not host.has_pending
    assert host.emitted == {"default": 2}


def test_flush_frames_contain_exactly_the_emitted_tuples():
    host = make_host(one_consumer(Grouping.fields("word"), par=3), "spout")
    emitted = [[f"w{i % 7}", i] for i in range(40)]
    for values in emitted:
        host.component.emit(values)
    host.flush()
    got = delivered(host)
    assert sorted(v for vs in got.values() for v in vs) == sorted(emitted)
    router = router_for(one_consumer(Grouping.fields("word"), par=3))
    for values in emitted:  # each tuple went where the grouping says, in emit order
        (task,) = router.destinations("default", values)
        assert values in got[task]
    for tuples in got.values():
        assert [v[1] for v in tuples] == sorted(v[1] for v in tuples)


def test_flush_with_nothing_pending_produces_no_frame():
    host = make_host(one_consumer(Grouping.SHUFFLE), "spout")
    host.flush()
    assert host.outbox == []
    host.component.emit(["a", 1])
    host.flush()
    assert len(host.outbox) == 1
    host.outbox.clear()
    host.flush()
    assert host.outbox == []


def test_emit_on_a_named_stream_produces_frames_of_that_stream():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", MultiStreamSpout, par=1)
    builder.add_bolt("ctl", Sink, par=1, inputs={spout["control"]: Grouping.ALL})
    host = make_host(builder, "spout")
    host.component.emit(["stop"], stream="control")
    host.component.emit(["w", 1])  # default stream: nobody consumes it
    host.flush()
    (frame,) = decode_outbox(host)
    assert (frame.stream, frame.dst_task) == ("control", 2)
    assert unpack_batch(frame.body) == [["stop"]]


def test_batch_max_tuples_turns_a_full_batch_into_a_frame_at_emit():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout", batch_max_tuples=3)
    host.component.emit(["a", 1])
    host.component.emit(["b", 2])
    assert host.outbox == []
    host.component.emit(["c", 3])
    assert len(host.outbox) == 1
    assert unpack_batch(decode_outbox(host)[0].body) == [["a", 1], ["b", 2], ["c", 3]]
    host.component.emit(["d", 4])
    assert len(host.outbox) == 1
    host.flush()
    assert [unpack_batch(f.body) for f in decode_outbox(host)] == [
        [["a", 1], ["b", 2], ["c", 3]],
        [["d", 4]],
    ]


def test_batch_max_tuples_counts_per_destination():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=2), "spout", batch_max_tuples=2)
    for i in range(3):
        host.component.emit(["w", i])
    assert len(host.outbox) == 1  # one destination got 2 tuples, the other only 1
    host.component.emit(["w", 3])
    assert len(host.outbox) == 2


def test_unserializable_values_are_dropped_and_the_rest_of_the_batch_is_kept():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout")
    host.component.emit(["a", 1])
    host.component.emit(["bad", object()])
    host.component.emit(["c", {1, 2}])
    host.component.emit(["d", 4])
    host.flush()
    assert delivered(host) == {2: [["a", 1], ["d", 4]]}
    assert host.dropped_unserializable == 2
    assert host.exceptions == {"TypeError": 2}


def test_a_batch_of_only_unserializable_values_produces_no_frame():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout")
    host.component.emit(["bad", object()])
    host.flush()
    assert host.outbox == []
    assert host.dropped_unserializable == 1


def test_a_batch_over_the_frame_limit_is_split_into_frames_that_fit():
    limit = 1024
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout", max_frame_bytes=limit)
    emitted = [["x" * 100, i] for i in range(40)]  # ~4 KiB in one batch
    for values in emitted:
        host.component.emit(values)
    host.flush()
    assert len(host.outbox) > 1
    assert all(len(frame) - 4 <= limit for frame in host.outbox)
    assert delivered(host) == {2: emitted}
    assert host.dropped_unserializable == 0


def test_a_tuple_over_the_frame_limit_fails_at_emit_and_a_nested_one_at_flush():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout", max_frame_bytes=1024)
    host.component.emit(["small", 1])
    with pytest.raises(EmitError, match="a tuple of 5000 bytes on stream 'default'"):
        host.component.emit(["x" * 5000, 2])
    host.component.emit([["x" * 5000], 3])  # nested: found when its batch is packed
    host.component.emit(["small", 4])
    host.flush()
    assert delivered(host) == {2: [["small", 1], ["small", 4]]}
    assert host.dropped_unserializable == 1


def test_open_batches_flush_when_they_hold_too_many_bytes():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout", batch_max_bytes=10_000)
    for i in range(3):
        host.component.emit(["y" * 4000, i])
    assert len(host.outbox) == 1 and host.pending_bytes == 0  # flushed at 12,000 bytes
    assert delivered(host) == {2: [["y" * 4000, i] for i in range(3)]}


def test_need_task_ids_returns_the_destination_tasks():
    host = make_host(one_consumer(Grouping.ALL, par=3), "spout")
    assert host.component.emit(["a", 1], need_task_ids=True) == [2, 3, 4]
    assert host.component.emit(["a", 1]) is None
    direct = make_host(one_consumer(Grouping.DIRECT, par=3), "spout")
    assert direct.component.emit(["a", 1], direct_task=3, need_task_ids=True) == [3]
    direct.flush()
    assert delivered(direct) == {3: [["a", 1]]}


def test_need_task_ids_with_no_consumer_is_an_empty_list():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", MultiStreamSpout, par=1)
    builder.add_bolt("ctl", Sink, par=1, inputs={spout["control"]: Grouping.ALL})
    host = make_host(builder, "spout")
    assert host.component.emit(["w", 1], need_task_ids=True) == []


def test_spout_emit_with_a_tup_id_is_recorded_for_an_immediate_ack():
    host = make_host(one_consumer(Grouping.SHUFFLE), "spout")
    host.component.emit(["a", 1], tup_id="m1")
    host.component.emit(["b", 2])  # no id: nothing to ack
    host.component.emit(["c", 3], tup_id={"offset": 7})
    assert host.immediate_acks == ["m1", {"offset": 7}]


def test_bolt_emits_are_never_recorded_for_immediate_acks():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", WordSpout, par=1)
    mid = builder.add_bolt("mid", Recorder, par=1, inputs=[spout])
    builder.add_bolt("sink", Sink, par=1, inputs=[mid])
    host = make_host(builder, "mid")
    host.emit(["x"], tup_id="ignored")
    assert host.immediate_acks == []


def test_host_emit_rejects_undeclared_stream_wrong_arity_and_stray_direct_task():
    host = make_host(one_consumer(Grouping.SHUFFLE), "spout")
    with pytest.raises(EmitError, match="'nope'"):
        host.component.emit(["a", 1], stream="nope")
    with pytest.raises(EmitError, match="emits 1 values"):
        host.component.emit(["a"])
    with pytest.raises(EmitError, match="no consumer"):
        host.component.emit(["a", 1], direct_task=2)
    host.flush()
    assert host.outbox == []
    assert host.emitted == {}


def test_emit_that_raises_emit_error_delivers_nothing():
    # "shuf" (shuffle) is routed before "direct" (DIRECT): an emit without
    # direct_task must fail as a whole, not reach the shuffle consumer anyway.
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", WordSpout, par=1)  # task 1
    builder.add_bolt("shuf", Sink, par=1, inputs={spout: Grouping.SHUFFLE})  # task 2
    builder.add_bolt("direct", Sink, par=1, inputs={spout: Grouping.DIRECT})  # task 3
    host = make_host(builder, "spout")
    with pytest.raises(EmitError):
        host.component.emit(["lost", 1])
    host.flush()
    assert delivered(host) == {}


def test_process_batch_calls_process_with_heron_tuples():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", MultiStreamSpout, par=2)  # tasks 1, 2
    builder.add_bolt("rec", Recorder, par=1, inputs=[spout, spout["control"]])  # task 3
    host = make_host(builder, "rec")
    host.process_batch(2, "default", [["a", 1], ["b", 2]])
    host.process_batch(1, "control", [["stop"]])
    seen = host.component.seen
    assert len(seen) == 3
    assert all(isinstance(t, HeronTuple) for t in seen)
    assert [(t.component, t.stream, t.task, t.values) for t in seen] == [
        ("spout", "default", 2, ["a", 1]),
        ("spout", "default", 2, ["b", 2]),
        ("spout", "control", 1, ["stop"]),
    ]
    assert all(t.id is None and t.roots is None for t in seen)
    assert all(isinstance(t.creation_time, float) for t in seen)
    assert host.executed == {("spout", "default"): 2, ("spout", "control"): 1}


class Flaky(Bolt):
    def process(self, tup: Any) -> None:
        if tup.values[0] == "bad":
            raise ValueError("boom")
        self.ok = [*getattr(self, "ok", []), tup.values]


def test_a_raising_process_is_counted_and_the_batch_goes_on():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", WordSpout, par=1)
    builder.add_bolt("flaky", Flaky, par=1, inputs=[spout])
    host = make_host(builder, "flaky")
    host.process_batch(1, "default", [["a", 1], ["bad", 2], ["c", 3], ["bad", 4]])
    assert host.component.ok == [["a", 1], ["c", 3]]
    assert host.exceptions == {"ValueError": 2}
    assert host.executed == {("spout", "default"): 4}


def test_ack_and_fail_count_heron_tuples_only():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", WordSpout, par=1)
    builder.add_bolt("rec", Recorder, par=1, inputs=[spout])
    host = make_host(builder, "rec")
    host.process_batch(1, "default", [["a", 1]])
    (tup,) = host.component.seen
    host.component.ack(tup)
    host.component.fail(tup)
    host.component.ack("not a tuple")
    assert (host.acked, host.failed) == (1, 1)
