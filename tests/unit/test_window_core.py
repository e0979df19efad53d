"""The window core (`heronpy_lite.api.bolt._windows`): pure, time passed in.

Each test feeds items with known times and checks exactly which windows fire,
with which items, what is released (acked), late or refused."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from heronpy_lite.api.bolt._windows import FoldError, Step, WindowInfo, Windowing, WindowState


def fired(step: Step | None) -> list[tuple[Any, ...]]:
    if step is None:
        return []
    return [(w.start, w.end, w.key, w.late, items) for w, items in step.fired]


def released(step: Step | None) -> list[Any]:
    return [] if step is None else step.released


class Feed:
    """Collects every step of a state, for tests that look at the whole run."""

    def __init__(self, state: WindowState) -> None:
        self.state = state
        self.fired: list[tuple[Any, ...]] = []
        self.released: list[Any] = []
        self.late: list[Any] = []
        self.refused: list[Any] = []

    def _take(self, step: Step | None) -> None:
        if step is not None:
            self.fired += fired(step)
            self.released += step.released
            self.late += step.late
            self.refused += step.refused

    def add(self, item: Any, now: float = 0.0, ts: Any = None, key: Any = None, source: Any = None):
        self._take(self.state.add(item, now, ts, key, source))

    def advance(self, now: float) -> None:
        self._take(self.state.advance(now))


# -- processing time --


def test_tumbling_processing_time_fires_each_window_once_at_its_end() -> None:
    state = WindowState(Windowing.tumbling(1))
    assert state.add("a", 0.1) is None
    assert state.add("b", 0.5) is None
    assert state.advance(0.99) is None
    step = state.advance(1.0)
    assert fired(step) == [(0, 1, None, False, ["a", "b"])]
    assert released(step) == ["a", "b"]
    # an item arriving after the end goes to the next window; its arrival fires nothing old
    assert state.add("c", 1.2) is None
    assert state.held == 1
    assert fired(state.advance(2.5)) == [(1, 2, None, False, ["c"])]
    assert state.held == 0
    assert state.advance(10) is None  # empty windows never fire


def test_sliding_processing_time_keeps_a_tuple_until_its_last_window() -> None:
    state = WindowState(Windowing.sliding(2, 1))
    state.add("a", 0.5)
    step = state.advance(1.0)
    assert fired(step) == [(-1, 1, None, False, ["a"])]
    assert released(step) == []
    state.add("b", 1.5)
    step = state.advance(2.0)
    assert fired(step) == [(0, 2, None, False, ["a", "b"])]
    assert released(step) == ["a"]
    step = state.advance(3.0)
    assert fired(step) == [(1, 3, None, False, ["b"])]
    assert released(step) == ["b"]


def test_windows_that_are_not_multiples_of_the_slide_are_exact() -> None:
    # length 1.0 s, slide 0.4 s: panes of 0.2 s; windows [0.4k, 0.4k + 1.0)
    state = WindowState(Windowing.sliding(1.0, 0.4))
    feed = Feed(state)
    for i, t in enumerate([0.05, 0.35, 0.45, 0.95, 1.05]):
        feed.add(i, t)
    feed.advance(5)
    windows = {(w[0], w[1]): w[4] for w in feed.fired}
    assert windows == {
        (-0.8, 0.2): [0],
        (-0.4, 0.6): [0, 1, 2],
        (0.0, 1.0): [0, 1, 2, 3],
        (0.4, 1.4): [2, 3, 4],
        (0.8, 1.8): [3, 4],
    }
    assert sorted(feed.released) == [0, 1, 2, 3, 4]
    assert all(isinstance(w[0], float) for w in feed.fired)  # not whole seconds: floats


def test_a_late_advance_fires_every_window_due_in_order() -> None:
    state = WindowState(Windowing.tumbling(1))
    state.add("a", 0.5)
    state.add("b", 0.9)
    state.add("c", 1.5)  # arrival at 1.5 fires [0, 1) first (advance inside add)
    step = state.add("d", 3.2)
    assert fired(step) == [(1, 2, None, False, ["c"])]
    assert fired(state.advance(4)) == [(3, 4, None, False, ["d"])]


def test_keyed_time_windows_fire_per_key_in_key_order() -> None:
    state = WindowState(Windowing.tumbling(1, key=0))
    state.add("x1", 0.1, key="x")
    state.add("y1", 0.2, key="y")
    state.add("x2", 0.3, key="x")
    assert fired(state.advance(1)) == [
        (0, 1, "x", False, ["x1", "x2"]),
        (0, 1, "y", False, ["y1"]),
    ]


# -- event time --


def test_event_time_tumbling_with_lag_fires_on_the_watermark_and_reports_late() -> None:
    # watermark = newest timestamp - 2
    feed = Feed(WindowState(Windowing.tumbling(10, timestamp=0, lag=2)))
    feed.add("t1", ts=1)
    feed.add("t5", ts=5)
    feed.add("t11", ts=11)  # watermark 9: nothing yet
    assert feed.fired == []
    feed.add("t9", ts=9)  # out of order but in time: [0, 10) is still open
    feed.add("t12", ts=12)  # watermark 10: [0, 10) fires
    assert feed.fired == [(0, 10, None, False, ["t1", "t5", "t9"])]
    assert feed.released == ["t1", "t5", "t9"]
    feed.add("t8", ts=8)  # [0, 10) is finished: late
    assert feed.late == ["t8"]
    feed.add("t15", ts=15)
    feed.add("t10", ts=10)
    feed.add("t25", ts=25)  # watermark 23: [10, 20) fires, items in time order
    assert feed.fired[1:] == [(10, 20, None, False, ["t10", "t11", "t12", "t15"])]
    assert feed.state.held == 1  # t25


def test_allowed_lateness_fires_a_window_again_then_forgets_it() -> None:
    feed = Feed(WindowState(Windowing.tumbling(10, timestamp=0, allowed_lateness=5)))
    feed.add("a", ts=1)
    feed.add("b", ts=12)  # watermark 12: [0, 10) fires, kept until 15
    assert feed.fired == [(0, 10, None, False, ["a"])]
    assert feed.released == []
    feed.add("c", ts=4)  # within the lateness: fires again, late
    assert feed.fired[1:] == [(0, 10, None, True, ["a", "c"])]
    feed.add("d", ts=15)  # watermark 15: [0, 10) forgotten
    assert feed.released == ["a", "c"]
    feed.add("e", ts=3)  # after the lateness: late
    assert feed.late == ["e"]


def test_sliding_event_time_tuple_in_a_finished_and_an_open_window_is_not_late() -> None:
    feed = Feed(WindowState(Windowing.sliding(10, 5, timestamp=0)))
    feed.add("a", ts=3)
    feed.add("b", ts=11)  # watermark 11: [-5, 5) and [0, 10) fire
    assert [(w[0], w[1], w[4]) for w in feed.fired] == [(-5, 5, ["a"]), (0, 10, ["a"])]
    feed.add("c", ts=7)  # [0, 10) is finished, [5, 15) is open: c joins only [5, 15)
    assert feed.late == []
    feed.add("d", ts=30)
    assert [(w[0], w[1], w[4]) for w in feed.fired[2:]] == [
        (5, 15, ["c", "b"]),
        (10, 20, ["b"]),
    ]
    assert sorted(feed.released) == ["a", "b", "c"]


def test_the_watermark_waits_for_every_source_and_follows_the_slowest() -> None:
    feed = Feed(WindowState(Windowing.tumbling(10, timestamp=0), sources=["left", "right"]))
    feed.add("l1", ts=1, source="left")
    feed.add("l30", ts=30, source="left")  # no watermark: right has said nothing
    assert feed.fired == [] and feed.state.watermark is None
    feed.add("r2", ts=2, source="right")  # watermark min(30, 2) = 2
    assert feed.fired == []
    feed.add("r12", ts=12, source="right")  # watermark 12: [0, 10) fires
    assert feed.fired == [(0, 10, None, False, ["l1", "r2"])]
    feed.add("r40", ts=40, source="right")  # watermark min(30, 40) = 30
    assert feed.fired[1:] == [(10, 20, None, False, ["r12"])]  # [20, 30) is empty


def test_event_time_needs_numeric_timestamps() -> None:
    state = WindowState(Windowing.tumbling(1, timestamp=0))
    with pytest.raises(ValueError, match="timestamp must be a number"):
        state.add("x", 0, "soon")


# -- sessions --


def test_sessions_per_key_close_after_the_gap() -> None:
    feed = Feed(WindowState(Windowing.session(5, timestamp=0, key=1)))
    feed.add("x1", ts=1, key="x")
    feed.add("x3", ts=3, key="x")
    feed.add("y2", ts=2, key="y")
    feed.add("x10", ts=10, key="x")  # watermark 10: x [1, 8) and y [2, 7) close
    assert feed.fired == [
        (2.0, 7.0, "y", False, ["y2"]),
        (1.0, 8.0, "x", False, ["x1", "x3"]),
    ]
    assert sorted(feed.released) == ["x1", "x3", "y2"]
    feed.add("x14", ts=14, key="x")
    feed.add("x30", ts=30, key="x")
    assert feed.fired[2:] == [(10.0, 19.0, "x", False, ["x10", "x14"])]


def test_a_bridging_tuple_merges_two_sessions() -> None:
    feed = Feed(WindowState(Windowing.session(5, timestamp=0, lag=20)))
    feed.add("a", ts=1)
    feed.add("b", ts=8)  # [1, 6) and [8, 13): two sessions
    feed.add("c", ts=4)  # [4, 9) overlaps both: one session [1, 13)
    feed.add("end", ts=40)  # watermark 20
    assert feed.fired == [(1.0, 13.0, None, False, ["a", "c", "b"])]


def test_a_session_tuple_after_the_lateness_is_late_unless_it_joins_an_open_session() -> None:
    feed = Feed(WindowState(Windowing.session(5, timestamp=0)))
    feed.add("a", ts=10)
    feed.add("b", ts=20)  # watermark 20: [10, 15) fired
    feed.add("c", ts=16)  # [16, 21) overlaps [20, 25): joins the open session
    feed.add("d", ts=2)  # [2, 7) is finished and joins nothing: late
    assert feed.late == ["d"]
    feed.add("e", ts=50)
    assert feed.fired == [
        (10.0, 15.0, None, False, ["a"]),
        (16.0, 25.0, None, False, ["c", "b"]),
    ]


def test_processing_time_sessions_close_on_advance() -> None:
    state = WindowState(Windowing.session(1))
    state.add("a", 0.0)
    state.add("b", 0.8)
    assert state.advance(1.7) is None
    assert fired(state.advance(1.8)) == [(0.0, 1.8, None, False, ["a", "b"])]


# -- count windows --


def test_sliding_count_windows() -> None:
    feed = Feed(WindowState(Windowing.sliding_count(3, 2)))
    for i in range(1, 7):
        feed.add(i, now=i)
    assert [w[4] for w in feed.fired] == [[1, 2], [2, 3, 4], [4, 5, 6]]
    assert feed.fired[1][:2] == (2.0, 4.0)  # first and last arrival
    assert feed.released == [1, 2, 3, 4, 5]
    assert feed.state.held == 1


def test_tumbling_count_windows_per_key() -> None:
    feed = Feed(WindowState(Windowing.tumbling_count(2, key=0)))
    for i, key in enumerate("aabba"):
        feed.add(i, key=key)
    assert [(w[2], w[4]) for w in feed.fired] == [("a", [0, 1]), ("b", [2, 3])]
    assert feed.state.held == 1


# -- memory bound --


def test_the_state_refuses_tuples_above_max_tuples_until_windows_release_some() -> None:
    state = WindowState(Windowing.tumbling(1, max_tuples=2))
    assert state.add("a", 0.1) is None
    assert state.add("b", 0.2) is None
    step = state.add("c", 0.3)
    assert step is not None and step.refused == ["c"] and state.held == 2
    step = state.add("d", 1.1)  # [0, 1) fired and released first: room again
    assert step is not None and step.released == ["a", "b"] and step.refused == []
    assert state.held == 1


def test_count_windows_are_bounded_too() -> None:
    state = WindowState(Windowing.tumbling_count(10, max_tuples=3))
    for i in range(3):
        state.add(i, 0)
    step = state.add(3, 0)
    assert step is not None and step.refused == [3]


# -- validation --


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Windowing.sliding(1, 2), "must not exceed"),
        (lambda: Windowing.tumbling(0), "at least 1 ms"),
        (lambda: Windowing.tumbling("5"), "number of seconds"),
        (lambda: Windowing.tumbling(1, lag=1), "need event time"),
        (lambda: Windowing.tumbling_count(0), "int >= 1"),
        (lambda: Windowing.tumbling_count(5, timestamp="ts"), "arrival order"),
        (lambda: Windowing.session(0), "at least 1 ms"),
        (lambda: Windowing.tumbling(1, max_tuples=0), "max_tuples"),
        (lambda: Windowing.tumbling(1, key=[]), "field name"),
        (lambda: Windowing.tumbling(1, timestamp="ts", lag=-1), "lag must be >= 0"),
    ],
)
def test_bad_windowing_is_refused_with_a_clear_message(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


# -- checkpoints --


@pytest.mark.parametrize(
    "windowing",
    [
        Windowing.sliding(10, 5, timestamp=0, allowed_lateness=5),
        Windowing.sliding_count(4, 2, key=0),
        Windowing.session(5, timestamp=0, key=0),
    ],
)
def test_a_restored_snapshot_continues_exactly_like_the_original(windowing: Windowing) -> None:
    times = [3, 1, 7, 12, 9, 14, 21, 2, 18, 33, 30, 45]

    def run(state: WindowState, items: list[int]) -> Feed:
        feed = Feed(state)
        for i in items:
            feed.add(i, now=i, ts=times[i] if windowing.event_time else None, key=i % 2)
        return feed

    original = WindowState(windowing)
    run(original, list(range(6)))
    saved = msgpack.unpackb(msgpack.packb(original.snapshot(lambda item: [item])))
    restored = WindowState(windowing)
    restored.restore(saved, lambda wire: wire[0])
    assert restored.held == original.held
    rest = list(range(6, len(times)))
    assert vars(run(restored, rest)) | {"state": None} == vars(run(original, rest)) | {
        "state": None
    }


def test_window_info_is_a_named_tuple_like_heronpys_window_context() -> None:
    info = WindowInfo(0, 10)
    assert (info.start, info.end) == info[:2] == (0, 10)
    assert info.key is None and info.late is False


# -- fold mode (at most once reduces over tumbling windows) --


def add(a: int, b: int) -> int:
    return a + b


def test_fold_mode_keeps_one_value_per_key_and_window() -> None:
    feed = Feed(WindowState(Windowing.tumbling(1), fold=add))
    for t, key in [(0.1, "a"), (0.2, "b"), (0.3, "a"), (1.1, "a")]:
        feed.add((key, 1), now=t)
    assert feed.state.held == 1  # a's value in [1, 2)
    feed.advance(2)
    assert feed.fired == [
        (0, 1, None, False, [("a", 2), ("b", 1)]),
        (1, 2, None, False, [("a", 1)]),
    ]
    assert feed.released == []  # nothing to ack later: the tuples were not kept


def test_fold_mode_in_event_time_is_late_and_refires_like_the_tuple_mode() -> None:
    feed = Feed(WindowState(Windowing.tumbling(10, timestamp=0, allowed_lateness=5), fold=add))
    feed.add(("k", 1), ts=1)
    feed.add(("k", 2), ts=3)
    feed.add(("j", 5), ts=12)  # watermark 12: [0, 10) fires
    feed.add(("k", 10), ts=4)  # within the lateness: fires again with the new value
    feed.add(("k", 100), ts=15)  # watermark 15: [0, 10) forgotten
    feed.add(("k", 1000), ts=2)  # late
    assert feed.fired == [(0, 10, None, False, [("k", 3)]), (0, 10, None, True, [("k", 13)])]
    assert feed.late == [("k", 1000)]
    assert feed.state.held == 2


def test_fold_mode_bounds_the_keys_and_needs_time_windows() -> None:
    state = WindowState(Windowing.tumbling(1, max_tuples=2), fold=add)
    assert state.add(("a", 1), 0.1) is None
    assert state.add(("b", 1), 0.1) is None
    assert state.add(("a", 1), 0.1) is None  # a known key costs nothing
    step = state.add(("c", 1), 0.2)
    assert step is not None and step.refused == [("c", 1)]
    for windowing in (Windowing.session(1), Windowing.tumbling_count(3)):
        with pytest.raises(ValueError, match="only time windows"):
            WindowState(windowing, fold=add)
    with pytest.raises(ValueError, match="fold mode"):
        WindowState(Windowing.tumbling(1), hold=True)


def test_fold_mode_snapshot_restores() -> None:
    windowing = Windowing.tumbling(10, timestamp=0)
    state = WindowState(windowing, fold=add)
    state.add((("k", 1), 1), 0, 1)
    state.add((("k", 1), 2), 0, 5)
    saved = msgpack.unpackb(msgpack.packb(state.snapshot(lambda item: item)))
    restored = WindowState(windowing, fold=add)
    restored.restore(saved, lambda wire: wire)
    step = restored.add((("k", 1), 4), 0, 30)
    assert fired(step) == [(0, 10, None, False, [(("k", 1), 3)])]


# -- fold mode over sliding windows (incremental aggregation per pane) --


def feed_both(
    windowing: Windowing, events: list[tuple[float, str, int]], fn: Any, hold: bool
) -> tuple[list[list[Any]], list[list[Any]]]:
    """The same events through the tuple mode and the fold mode, step by step:
    per call, (windows fired as (start, end, late, {key: result}) in order, items
    released), the tuple mode's results folded here from its items in order."""
    tuples, folded = WindowState(windowing), WindowState(windowing, fold=fn, hold=hold)
    per_tuples: list[list[Any]] = []
    per_folded: list[list[Any]] = []
    for i, (t, key, value) in enumerate(events):
        item = (key, value, i)
        ts = t if windowing.event_time else None
        for state, out, it in (
            (tuples, per_tuples, item),
            (folded, per_folded, item if hold else item[:2]),
        ):
            step = state.add(it, t, ts)
            out.append(outcome(step, state is tuples, fn, hold))
    for now in (100.0, 200.0):
        per_tuples.append(outcome(tuples.advance(now), True, fn, hold))
        per_folded.append(outcome(folded.advance(now), False, fn, hold))
    return per_tuples, per_folded


