"""The Streamlet API without processes: how a Builder becomes a topology
(names, partitions, streams, groupings, plans), Config and Runner, window
configs, Window and KeyedWindow on the wire, the connectors, and the
components driven with a delegate that records what they emit."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import msgpack
import pytest

from heronpy_lite.api import Grouping, api_constants
from heronpy_lite.api._loader import find_topology
from heronpy_lite.api.topology import TopologyBuilder, definition_of
from heronpy_lite.api.topology_context import StreamId, TopologyContext
from heronpy_lite.api.tuple import HeronTuple
from heronpy_lite.connectors.mock.arraylooper import ArrayLooper
from heronpy_lite.connectors.textfiles.textfilesgenerator import TextFileGenerator
from heronpy_lite.errors import TopologyError
from heronpy_lite.streamlet import (
    Builder,
    Config,
    Generator,
    KeyedWindow,
    Resources,
    Runner,
    Window,
    WindowConfig,
)
from heronpy_lite.streamlet.impl.streamletboltbase import (
    KEYED,
    KEYED_WINDOWED,
    OUTPUT,
    PLAN,
    WINDOWED,
    reader,
)

TUMBLING = WindowConfig.create_tumbling_window(1)


def add(a: Any, b: Any) -> Any:
    return a + b


def word_count() -> Builder:
    builder = Builder()
    a = builder.new_source(ArrayLooper(["a b", "b c"])).set_name("lines")
    b = builder.new_source(lambda: "c d")
    words = a.flat_map(str.split).union(b.flat_map(str.split)).set_num_partitions(2)
    words.map(lambda w: (w, 1)).reduce_by_key_and_window(TUMBLING, add).consume(print)
    return builder


def components(builder: Builder, name: str = "T") -> dict[str, Any]:
    return definition_of(builder, name).components


# -- the topology of a builder --


def test_components_are_named_after_their_operation_in_build_order() -> None:
    comps = components(word_count())
    assert list(comps) == [
        "lines",
        "flatmap-1",
        "supplier-1",
        "flatmap-2",
        "union-1",
        "map-1",
        "reducebykeyandwindow-1",
        "consume-1",
    ]
    assert [c.name for c in comps.values() if c.is_spout] == ["lines", "supplier-1"]


def test_partitions_follow_heronpys_defaults() -> None:
    comps = components(word_count())
    assert {n: c.par for n, c in comps.items()} == {
        "lines": 1,
        "flatmap-1": 1,
        "supplier-1": 1,
        "flatmap-2": 1,
        "union-1": 2,
        "map-1": 2,  # its parent's
        "reducebykeyandwindow-1": 1,  # heronpy's default for keyed windows
        "consume-1": 1,
    }


def test_keyed_operations_read_a_keyed_stream_with_the_fields_grouping() -> None:
    comps = components(word_count())
    (reduce_input,) = comps["reducebykeyandwindow-1"].inputs
    assert (reduce_input.component, reduce_input.stream) == ("map-1", KEYED)
    assert reduce_input.grouping == Grouping.fields("_key_")
    (map_input,) = comps["map-1"].inputs
    assert (map_input.stream, map_input.grouping) == (OUTPUT, Grouping.SHUFFLE)
    plans = {n: c.config[PLAN] for n, c in comps.items()}
    # a streamlet emits only where it has consumers
    assert (plans["map-1"].emits_output, plans["map-1"].emits_keyed) == (False, True)
    assert (plans["union-1"].emits_output, plans["union-1"].emits_keyed) == (True, False)
    assert (plans["consume-1"].emits_output, plans["consume-1"].emits_keyed) == (False, False)


def test_building_is_repeatable_and_changes_nothing() -> None:
    builder = word_count()
    first, second = definition_of(builder, "T"), definition_of(builder, "T")
    assert list(first.components) == list(second.components)
    for name, c in first.components.items():
        other = second.components[name]
        assert (c.par, c.inputs, c.outputs, c.python_class) == (
            other.par,
            other.inputs,
            other.outputs,
            other.python_class,
        )
    assert all(s.get_name() in (None, "lines") for s in builder._order())


def test_set_names_are_kept_and_defaults_avoid_them() -> None:
    builder = Builder()
    src = builder.new_source(lambda: 1)
    src.map(abs).set_name("map-1")
    src.map(abs)
    assert list(components(builder)) == ["supplier-1", "map-1", "map-2"]
    src.filter(bool).set_name("map-1")
    with pytest.raises(TopologyError, match="two streamlets are named 'map-1'"):
        components(builder)


def test_repartition_clone_join_and_window_defaults() -> None:
    builder = Builder()
    src = builder.new_source(lambda: ("k", 1)).set_num_partitions(3)
    src.repartition(2, lambda e, n: 0).consume(print)
    src.repartition(4).consume(print)
    clones = src.clone(2)
    left = src.map(tuple)
    left.join(clones[0], TUMBLING, add).consume(print)
    src.reduce_by_window(TUMBLING, add).consume(print)
    comps = components(builder)
    assert comps["repartition-1"].par == 2
    assert isinstance(comps["repartition-1"].inputs[0].grouping, Grouping.CUSTOM)
    assert comps["repartition-2"].inputs[0].grouping == Grouping.SHUFFLE
    assert (comps["clone-1"].par, comps["clone-2"].par) == (3, 3)
    join = comps["join-1"]
    assert join.par == 3  # the left side's
    assert [(i.component, i.stream) for i in join.inputs] == [("map-1", KEYED), ("clone-1", KEYED)]
    assert comps["reducebywindow-1"].par == 1  # one result per window


def test_a_self_join_and_a_self_union_subscribe_once_and_feed_both_sides() -> None:
    builder = Builder()
    src = builder.new_source(lambda: ("k", 1))
    src.join(src, TUMBLING, add).consume(print)
    src.union(src).consume(print)
    comps = components(builder)
    assert len(comps["join-1"].inputs) == 1 and len(comps["union-1"].inputs) == 1
    assert comps["join-1"].config[PLAN].inputs[("supplier-1", KEYED)].sides == (0, 1)
    assert comps["union-1"].config[PLAN].inputs[("supplier-1", OUTPUT)].sides == (0, 1)


def test_builder_errors_are_heronpys() -> None:
    builder = Builder()
    with pytest.raises(RuntimeError, match="either a Generator or a function"):
        builder.new_source(42)
    src = builder.new_source(lambda: 1)
    with pytest.raises(RuntimeError, match="Map function has to be callable"):
        src.map(3)
    with pytest.raises(RuntimeError, match="should take 2 arguments"):
        src.repartition(2, lambda x: x)
    with pytest.raises(RuntimeError, match="num_partitions"):
        src.set_num_partitions(0)
    with pytest.raises(RuntimeError, match="window config"):
        src.reduce_by_window(10, add)
    other = Builder().new_source(lambda: 2)
    with pytest.raises(RuntimeError, match="same Builder"):
        src.union(other)
    assert src._children == []  # a refused operation leaves nothing behind
    with pytest.raises(TopologyError, match="no source"):
        components(Builder())


def test_the_loader_accepts_a_streamlet_builder_as_attr() -> None:
    import types

    module = types.ModuleType("topo")
    module.builder = word_count()  # type: ignore[attr-defined]
    module.__file__ = "topo.py"
    assert find_topology(module, "builder") is module.builder  # type: ignore[attr-defined]
    with pytest.raises(Exception, match=r"it defines: builder"):
        find_topology(module, "missing")


# -- Config and Runner --


@pytest.mark.parametrize(
    ("semantics", "mode"),
    [
        (Config.ATMOST_ONCE, "ATMOST_ONCE"),
        (Config.ATLEAST_ONCE, "ATLEAST_ONCE"),
        (Config.EFFECTIVELY_ONCE, "EFFECTIVELY_ONCE"),
    ],
)
def test_delivery_semantics_map_onto_the_reliability_mode(semantics: int, mode: str) -> None:
    config = Config()
    config.set_delivery_semantics(semantics)
    assert config._api_config[api_constants.TOPOLOGY_RELIABILITY_MODE] == mode


def test_config_sets_containers_resources_and_user_keys() -> None:
    config = Config({"a": 1})
    config.set_num_containers(3)
    config.set_container_resources(Resources().set_cpu(2).set_ram_in_mb(1))
    config.set_user_config("b", 2)
    assert config._api_config == {
        "a": 1,
        "topology.stmgrs": 3,
        "topology.container.cpu": 2.0,
        "topology.container.ram": 1024 * 1024,
        "b": 2,
    }
    with pytest.raises(RuntimeError, match="Unknown Topology delivery semantics"):
        config.set_delivery_semantics(7)


def test_runner_builds_the_topology_with_its_config_and_submits_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    submitted: list[TopologyBuilder] = []
    monkeypatch.setattr(
        TopologyBuilder, "build_and_submit", lambda self: submitted.append(self), raising=False
    )
    config = Config()
    config.set_delivery_semantics(Config.ATLEAST_ONCE)
    builder = word_count()
    Runner().run("WordCount", config, builder)
    (bldr,) = submitted
    definition = definition_of(bldr)
    assert definition.name == "WordCount"
    assert definition.config[api_constants.TOPOLOGY_RELIABILITY_MODE] == "ATLEAST_ONCE"
    assert "reducebykeyandwindow-1" in definition.components
    # the builder keeps the config, for a submit of the builder as ATTR
    assert definition_of(builder, "X").config == definition.config


def test_runner_without_build_and_submit_only_records_the_config(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delattr(TopologyBuilder, "build_and_submit", raising=False)
    config = Config({"user.key": 5})
    builder = word_count()
    with caplog.at_level(logging.WARNING):
        Runner().run("WordCount", config, builder)
    assert "submit the Builder as ATTR" in caplog.text
    assert definition_of(builder, "W").config == {"user.key": 5}
    with pytest.raises(RuntimeError, match="config has to be a Config type"):
        Runner().run("W", {}, builder)  # type: ignore[arg-type]


# -- windows --


def test_window_configs() -> None:
    sliding = WindowConfig.create_sliding_window(datetime.timedelta(seconds=10), 2)
    assert sliding._window_duration == datetime.timedelta(seconds=10)
    assert sliding._slide_interval == datetime.timedelta(seconds=2)
    assert (sliding._windowing.length, sliding._windowing.slide) == (10, 2)
    assert WindowConfig.create_tumbling_window(0.5)._windowing.slide == 0.5  # sub-second
    assert WindowConfig.create_tumbling_count_window(5)._windowing.kind == "count"
    assert WindowConfig.create_session_window(3)._windowing.gap == 3
    timed = sliding.with_event_time(lambda e: e[0], lag=1, allowed_lateness=2)
    assert timed._windowing.event_time and timed._windowing.lag == 1
    assert sliding.with_max_tuples(7)._windowing.max_tuples == 7
    with pytest.raises(RuntimeError, match=r"datetime\.timedelta"):
        WindowConfig.create_tumbling_window("1s")
    with pytest.raises(ValueError, match="must not exceed"):
        WindowConfig.create_sliding_window(1, 2)


def test_window_and_keyed_window_are_tuples_that_cross_the_wire() -> None:
    window = Window(10, 20)
    keyed = KeyedWindow("k", window)
    assert (window.start, window.end, window._start_time, window.get_end_time()) == (10, 20, 10, 20)
    assert (keyed.key, keyed._key, keyed.window, keyed.get_window()) == ("k", "k", window, window)
    assert repr(window) == "Window {start_time: 10, end_time: 20}"
    assert repr(keyed) == "KeyedWindow {key: k, window: Window {start_time: 10, end_time: 20}}"
    assert keyed == KeyedWindow("k", Window(10, 20)) and hash(keyed) == hash(("k", (10, 20)))
    wire = msgpack.unpackb(msgpack.packb([(keyed, 3)]))
    assert wire == [[["k", [10, 20]], 3]]
    with pytest.raises(RuntimeError, match="has to be of type Window"):
        KeyedWindow("k", (1, 2))


def test_readers_rebuild_window_results_and_hashable_keys() -> None:
    def over_the_wire(values: list[Any]) -> list[Any]:
        return msgpack.unpackb(msgpack.packb(values))  # type: ignore[no-any-return]

    keyed = (KeyedWindow(("a", 1), Window(0, 5)), 7)
    element = reader(OUTPUT, KEYED_WINDOWED)(over_the_wire([keyed]))  # type: ignore[misc]
    assert element == keyed and type(element[0]) is KeyedWindow
    assert type(element[0].window) is Window and element[0].key == ("a", 1)
    windowed = reader(OUTPUT, WINDOWED)(over_the_wire([(Window(0, 5), "x")]))  # type: ignore[misc]
    assert windowed == (Window(0, 5), "x") and type(windowed[0]) is Window
    key, value = reader(KEYED, "plain")(over_the_wire([("a", [1]), 2]))  # type: ignore[misc]
    assert (key, value) == (("a", (1,)), 2)  # a list key becomes a tuple: a dict key
    assert reader(OUTPUT, "plain") is None


# -- connectors --


class FakeContext:
    def __init__(self, index: int, n: int) -> None:
        self.index, self.n = index, n

    def get_partition_index(self) -> int:
        return self.index

    def get_num_partitions(self) -> int:
        return self.n


def test_array_looper_loops_forever() -> None:
    looper = ArrayLooper([1, 2, 3])
    looper.setup(FakeContext(0, 1))
    assert [looper.get() for _ in range(7)] == [1, 2, 3, 1, 2, 3, 1]
    with pytest.raises(RuntimeError, match="iterable"):
        ArrayLooper(5)  # type: ignore[arg-type]


def test_text_file_generator_reads_its_partition_of_the_files_in_order(tmp_path: Any) -> None:
    for name, text in [("a.txt", "a1\na2\n"), ("b.txt", "b1\n"), ("c.txt", "c1\nc2")]:
        (tmp_path / name).write_text(text)

    def lines(index: int, n: int) -> list[str]:
        gen = TextFileGenerator(str(tmp_path / "*.txt"))
        gen.setup(FakeContext(index, n))
        out = []
        while (line := gen.get()) is not None:
            out.append(line)
        return out

    assert lines(0, 1) == ["a1\n", "a2\n", "b1\n", "c1\n", "c2"]
    assert lines(0, 2) == ["a1\n", "a2\n", "c1\n", "c2"]
    assert lines(1, 2) == ["b1\n"]


# -- components, with a recording delegate --


class Recorder:
    def __init__(self, spout: bool = False) -> None:
        self.spout = spout
        self.logger = logging.getLogger("test.streamlet")
        self.emitted: list[tuple[Any, ...]] = []
        self.acked: list[Any] = []
        self.failed: list[Any] = []

    def emit(self, tup: Any, *args: Any, **kw: Any) -> None:
        """Spout.emit and Bolt.emit call their delegate as heronpy does, positionally:
        (tup, tup_id, stream, ...) and (tup, stream, anchors, ...)."""
        order = ("tup_id", "stream") if self.spout else ("stream", "anchors")
        named = dict(zip(order, args, strict=False))
        named.update(kw)
        self.emitted.append(
            (list(tup), named.get("stream"), named.get("anchors"), named.get("tup_id"))
        )

    def ack(self, tup: Any) -> None:
        self.acked.append(tup)

    def fail(self, tup: Any) -> None:
        self.failed.append(tup)


def start(builder: Builder, name: str, mode: str = "ATMOST_ONCE") -> tuple[Any, Recorder]:
    comp = components(builder)[name]
    recorder = Recorder(spout=comp.is_spout)
    instance = comp.python_class(delegate=recorder)
    config = {**comp.config, api_constants.TOPOLOGY_RELIABILITY_MODE: mode}
    sources = {StreamId(i.stream, i.component): i.grouping for i in comp.inputs}
    context = TopologyContext("T", 1, name, config, {name: sources}, {name: [1]}, lambda *a: None)
    instance.initialize(config, context)
    return instance, recorder


def tup(component: str, stream: str, *values: Any) -> HeronTuple:
    return HeronTuple(None, component, stream, 1, list(values), 0.0, None)


def test_an_operator_emits_on_every_stream_that_has_consumers_and_anchors_at_least_once() -> None:
    builder = Builder()
    mapped = builder.new_source(lambda: 1).map(lambda x: ("k", x))
    mapped.consume(print)
    mapped.reduce_by_key_and_window(TUMBLING, add)
    bolt, rec = start(builder, "map-1", "ATLEAST_ONCE")
    t = tup("supplier-1", OUTPUT, 5)
    bolt.process(t)
    assert rec.emitted == [([("k", 5)], OUTPUT, [t], None), (["k", 5], KEYED, [t], None)]
    assert rec.acked == [t]
    bolt, rec = start(builder, "map-1")
    bolt.process(t)
    assert rec.emitted == [([("k", 5)], OUTPUT, None, None), (["k", 5], KEYED, None, None)]


def test_a_keyed_consumer_needs_pairs_and_says_so() -> None:
    builder = Builder()
    mapped = builder.new_source(lambda: 1).map(lambda x: x)
    mapped.reduce_by_key_and_window(TUMBLING, add)
    bolt, _ = start(builder, "map-1")
    with pytest.raises(TypeError, match="need \\(key, value\\) pairs, got 5"):
        bolt.process(tup("supplier-1", OUTPUT, 5))


class Countdown(Generator):
    def setup(self, context: Any) -> None:
        self.left = [3, 2, 1]

    def get(self) -> Any:
        return self.left.pop(0) if self.left else None


def test_a_source_replays_failed_elements_first_at_least_once() -> None:
    builder = Builder()
    builder.new_source(Countdown()).consume(print)
    spout, rec = start(builder, "generator-1", "ATLEAST_ONCE")
    spout.next_tuple()
    spout.next_tuple()
    assert rec.emitted == [([3], OUTPUT, None, 0), ([2], OUTPUT, None, 1)]
    spout.fail(0)
    spout.ack(1)
    spout.next_tuple()  # the replay comes first
    spout.next_tuple()
    spout.next_tuple()  # nothing left: nothing emitted
    assert rec.emitted[2:] == [([3], OUTPUT, None, 0), ([1], OUTPUT, None, 2)]
    assert set(spout._pending) == {0, 2}


def test_reduce_by_key_folds_as_it_goes_and_keeps_only_the_tuples_at_least_once() -> None:
    builder = Builder()
    pairs = builder.new_source(lambda: 1).map(lambda x: x)
    pairs.reduce_by_key_and_window(TUMBLING, add).consume(print)
    tuples = [tup("map-1", KEYED, key, 1) for key in "aba"]
    results = {}
    for mode in ("ATMOST_ONCE", "ATLEAST_ONCE"):
        bolt, rec = start(builder, "reducebykeyandwindow-1", mode)
        bolt._clock = lambda: 100.5
        for t in tuples:
            bolt.process(t)
        assert bolt._folding and bolt._holding is (mode == "ATLEAST_ONCE")
        assert rec.acked == (tuples if mode == "ATMOST_ONCE" else [])  # acked at once
        assert bolt._windows.held == (2 if mode == "ATMOST_ONCE" else 3)
        bolt._clock = lambda: 101.0
        bolt.process_tick(None)
        assert rec.acked == tuples
        results[mode] = [values for values, *_ in rec.emitted]
        anchors = [a for _, _, a, _ in rec.emitted]
        at_least_once = [[tuples[0], tuples[2]], [tuples[1]]]  # each key's tuples
        assert anchors == (at_least_once if mode == "ATLEAST_ONCE" else [None, None])
    window = Window(100, 101)
    assert (
        results["ATMOST_ONCE"]
        == results["ATLEAST_ONCE"]
        == [
            [(KeyedWindow("a", window), 2)],
            [(KeyedWindow("b", window), 1)],
        ]
    )


def test_effectively_once_is_refused_for_streamlets_with_a_clear_error() -> None:
    from heronpy_lite.api.topology import check_effectively_once

    with pytest.raises(TopologyError, match=r"not available for streamlets.*ATLEAST_ONCE"):
        check_effectively_once(definition_of(word_count(), "T"))


def sliding_reduce(fn: Any = add, by_key: bool = True) -> Builder:
    builder = Builder()
    pairs = builder.new_source(lambda: 1).map(lambda x: x)
    window = WindowConfig.create_sliding_window(3, 1).with_max_tuples(10)
    if by_key:
        pairs.reduce_by_key_and_window(window, fn).consume(print)
    else:
        pairs.reduce_by_window(window, fn).consume(print)
    return builder


def feed_seconds(
    bolt: Any, stream: str, per_second: list[list[Any]], first: int = 100
) -> list[Any]:
    """Each second's tuples, arriving at first + 0.5, first + 1.5, ...; a tick at
    each second's end; returns the tuples, in order."""
    sent = []
    for i, values in enumerate(per_second, first):
        bolt._clock = lambda i=i: i + 0.5
        for v in values:
            t = tup("map-1", stream, *v)
            sent.append(t)
            bolt.process(t)
        bolt._clock = lambda i=i: i + 1.0
        bolt.process_tick(None)
    return sent


