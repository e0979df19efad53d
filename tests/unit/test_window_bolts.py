"""heronpy's window bolts and heronpy_lite's WindowedBolt as components: built
with a delegate that records what they emit, ack and fail, driven by a clock
passed in (no engine, no sleeps). The windows' own rules are tested in
test_window_core.py; here: the bolts' config, ticks, acking, anchoring, late
stream, memory bound, errors and checkpointed state."""

from __future__ import annotations

import logging
from typing import Any

import msgpack
import pytest

from heronpy_lite.api import Grouping, Spout, api_constants
from heronpy_lite.api.bolt.window_bolt import (
    SlidingWindowBolt,
    TumblingWindowBolt,
    WindowContext,
)
from heronpy_lite.api.bolt.windowed import LATE_FIELDS, WindowedBolt, Windowing
from heronpy_lite.api.state.state import HashMapState
from heronpy_lite.api.topology_context import StreamId, TopologyContext
from heronpy_lite.api.tuple import HeronTuple
from heronpy_lite.errors import TopologyError

TICK = api_constants.TOPOLOGY_TICK_TUPLE_FREQ_SECS
ALO = {api_constants.TOPOLOGY_RELIABILITY_MODE: "ATLEAST_ONCE"}


class Recorder:
    """The delegate: records every emit, ack and fail."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("test.window_bolts")
        self.emitted: list[tuple[str, list[Any], Any]] = []
        self.acked: list[Any] = []
        self.failed: list[Any] = []

    def emit(self, tup: Any, stream: str = "default", anchors: Any = None, **_: Any) -> None:
        self.emitted.append((stream, list(tup), anchors))

    def ack(self, tup: Any) -> None:
        self.acked.append(tup)

    def fail(self, tup: Any) -> None:
        self.failed.append(tup)


def tup(*values: Any, component: str = "src", stream: str = "default") -> HeronTuple:
    return HeronTuple(None, component, stream, 1, list(values), 0.0, None)


def context(config: dict[str, Any], sources: list[tuple[str, str]] | None = None) -> Any:
    metrics: dict[str, Any] = {}
    ctx = TopologyContext(
        "T",
        2,
        "w",
        config,
        {"w": {StreamId(s, c): Grouping.SHUFFLE for c, s in (sources or [("src", "default")])}},
        {"w": [2]},
        lambda name, metric, bucket: metrics.__setitem__(name, metric),
    )
    ctx.metrics = metrics  # type: ignore[attr-defined]
    return ctx


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def build(cls: type, config: dict[str, Any], clock: Clock, state: Any = None) -> Any:
    recorder = Recorder()
    bolt = cls(delegate=recorder)
    bolt._clock = clock
    if state is not None:
        bolt.init_state(state)
    bolt.initialize(config, context(config))
    return bolt, recorder


# -- heronpy's SlidingWindowBolt and TumblingWindowBolt --


class Windows(SlidingWindowBolt):
    def initialize(self, config: dict[str, Any], context: Any) -> None:
        super().initialize(config, context)
        self.windows: list[tuple[WindowContext, list[Any]]] = []

    def processWindow(self, window_info: WindowContext, tuples: list[Any]) -> None:
        self.windows.append((window_info, [t.values[0] for t in tuples]))


class Tumbles(TumblingWindowBolt):
    def initialize(self, config: dict[str, Any], context: Any) -> None:
        super().initialize(config, context)
        self.windows: list[tuple[WindowContext, list[Any]]] = []

    def processWindow(self, window_info: WindowContext, tuples: list[Any]) -> None:
        self.windows.append((window_info, [t.values[0] for t in tuples]))


SLIDING = {
    SlidingWindowBolt.WINDOW_DURATION_SECS: 10,
    SlidingWindowBolt.WINDOW_SLIDEINTERVAL_SECS: 5,
}


def test_sliding_window_bolt_sets_its_tick_and_hands_over_the_last_duration() -> None:
    clock = Clock(100.2)
    config = dict(SLIDING)
    bolt, rec = build(Windows, config, clock)
    assert config[TICK] == "5"  # heronpy sets it as a string inside initialize
    for now, name in [(100.2, "a"), (103.9, "b"), (105.0, None), (107.5, "c")]:
        clock.now = now
        if name is None:
            bolt.process_tick(None)
        else:
            bolt.process(tup(name))
    for now in (110.0, 115.0, 120.0):
        clock.now = now
        bolt.process_tick(None)
    assert bolt.windows == [
        (WindowContext(95, 105), ["a", "b"]),
        (WindowContext(100, 110), ["a", "b", "c"]),
        # heronpy handed a and b over once more here: they are older than 105
        (WindowContext(105, 115), ["c"]),
        (WindowContext(110, 120), []),
    ]
    assert [t.values[0] for t in rec.acked] == ["a", "b", "c"]
    assert rec.failed == []


def test_tumbling_window_bolt_hands_over_and_acks_each_tuple_once() -> None:
    clock = Clock(10.0)
    config = {TumblingWindowBolt.WINDOW_DURATION_SECS: "3"}
    bolt, rec = build(Tumbles, config, clock)
    assert config[TICK] == "3"
    bolt.process(tup("a"))
    bolt.process(tup("b"))
    clock.now = 13.1
    bolt.process_tick(None)
    bolt.process(tup("c"))
    clock.now = 16.2
    bolt.process_tick(None)
    assert bolt.windows == [(WindowContext(10, 13), ["a", "b"]), (WindowContext(13, 16), ["c"])]
    assert [t.values[0] for t in rec.acked] == ["a", "b", "c"]


def test_heronpy_window_bolts_fail_tuples_beyond_max_tuples() -> None:
    config = {**SLIDING, SlidingWindowBolt.WINDOW_MAX_TUPLES: 2}
    bolt, rec = build(Windows, config, Clock(1))
    for name in "abc":
        bolt.process(tup(name))
    assert [t.values[0] for t in rec.failed] == ["c"]
    assert bolt._refused.value == 1


def test_heronpy_window_bolts_need_a_duration() -> None:
    with pytest.raises(ValueError, match="slidingwindowbolt_duration_secs"):
        build(Windows, {}, Clock())
    with pytest.raises(ValueError, match="slideinterval"):
        build(Windows, {**SLIDING, SlidingWindowBolt.WINDOW_SLIDEINTERVAL_SECS: 20}, Clock())


@pytest.mark.parametrize("cls", [Windows, Tumbles])
def test_pre_save_stores_the_window_and_initialize_takes_it_back(cls: type) -> None:
    config = {**SLIDING, TumblingWindowBolt.WINDOW_DURATION_SECS: 10}
    clock = Clock(50.0)
    state = HashMapState()
    bolt, _ = build(cls, dict(config), clock, state)
    bolt.process(tup("a", [1, 2]))
    bolt.process(tup("b", {"k": 3}))
    bolt.pre_save(1)
    # what a checkpoint store would write and read back
    stored = msgpack.unpackb(msgpack.packb(state.snapshot()))
    again, rec = build(cls, dict(config), clock, HashMapState(stored))
    clock.now = 55.0
    again.process_tick(None)
    assert again.windows[0][1] == ["a", "b"]
    restored = again._window.entries[0][0] if cls is Windows else rec.acked[0]
    assert restored.values == ["a", [1, 2]] and restored.component == "src"


# -- WindowedBolt --


class Source(Spout):
    outputs = ["ts", "word"]


class Collect(WindowedBolt):
    outputs = ["start", "end", "words", "late"]
    windowing = Windowing.tumbling(10, timestamp="ts", lag=2, late_stream="late")

    def process_window(self, window: Any, tuples: list[Any]) -> None:
        self.emit([window.start, window.end, [t.values[1] for t in tuples], window.late])


def event_bolt(
    cls: type = Collect, mode: dict[str, Any] | None = None, **config: Any
) -> tuple[Any, Recorder, Any]:
    source = Source.spec(name="src")
    spec = cls.spec(name="w", inputs={source: Grouping.fields("word")}, config=config)
    full = {**(mode or {}), **spec.custom_config}
    bolt, rec = build(cls, full, Clock(1000.0))
    return bolt, rec, spec


def test_event_time_bolt_fires_on_the_watermark_and_sends_late_tuples_to_the_late_stream() -> None:
    bolt, rec, spec = event_bolt(mode=ALO)
    assert spec.output_fields()["late"] == LATE_FIELDS
    feed = [(1, "a"), (11, "b"), (5, "c"), (12, "d"), (3, "e"), (30, "f")]
    tuples = [tup(ts, word) for ts, word in feed]
    for t in tuples:
        bolt.process(t)
    windows = [(v, anchors) for stream, v, anchors in rec.emitted if stream == "default"]
    assert [v for v, _ in windows] == [[0, 10, ["a", "c"], False], [10, 20, ["b", "d"], False]]
    # ATLEAST_ONCE: emits in process_window are anchored to the window's tuples
    assert windows[0][1] == [tuples[0], tuples[2]]
    late = [(v, anchors) for stream, v, anchors in rec.emitted if stream == "late"]
    assert late == [(["src", "default", [3, "e"], 3], [tuples[4]])]
    # acked once their window is finished, the late one after its late emit
    assert rec.acked == [tuples[0], tuples[2], tuples[4], tuples[1], tuples[3]]
    assert bolt._late_count.value == 1


def test_event_time_bolt_sets_no_tick_and_processing_time_bolts_do() -> None:
    spec = Collect.spec(name="w", inputs=[Source.spec(name="src")])
    config = dict(spec.custom_config)
    build(Collect, config, Clock())
    assert TICK not in config

    class Ticking(WindowedBolt):
        windowing = Windowing.sliding(2, 0.5)

    config = {}
    build(Ticking, config, Clock())
    assert config[TICK] == 0.05


def test_anchors_can_be_given_explicitly_and_are_not_added_at_most_once() -> None:
    class Unanchored(Collect):
        def process_window(self, window: Any, tuples: list[Any]) -> None:
            self.emit([window.start, window.end, [], False], anchors=[])

    bolt, rec, _ = event_bolt(Unanchored, mode=ALO)
    for ts in (1, 20):
        bolt.process(tup(ts, "x"))
    assert rec.emitted == [("default", [0, 10, [], False], [])]
    bolt, rec, _ = event_bolt()  # ATMOST_ONCE: no anchors
    for ts in (1, 20):
        bolt.process(tup(ts, "x"))
    assert rec.emitted == [("default", [0, 10, ["x"], False], None)]


def test_a_raising_process_window_fails_that_windows_tuples() -> None:
    class Raising(Collect):
        def process_window(self, window: Any, tuples: list[Any]) -> None:
            if window.start == 0:
                raise RuntimeError("boom")
            super().process_window(window, tuples)

    bolt, rec, _ = event_bolt(Raising, mode=ALO)
    tuples = [tup(ts, "x") for ts in (1, 12, 25)]
    for t in tuples:
        bolt.process(t)
    assert rec.failed == [tuples[0]]
    assert rec.acked == [tuples[1]]
    assert bolt._error_count.value == 1


def test_a_tuple_without_a_timestamp_is_dropped_and_counted() -> None:
    bolt, rec, _ = event_bolt()
    bad = tup("yesterday", "x")
    bolt.process(bad)
    assert rec.acked == [bad] and rec.emitted == []
    assert bolt._error_count.value == 1


def test_processing_time_windows_longer_than_the_message_timeout_are_refused_at_least_once() -> (
    None
):
    class Long(WindowedBolt):
        windowing = Windowing.sliding(20, 10)

    with pytest.raises(ValueError, match=r"must be shorter than topology\.message\.timeout\.secs"):
        build(Long, {**ALO, api_constants.TOPOLOGY_MESSAGE_TIMEOUT_SECS: 30}, Clock())
    build(Long, {**ALO, api_constants.TOPOLOGY_MESSAGE_TIMEOUT_SECS: 31}, Clock())
    build(Long, {api_constants.TOPOLOGY_MESSAGE_TIMEOUT_SECS: 30}, Clock())  # at most once


def test_windowed_bolt_fails_tuples_beyond_max_tuples() -> None:
    class Small(WindowedBolt):
        windowing = Windowing.tumbling_count(10, max_tuples=2)

    bolt, rec = build(Small, {}, Clock())
    tuples = [tup(i) for i in range(3)]
    for t in tuples:
        bolt.process(t)
    assert rec.failed == [tuples[2]]
    assert bolt._refused_count.value == 1


def test_session_windows_keyed_by_field_name() -> None:
    class Sessions(WindowedBolt):
        outputs = ["word", "count"]
        windowing = Windowing.session(5, timestamp="ts", key="word")

        def process_window(self, window: Any, tuples: list[Any]) -> None:
            self.emit([window.key, len(tuples)])

    bolt, rec, _ = event_bolt(Sessions)
    for ts, word in [(1, "a"), (2, "b"), (4, "a"), (20, "a")]:
        bolt.process(tup(ts, word))
    assert [v for _, v, _ in rec.emitted] == [["b", 1], ["a", 2]]


def test_spec_explains_fields_it_cannot_find() -> None:
    with pytest.raises(TopologyError, match="inputs given as component specs"):
        Collect.spec(name="w", inputs={"src": Grouping.SHUFFLE})
    other = Spout.spec(name="other")
    with pytest.raises(TopologyError, match="has no field 'ts'"):
        Collect.spec(name="w", inputs=[other])

    class NoWindowing(WindowedBolt):
        pass

    with pytest.raises(TopologyError, match="needs a Windowing"):
        NoWindowing.spec(inputs=[other])


def test_windowed_bolt_state_survives_a_checkpoint() -> None:
    source = Source.spec(name="src")
    spec = Collect.spec(name="w", inputs=[source])
    state = HashMapState()
    bolt, _ = build(Collect, dict(spec.custom_config), Clock(), state)
    bolt.process(tup(1, "a"))
    bolt.process(tup(4, "b"))
    bolt.pre_save(7)
    stored = msgpack.unpackb(msgpack.packb(state.snapshot()))
    again, rec = build(Collect, dict(spec.custom_config), Clock(), HashMapState(stored))
    again.process(tup(30, "c"))
    assert [v for _, v, _ in rec.emitted] == [[0, 10, ["a", "b"], False]]