def outcome(step: Step | None, from_tuples: bool, fn: Any, hold: bool) -> list[Any]:
    if step is None:
        return [[], [], []]
    windows = []
    for w, items in step.fired:
        results: dict[Any, Any] = {}
        if from_tuples:
            for key, value, i in items:  # the left fold, keys in first-seen order
                old = results.get(key)
                results[key] = [value, [i]] if old is None else [fn(old[0], value), old[1] + [i]]
                results[key][1].sort()
            if not hold:
                results = {k: v for k, (v, _) in results.items()}
        else:
            results = {e[0]: [e[1], sorted(e[2])] if hold else e[1] for e in items}
            assert list(results) == [e[0] for e in items]  # each key once
        windows.append((w.start, w.end, w.late, list(results.items())))
    # what is acked: the tuple mode releases its items, the hold mode their handles
    released = sorted(r[2] if from_tuples else r for r in step.released) if hold else []
    late = sorted((key, value) for key, value, *_ in step.late)
    return [windows, released, late]


EVENTS = [  # (time, key, value): keys come and go, panes stay empty, time jumps
    (0.05, "a", 1), (0.1, "b", 2), (0.3, "a", 3), (0.45, "c", 4), (0.5, "a", 5),
    (0.95, "b", 6), (1.05, "a", 7), (1.3, "c", 8), (2.9, "c", 9), (2.95, "a", 10),
    (3.0, "b", 11), (3.05, "b", 12), (7.5, "a", 13),
]  # fmt: skip