def test_sliding_reduce_by_key_holds_a_value_per_key_and_second_at_most_once() -> None:
    bolt, rec = start(sliding_reduce(), "reducebykeyandwindow-1")
    per_second = [[("a", 1)] * 20 + [("b", 1)] * 5, [("a", 2)] * 30, [("b", 3)] * 10, []]
    sent = feed_seconds(bolt, KEYED, per_second)  # 65 tuples, max_tuples is 10
    assert bolt._folding and rec.acked == sent
    assert bolt._windows.held == 1  # b in [102, 103), whose last window ends at 105
    results = [(values[0][0].key, values[0][0].window, values[0][1]) for values, *_ in rec.emitted]
    assert results == [  # windows [k, k + 3) of one-second panes
        ("a", Window(98, 101), 20),
        ("b", Window(98, 101), 5),
        ("a", Window(99, 102), 80),
        ("b", Window(99, 102), 5),
        ("a", Window(100, 103), 80),
        ("b", Window(100, 103), 35),
        ("a", Window(101, 104), 60),
        ("b", Window(101, 104), 30),
    ]


def test_sliding_reduce_acks_a_tuple_once_its_last_window_fired_at_least_once() -> None:
    bolt, rec = start(sliding_reduce(by_key=False), "reducebywindow-1", "ATLEAST_ONCE")
    per_second = [[[1], [2]], [[3]], [], [], [[4]]]
    sent = feed_seconds(bolt, OUTPUT, per_second[:3])
    t1, t2, t3 = sent
    assert [(v[0][0], v[0][1], anchors) for v, _, anchors, _ in rec.emitted] == [
        (Window(98, 101), 3, [t1, t2]),
        (Window(99, 102), 6, [t1, t2, t3]),
        (Window(100, 103), 6, [t1, t2, t3]),
    ]
    # [100, 101) is in [98, 101), [99, 102) and [100, 103): done once the last fired
    assert rec.acked == [t1, t2] and bolt._windows.held == 1
    feed_seconds(bolt, OUTPUT, per_second[3:], 103)  # [101, 104) fires
    assert rec.acked == [t1, t2, t3]
    assert bolt._windows.held == 1 and rec.failed == []


