"""Groupings at emit time, read back through a task's emitter on both tuple
paths (routing_components.Router); the rest of the task is in test_task.py."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
from routing_components import (
    MultiStreamSpout,
    Recorder,
    Router,
    Sink,
    WordSpout,
    component_tasks,
    one_consumer,
    router_for,
)

from heronpy_lite.api import (
    GlobalStreamId,
    Grouping,
    ICustomGrouping,
    TopologyBuilder,
)
from heronpy_lite.api.topology import definition_of
from heronpy_lite.errors import EmitError
from heronpy_lite.instance.routing import ONE, route_spec, stable_hash, stream_specs

pytestmark = pytest.mark.usefixtures("tuple_path")


def route_counts(router: Router, values_list: list[list[Any]]) -> Counter[int]:
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
    # tasks [2, 3, 4, 5]; key group = crc32(word) % 128, index = group * 4 // 128
    assert router.destinations("default", ["apple", 1]) == [4]  # 2838417488 % 128 == 80
    assert router.destinations("default", ["banana", 1]) == [4]  # 59467727 % 128 == 79
    assert router.destinations("default", ["heron", 1]) == [3]  # 2088913833 % 128 == 41


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
    # an int hashes to itself: key groups 0..31 are the first task's, 32..63 the second's
    assert [router.destinations("default", ["x", i])[0] for i in range(0, 256, 32)] == [
        2,
        3,
        4,
        5,
    ] * 2
    assert {router.destinations("default", ["x", i])[0] for i in range(32)} == {2}


def test_fields_grouping_on_multiple_fields():
    router = router_for(one_consumer(Grouping.fields("word", "count"), par=4))
    # ((0 * 31 + stable_hash("apple")) * 31 + stable_hash(7)) & (2**48 - 1) == 87990942135
    assert router.destinations("default", ["apple", 7]) == [3]  # 87990942135 % 128 == 55
    seen = {
        (w, c): router.destinations("default", [w, c]) for w in ("a", "b", "c") for c in range(5)
    }
    for (w, c), dest in seen.items():
        assert router.destinations("default", [w, c]) == dest
    assert len({d[0] for d in seen.values()}) > 1


def test_fields_grouping_field_order_is_the_grouping_order():
    # Grouping.fields("count", "word") hashes count first: a different function
    router = router_for(one_consumer(Grouping.fields("count", "word"), par=4))
    # ((0 * 31 + 2) * 31 + stable_hash("apple")) & mask == 2838417550, % 128 == 14: task 2
    assert router.destinations("default", ["apple", 2]) == [2]
    # ... and word first: (stable_hash("apple") * 31 + 2) & mask == 87990942130, % 128 == 50
    other = router_for(one_consumer(Grouping.fields("word", "count"), par=4))
    assert other.destinations("default", ["apple", 2]) == [3]


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
    router = router_for(builder)
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
    with pytest.raises(
        EmitError, match=r"Returned object after custom grouping's choose_tasks\(\)"
    ):
        router.destinations("default", ["w", 1])


def test_undeclared_stream_is_an_emit_error():
    router = router_for(one_consumer(Grouping.SHUFFLE))
    with pytest.raises(EmitError, match="'nope', which its outputs do not declare"):
        router.destinations("nope", ["w", 1])


@pytest.mark.parametrize("values", [[], ["w"], ["w", 1, 2]])
def test_wrong_arity_is_an_emit_error(values):
    router = router_for(one_consumer(Grouping.SHUFFLE))
    with pytest.raises(EmitError, match=f"emits {len(values)} values on stream 'default', which"):
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
    definition = definition_of(builder)
    specs = stream_specs(definition, "spout", component_tasks(definition))
    assert {name: spec.arity for name, spec in specs.items()} == {"default": 2, "control": 1}


def test_route_sorts_its_tasks():
    route = route_spec("sink", Grouping.LOWEST, [9, 3, 5], ["word"])
    assert (route.kind, route.tasks, route.direct) == (ONE, (3,), False)
    assert route_spec("sink", Grouping.SHUFFLE, [9, 3, 5], ["word"]).tasks == (3, 5, 9)
    assert route_spec("sink", Grouping.DIRECT, [1], ["word"]).direct