@pytest.mark.parametrize("hold", [False, True])
@pytest.mark.parametrize(
    "windowing", [Windowing.sliding(1.0, 0.4), Windowing.sliding(2, 1), Windowing.tumbling(1)]
)
@pytest.mark.parametrize("fn", [add, max, lambda a, b: a * b % 1000003])
def test_fold_mode_gives_the_tuple_modes_windows_for_associative_functions(
    windowing: Windowing, fn: Any, hold: bool
) -> None:
    per_tuples, per_folded = feed_both(windowing, EVENTS, fn, hold)
    assert per_folded == per_tuples
    assert sum(len(w) for w, *_ in per_tuples) >= 5  # windows did fire


OUT_OF_ORDER = [  # event time: (timestamp, key, value), some late, some too late
    (0.3, "a", 1), (0.1, "b", 2), (1.2, "a", 3), (0.6, "a", 4), (2.5, "b", 5),
    (1.1, "b", 6), (0.2, "a", 7), (3.9, "a", 8), (2.2, "c", 9), (9.0, "a", 10),
]  # fmt: skip


@pytest.mark.parametrize("hold", [False, True])
@pytest.mark.parametrize("fn", [add, max])
def test_event_time_fold_mode_matches_for_commutative_functions(fn: Any, hold: bool) -> None:
    windowing = Windowing.sliding(2, 1, timestamp=0, lag=0.5, allowed_lateness=1)
    per_tuples, per_folded = feed_both(windowing, OUT_OF_ORDER, fn, hold)

    def keys_sorted(per_call: list[list[Any]]) -> list[Any]:
        # keys come in the order they arrived, in the tuple mode in time order
        # (anchors too: in arrival order); in event time that is not time order
        return [
            [[(*w[:3], sorted(w[3], key=repr)) for w in fired], *rest] for fired, *rest in per_call
        ]

    assert keys_sorted(per_folded) == keys_sorted(per_tuples)
    fired = [w for step, *_ in per_tuples for w in step]
    assert any(late for _, _, late, _ in fired)  # a window fired again with a late item


