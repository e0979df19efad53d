"""The metrics manager's snapshot history: increases over a window from the
producers' own times, counter resets, bounds. Pure, time passed in."""

from __future__ import annotations

import pytest

from heronpy_lite.metrics.history import SnapshotHistory

LABELS = {"component": "spout", "instance_id": "1"}


def emitted(value: float) -> list[object]:
    return ["heron_emitted_total", "counter", {**LABELS, "stream": "default"}, value]


def series(window: list[dict[str, object]], source: str = "task-1") -> dict[str, list[object]]:
    (entry,) = [w for w in window if w["source"] == source]
    return {s[0]: s for s in entry["series"]}  # type: ignore[attr-defined, index]


def test_the_increase_over_a_window_uses_the_snapshots_own_times() -> None:
    h = SnapshotHistory(60, 1)
    for i in range(11):  # 1000 tuples/s, one snapshot per second
        h.add("task-1", 100.0 + i, [emitted(1000 * i)])
    (entry,) = h.window(now=110.4, seconds=5)
    assert (entry["since"], entry["time"]) == (105.0, 110.0)
    name, kind, labels, value, increase = entry["series"][0]
    assert (name, kind, value, increase) == ("heron_emitted_total", "counter", 10000, 5000)
    assert labels == {**LABELS, "stream": "default"}


def test_a_window_longer_than_the_history_starts_at_the_oldest_snapshot() -> None:
    h = SnapshotHistory(60, 1)
    h.add("task-1", 10.0, [emitted(5)])
    h.add("task-1", 12.0, [emitted(25)])
    (entry,) = h.window(now=12.5, seconds=600)
    assert entry["since"] == 10.0 and entry["series"][0][4] == 20


def test_a_single_snapshot_has_values_but_no_increase() -> None:
    h = SnapshotHistory(60, 1)
    h.add("task-1", 10.0, [emitted(5), ["heron_pending_trees", "gauge", LABELS, 7]])
    got = series(h.window(10.0, 10))
    assert got["heron_emitted_total"][3:] == [5, None]
    assert got["heron_pending_trees"][3:] == [7, None]  # gauges never have one


def test_a_restarted_process_counting_from_zero_adds_its_new_counts() -> None:
    h = SnapshotHistory(60, 1)
    for t, v in [(1.0, 100), (2.0, 200), (3.0, 30), (4.0, 80)]:  # restart between 2 and 3
        h.add("task-1", t, [emitted(v)])
    assert series(h.window(4.0, 10))["heron_emitted_total"][3:] == [80, 100 + 30 + 50]


def test_summaries_carry_count_and_sum() -> None:
    h = SnapshotHistory(60, 1)
    latency = "heron_execute_latency_seconds"
    h.add("task-1", 1.0, [[latency, "summary", LABELS, [10, 0.5]]])
    h.add("task-1", 2.0, [[latency, "summary", LABELS, [30, 1.5]]])
    assert series(h.window(2.0, 10))[latency][3:] == [[30, 1.5], [20, 1.0]]


def test_late_or_repeated_snapshots_are_ignored() -> None:
    h = SnapshotHistory(60, 1)
    h.add("task-1", 5.0, [emitted(50)])
    h.add("task-1", 6.0, [emitted(60)])
    h.add("task-1", 6.0, [emitted(999)])
    h.add("task-1", 4.0, [emitted(0)])
    assert series(h.window(6.0, 10))["heron_emitted_total"][3:] == [60, 10]


def test_history_is_bounded_in_seconds_and_count() -> None:
    h = SnapshotHistory(10, 1)
    for i in range(1000):
        h.add("task-1", float(i), [emitted(i)])
    src = h.sources["task-1"]
    assert len(src.times) <= 12 and src.times[0] >= 989
    h = SnapshotHistory(600, 1)
    for i in range(5000):
        h.add("task-1", i / 100, [emitted(i)])  # far faster than the interval
    assert len(h.sources["task-1"].times) == h.maxlen


def test_series_missing_from_the_latest_snapshot_are_left_out() -> None:
    h = SnapshotHistory(60, 1)
    other = ["heron_emitted_total", "counter", {**LABELS, "stream": "other"}, 3]
    h.add("task-1", 1.0, [emitted(1), other])
    h.add("task-1", 2.0, [emitted(2)])
    (entry,) = h.window(2.0, 10)
    assert [s[2]["stream"] for s in entry["series"]] == ["default"]


def test_a_series_that_appears_later_gets_an_increase_from_its_first_snapshot() -> None:
    h = SnapshotHistory(60, 1)
    h.add("task-1", 1.0, [])
    h.add("task-1", 2.0, [emitted(10)])
    assert series(h.window(2.0, 10))["heron_emitted_total"][4] is None
    h.add("task-1", 3.0, [emitted(25)])
    assert series(h.window(3.0, 10))["heron_emitted_total"][4] == 15


def test_bad_samples_are_counted_and_skipped() -> None:
    h = SnapshotHistory(60, 1)
    h.add(
        "task-1",
        1.0,
        [
            emitted(1),
            "garbage",
            ["x", "histogram", {}, 1],
            ["y", "counter", {}, "NaN"],
            ["z", "summary", {}, 3],
        ],
    )
    assert h.bad_samples == 4
    assert list(series(h.window(1.0, 1))) == ["heron_emitted_total"]


def test_exceptions_are_the_latest_sent() -> None:
    h = SnapshotHistory(60, 1)
    h.add("task-1", 1.0, [], [{"type": "ValueError", "count": 1}, "junk"])
    h.add("task-1", 2.0, [], [{"type": "ValueError", "count": 5}])
    (entry,) = h.window(2.0, 10)
    assert entry["exceptions"] == [{"type": "ValueError", "count": 5}]


@pytest.mark.parametrize("seconds", [1, 3, 7])
def test_rates_do_not_alias_whatever_the_reader_s_timing(seconds: int) -> None:
    """The rate status printed used to jump between 0 and twice the truth."""
    h = SnapshotHistory(60, 1)
    rates = []
    for i in range(30):
        h.add("task-1", 1000.0 + i + 0.37, [emitted(5000 * i)])
        for offset in (0.0, 0.5, 0.99):
            (entry,) = h.window(1000.0 + i + 0.37 + offset, seconds)
            span = entry["time"] - entry["since"]
            if span:
                rates.append(entry["series"][0][4] / span)
    assert rates and all(r == pytest.approx(5000) for r in rates)