def test_a_raising_sliding_reduce_drops_that_key_counts_it_and_fails_its_tuples(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def picky(a: int, b: int) -> int:
        if b == 13:
            raise ValueError("unlucky")
        return a + b

    for mode in ("ATMOST_ONCE", "ATLEAST_ONCE"):
        bolt, rec = start(sliding_reduce(picky), "reducebykeyandwindow-1", mode)
        with caplog.at_level(logging.ERROR):
            sent = feed_seconds(bolt, KEYED, [[("a", 1), ("a", 13), ("b", 2)], [], [], []])
        assert [(v[0][0].key, v[0][1]) for v, *_ in rec.emitted] == [("b", 2)] * 3
        assert bolt._error_count.get_value_and_reset() == 3  # one per window holding it
        assert "raised ValueError: unlucky for key 'a'" in caplog.text
        if mode == "ATLEAST_ONCE":  # a's tuples are replayed, b's acked
            assert rec.failed == sent[:2] and rec.acked == sent[2:]
        else:
            assert rec.failed == [] and rec.acked == sent


# -- folding per pane against refolding the window's tuples --


def start_refolding(builder: Builder, name: str, mode: str) -> tuple[Any, Recorder]:
    """The operator as it was before folding per pane: it keeps the tuples and
    refolds each window's values when it fires (the reference)."""
    comp = components(builder)[name]
    recorder = Recorder()
    instance = comp.python_class(delegate=recorder)
    instance._fold = lambda: None
    config = {**comp.config, api_constants.TOPOLOGY_RELIABILITY_MODE: mode}
    sources = {StreamId(i.stream, i.component): i.grouping for i in comp.inputs}
    context = TopologyContext("T", 1, name, config, {name: sources}, {name: [1]}, lambda *a: None)
    instance.initialize(config, context)
    assert not instance._folding
    return instance, recorder


def random_arrivals(rng: Any, n: int, by_key: bool, kind: str) -> list[tuple[str, float, Any]]:
    """("tuple", now, values) and ("tick", now, None) calls in time order: bursts,
    quiet stretches longer than a window, keys that come and go."""
    keys = [f"k{i}" for i in range(rng.randint(1, 6))]
    calls: list[tuple[str, float, Any]] = []
    now = 100.0 + rng.random()
    for _ in range(n):
        now += rng.choice([0.0, 0.001, 0.05, 0.2, 0.7, 1.3, 4.0, 13.0])
        if rng.random() < 0.15:
            calls.append(("tick", now, None))
            continue
        value = {
            "int": rng.randint(-5, 50),
            "str": rng.choice("abcdef"),
            "tuple": (rng.randint(0, 9),),
        }[kind]
        calls.append(("tuple", now, (rng.choice(keys), value) if by_key else (value,)))
    calls.append(("tick", now + 60, None))
    return calls


FUNCTIONS = {  # associative: int sums and max; concatenation, also not commutative
    "int": [add, max],
    "str": [add],
    "tuple": [add],
}
SLIDING = [(3, 1), (3, 2), (10, 2), (1, 0.4), (2.5, 1), (5, 3), (0.7, 0.3), (2, 2)]


@pytest.mark.parametrize("mode", ["ATMOST_ONCE", "ATLEAST_ONCE"])
@pytest.mark.parametrize("by_key", [True, False])
def test_folding_per_pane_emits_and_acks_exactly_what_refolding_does(
    mode: str, by_key: bool
) -> None:
    import random

    checked = 0
    for seed in range(60):
        rng = random.Random(seed)
        length, slide = SLIDING[seed % len(SLIDING)]
        kind = rng.choice(sorted(FUNCTIONS))
        fn = rng.choice(FUNCTIONS[kind])
        builder = Builder()
        pairs = builder.new_source(lambda: 1).map(lambda x: x)
        window = WindowConfig.create_sliding_window(length, slide)
        if by_key:
            pairs.reduce_by_key_and_window(window, fn).consume(print)
            name, stream = "reducebykeyandwindow-1", KEYED
        else:
            pairs.reduce_by_window(window, fn).consume(print)
            name, stream = "reducebywindow-1", OUTPUT
        folding, folded = start(builder, name, mode)
        refolding, refolded = start_refolding(builder, name, mode)
        assert folding._folding and folding._holding is (mode == "ATLEAST_ONCE")
        trace: dict[str, list[Any]] = {"folding": [], "refolding": []}
        sent: list[HeronTuple] = []
        position: dict[int, int] = {}  # id of a sent tuple -> its place in the input
        for _call, now, values in random_arrivals(rng, rng.randint(1, 120), by_key, kind):
            t = tup("map-1", stream, *values) if values is not None else None
            if t is not None:
                position[id(t)] = len(sent)
                sent.append(t)
            for who, bolt, rec in (
                ("folding", folding, folded),
                ("refolding", refolding, refolded),
            ):
                bolt._clock = lambda now=now: now
                if t is None:
                    bolt.process_tick(None)
                else:
                    bolt.process(t)
                # per call: what it emitted, anchors as places in the input, and
                # at least once what it acked, in order
                emitted = [
                    (out, on, None if a is None else [position[id(x)] for x in a])
                    for out, on, a, _ in rec.emitted
                ]
                acked = [position[id(x)] for x in rec.acked] if mode == "ATLEAST_ONCE" else []
                rec.emitted.clear()
                rec.acked.clear()
                trace[who].append((emitted, acked))
                if who == "folding":
                    checked += len(emitted)
        assert trace["folding"] == trace["refolding"], (seed, length, slide, kind, fn)
        assert refolded.failed == folded.failed == []
        if mode == "ATLEAST_ONCE":  # every tuple acked once
            assert sorted(a for _, acked in trace["folding"] for a in acked) == list(
                range(len(sent))
            )
        assert folding._windows.held == refolding._windows.held == 0
    assert checked > 500  # windows did fire