def test_sliding_fold_mode_holds_a_value_per_key_and_pane_not_per_item() -> None:
    # Heron's word count: 10 s windows every 2 s, so five panes per window
    state = WindowState(Windowing.sliding(10, 2, max_tuples=40), fold=add)
    feed = Feed(state)
    words = ["Mary", "had", "a", "little", "lamb", "I", "love", "you"]
    for i in range(240_000):  # 20,000 words/s for 12 s
        feed.add((words[i % 8], 1), now=i / 20_000)
        assert state.held <= 8 * 6  # 8 keys in at most six panes (one just begun)
    feed.advance(30)
    assert feed.refused == []
    by_window: dict[tuple[int, int], dict[str, int]] = {}
    for start, end, _, _, items in feed.fired:
        by_window[(start, end)] = dict(items)
    assert by_window[(0, 10)] == {w: 25_000 for w in words}  # 200,000 words in [0, 10)
    assert by_window[(2, 12)] == {w: 25_000 for w in words}
    assert by_window[(10, 20)] == {w: 5_000 for w in words}
    assert state.held == 0


def test_a_non_associative_reduce_folds_each_pane_then_the_panes() -> None:
    feed = Feed(WindowState(Windowing.sliding(2, 1), fold=lambda a, b: a - b))
    for t, v in [(0.1, 100), (0.2, 10), (1.1, 5), (1.2, 1)]:
        feed.add(("k", v), now=t)
    feed.advance(3)
    windows = {(start, end): items for start, end, _, _, items in feed.fired}
    # the left fold of [0, 2) would be 100 - 10 - 5 - 1 = 84; panes: (100 - 10) - (5 - 1)
    assert windows[(0, 2)] == [("k", 86)]
    assert windows[(-1, 1)] == [("k", 90)] and windows[(1, 3)] == [("k", 4)]


def test_hold_mode_keeps_the_handles_to_ack_and_counts_them_against_max_tuples() -> None:
    state = WindowState(Windowing.sliding(2, 1, max_tuples=3), fold=add, hold=True)
    feed = Feed(state)
    feed.add(("a", 1, "t1"), now=0.5)
    feed.add(("a", 1, "t2"), now=0.6)
    feed.add(("b", 1, "t3"), now=1.5)  # fires [-1, 1) on the way: nothing released yet
    assert feed.fired == [(-1, 1, None, False, [("a", 2, ["t1", "t2"])])]
    assert feed.released == []
    feed.add(("b", 1, "t4"), now=1.6)  # three handles held: refused whatever its key
    assert feed.refused == [("b", 1, "t4")]
    feed.advance(2.0)  # [0, 2) fires, pane [0, 1) is done: t1, t2 released
    assert feed.fired[1:] == [(0, 2, None, False, [("a", 2, ["t1", "t2"]), ("b", 1, ["t3"])])]
    assert feed.released == ["t1", "t2"] and state.held == 1
    feed.advance(3.0)
    assert feed.fired[2:] == [(1, 3, None, False, [("b", 1, ["t3"])])]
    assert feed.released == ["t1", "t2", "t3"] and state.held == 0


def boom(a: int, b: int) -> int:
    if b < 0:
        raise ValueError(f"negative {b}")
    return a + b


@pytest.mark.parametrize("hold", [False, True])
def test_a_raising_fold_makes_that_key_an_error_in_the_windows_of_its_pane(hold: bool) -> None:
    state = WindowState(Windowing.sliding(2, 1), fold=boom, hold=hold)
    feed = Feed(state)

    def item(key: str, value: int) -> tuple[Any, ...]:
        return (key, value, f"{key}{value}") if hold else (key, value)

    feed.add(item("a", 1), now=0.1)
    feed.add(item("a", 2), now=1.1)
    feed.add(item("b", 1), now=1.2)
    feed.add(item("a", -1), now=1.3)  # raises: a's value in pane [1, 2) is an error
    feed.add(item("a", 5), now=1.4)  # the error stays: boom is not called with it
    step = state.add(item("b", 2), 2.5)  # fires [0, 2) first; the step is not lost
    assert step is not None and [(w.start, w.end) for w, _ in step.fired] == [(0, 2)]
    feed._take(step)
    feed.advance(10)
    results = {(s, e): {i[0]: i[1] for i in items} for s, e, _, _, items in feed.fired}
    assert results[(-1, 1)] == {"a": 1}
    for window in [(0, 2), (1, 3)]:
        error = results[window]["a"]
        assert isinstance(error, FoldError) and str(error.error) == "negative -1"
    assert results[(0, 2)]["b"] == 1 and results[(1, 3)]["b"] == 3
    if hold:  # the handles are there to fail, all of them released in the end
        handles = {(s, e): {i[0]: i[2] for i in items} for s, e, _, _, items in feed.fired}
        assert handles[(0, 2)]["a"] == ["a1", "a2", "a-1", "a5"]
        assert sorted(feed.released) == sorted(["a1", "a2", "b1", "a-1", "a5", "b2"])


@pytest.mark.parametrize("hold", [False, True])
def test_sliding_fold_mode_snapshot_restores_values_handles_and_errors(hold: bool) -> None:
    windowing = Windowing.sliding(10, 5, timestamp=0, allowed_lateness=5)

    def run(state: WindowState, items: list[tuple[int, str, int]]) -> Feed:
        feed = Feed(state)
        for ts, key, value in items:
            it = (key, value, [key, ts]) if hold else (key, value)
            feed.add(it, ts=ts)
        return feed

    first = [(3, "k", 1), (7, "k", 2), (8, "j", -1), (8, "j", 4), (12, "k", 3)]
    rest = [(9, "k", 10), (16, "j", 1), (26, "k", 1), (40, "k", 0)]
    original = WindowState(windowing, fold=boom, hold=hold)
    run(original, first)
    saved = msgpack.unpackb(msgpack.packb(original.snapshot(lambda h: h)))
    restored = WindowState(windowing, fold=boom, hold=hold)
    restored.restore(saved, lambda wire: wire)
    assert restored.held == original.held == (5 if hold else 4)

    def comparable(feed: Feed) -> Any:
        return [
            (w[:4], [(i[0], repr(i[1]) if isinstance(i[1], FoldError) else i[1], *i[2:])
                     for i in w[4]])
            for w in feed.fired
        ], feed.released  # fmt: skip

    a, b = comparable(run(restored, rest)), comparable(run(original, rest))
    for (window, items), (other_window, other_items) in zip(a[0], b[0], strict=True):
        assert window == other_window
        assert [i[:1] + i[2:] for i in items] == [i[:1] + i[2:] for i in other_items]
        assert [isinstance(i[1], str) and i[1].startswith("FoldError") for i in items] == [
            isinstance(i[1], str) and i[1].startswith("FoldError") for i in other_items
        ]
    assert a[1] == b[1]
    assert any(w[0][:2] == (0, 10) and w[0][3] for w in a[0])  # a late refire happened


def random_events(seed: int, event_time: bool) -> list[tuple[float, str, int]]:
    """(time, key, value) in arrival order; in event time out of order, some of
    it later than the lag and the allowed lateness."""
    import random

    rng = random.Random(seed)
    keys = "abcde"[: rng.randint(1, 5)]
    t = rng.random()
    events = []
    for _ in range(rng.randint(1, 80)):
        t += rng.choice([0.0, 0.01, 0.1, 0.3, 0.9, 2.5, 7.0])
        ts = max(0.0, t - rng.choice([0, 0, 0, 0.2, 0.8, 1.5, 4.0])) if event_time else t
        events.append((round(ts, 3), rng.choice(keys), rng.randint(-3, 30)))
    return events


@pytest.mark.parametrize("hold", [False, True])
@pytest.mark.parametrize("event_time", [False, True])
def test_fold_mode_matches_the_tuple_mode_for_random_input(event_time: bool, hold: bool) -> None:
    shapes = [(3, 2), (1.0, 0.4), (2, 1), (2.5, 1.0), (0.7, 0.3), (1, 1), (5, 3)]
    fired = late = 0
    for seed in range(40):
        length, slide = shapes[seed % len(shapes)]
        options: dict[str, Any] = {}
        if event_time:
            options = {"timestamp": 0, "lag": seed % 3 * 0.5, "allowed_lateness": seed % 2}
        windowing = Windowing.sliding(length, slide, **options)
        fn = [add, max][seed % 2]  # associative and, for event time, commutative
        per_tuples, per_folded = feed_both(windowing, random_events(seed, event_time), fn, hold)
        if event_time:  # keys in arrival order, not time order (see _windows)
            per_tuples, per_folded = (
                [[[(*w[:3], sorted(w[3])) for w in ws], *rest] for ws, *rest in per_call]
                for per_call in (per_tuples, per_folded)
            )
        assert per_folded == per_tuples, (seed, windowing)
        fired += sum(len(ws) for ws, *_ in per_tuples)
        late += sum(len(lt) for _, _, lt in per_tuples)
    assert fired > 200
    assert late > 10 if event_time else late == 0
