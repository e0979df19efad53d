"""What a metrics manager accepts (SnapshotGate): every check, the bound on
sources, their expiry; and the store's scrape, which a bad snapshot can no
longer break. Times are passed in."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from heronpy_lite.metrics.gate import BadSnapshot, SnapshotGate, check_sample, known_sources
from heronpy_lite.metrics.store import SnapshotStore
from heronpy_lite.wire import messages as m
from heronpy_lite.wire import metric_names as names

NOW = 1_700_000_000.0
TASK = {"component": "bolt", "instance_id": "3"}
GOOD = [names.EMITTED, "counter", {**TASK, "stream": "default"}, 5]


def gate(**kw: Any) -> SnapshotGate:
    kw.setdefault("expiry_secs", 60.0)
    kw.setdefault("max_series", 100)
    return SnapshotGate(known_sources(1, [3, 4]), **kw)


def snapshot(source: str = "task-3", samples: Any = None, when: float = NOW, exc: Any = None):
    return m.MetricsSnapshot(source, [GOOD] if samples is None else samples, when, exc or [])


def test_known_sources_are_the_containers_processes() -> None:
    assert known_sources(1, [3, 4]) == {"stmgr", "task-3", "task-4"}
    assert known_sources(0, []) == {"tmaster"}


def test_a_good_snapshot_is_kept() -> None:
    g = gate()
    accepted = g.check(snapshot(), NOW + 0.5)
    assert (accepted.source, accepted.time, accepted.samples) == ("task-3", NOW, [GOOD])
    assert g.last_seen == {"task-3": NOW + 0.5}


def test_an_unstamped_snapshot_gets_its_arrival_time() -> None:
    assert gate().check(snapshot(when=0.0), NOW).time == NOW


@pytest.mark.parametrize(
    ("sample", "why"),
    [
        ([5, "counter", {}, 1], "metric name 5 is not valid"),
        ("heron_emitted_total", "not \\[name, kind, labels, value\\]"),
        ([names.EMITTED, "counter", {}], "not \\[name, kind, labels, value\\]"),
        ([names.EMITTED, "histogram", {}, 1], "kind 'histogram'"),
        ([names.EMITTED, "gauge", TASK, 1], "is a counter, not a gauge"),
        (["heron_made_up_total", "counter", {}, 1], "unknown metric heron_made_up_total"),
        (["bad name", "counter", {}, 1], "metric name 'bad name' is not valid"),
        (["heron_user_x", "summary", {}, [1, 2]], "unknown metric heron_user_x"),
        ([names.EMITTED, "counter", [], 1], "labels are not a map"),
        ([names.EMITTED, "counter", {f"l{i}": "v" for i in range(9)}, 1], "at most 8"),
        ([names.EMITTED, "counter", {"a-b": "v"}, 1], "label name 'a-b'"),
        ([names.EMITTED, "counter", {"__x": "v"}, 1], "label name '__x'"),
        ([names.EMITTED, "counter", {"container": "9"}, 1], "set by the metrics manager"),
        ([names.EMITTED, "counter", {"topology": "T"}, 1], "set by the metrics manager"),
        ([names.EMITTED, "counter", {"type": "x"}, 1], "has no label type"),
        ([names.EMITTED, "counter", {"stream": 5}, 1], "label stream is not a string"),
        ([names.EMITTED, "counter", {"stream": "x" * 300}, 1], "label stream is not a string"),
        ([names.EMITTED, "counter", TASK, "5"], "is not a finite number"),
        ([names.EMITTED, "counter", TASK, True], "is not a finite number"),
        ([names.EMITTED, "counter", TASK, float("nan")], "is not a finite number"),
        ([names.IDLE_MS, "gauge", TASK, float("inf")], "is not a finite number"),
        ([names.EXECUTE_LATENCY, "summary", TASK, 3], "not \\[count, sum\\]"),
        ([names.EXECUTE_LATENCY, "summary", TASK, [3, "x"]], "not \\[count, sum\\]"),
    ],
)
def test_a_bad_sample_drops_the_snapshot(sample: Any, why: str) -> None:
    g = gate()
    with pytest.raises(BadSnapshot, match=why):
        g.check(snapshot(samples=[GOOD, sample]), NOW)
    assert g.dropped == {"bad_sample": 1}
    assert g.last_seen == {}


def test_user_metrics_are_counters_or_gauges_with_any_valid_labels() -> None:
    check_sample(["heron_user_hits_total", "counter", {**TASK, "key": "a b/c"}, 3])
    check_sample(["heron_user_mean", "gauge", TASK, 0.5])


def test_sources_outside_the_container_are_dropped_and_counted() -> None:
    g = gate()
    for i in range(50_000):
        with pytest.raises(BadSnapshot, match="unknown source"):
            g.check(snapshot(source=f"fake-{i}"), NOW)
    assert g.dropped == {"unknown_source": 50_000}
    assert g.last_seen == {}


def test_a_time_far_from_the_arrival_is_refused() -> None:
    g = gate()
    with pytest.raises(BadSnapshot, match="not within 3600s"):
        g.check(snapshot(when=NOW + 86400 * 365), NOW)
    with pytest.raises(BadSnapshot, match="not within"):
        g.check(m.MetricsSnapshot("task-3", [GOOD], float("inf"), []), NOW)
    assert g.dropped == {"bad_time": 2}


def test_too_many_series_are_refused() -> None:
    g = gate(max_series=3)
    g.check(snapshot(samples=[GOOD] * 3), NOW)
    with pytest.raises(BadSnapshot, match="4 samples, more than"):
        g.check(snapshot(samples=[GOOD] * 4), NOW)
    assert g.dropped == {"too_many_series": 1}


@pytest.mark.parametrize(
    "entries",
    [
        "boom",
        [{"type": "ValueError"}] * 51,
        [["not", "a", "map"]],
        [{"traceback": "x" * 10_000}],
        [{"count": [1]}],
        [{5: "x"}],
    ],
)
def test_bad_exception_entries_are_refused(entries: Any) -> None:
    g = gate()
    with pytest.raises(BadSnapshot):
        g.check(m.MetricsSnapshot("task-3", [GOOD], NOW, entries), NOW)
    assert g.dropped == {"bad_exceptions": 1}


def test_sources_that_stop_reporting_expire() -> None:
    g = gate(expiry_secs=60.0)
    g.check(snapshot("task-3"), NOW)
    g.check(snapshot("stmgr", samples=[]), NOW + 30)
    assert g.expired(NOW + 59) == []
    assert g.expired(NOW + 61) == ["task-3"]
    assert g.expired(NOW + 62) == []  # forgotten once
    g.check(snapshot("task-3", when=NOW + 70), NOW + 70)  # it comes back
    assert g.expired(NOW + 95) == ["stmgr"]
    assert sorted(g.last_seen) == ["task-3"]


def test_the_scrape_serves_good_series_and_the_drop_counts() -> None:
    g = gate()
    store = SnapshotStore("T", 1, g.dropped)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(store)
    store.update("task-3", g.check(snapshot(), NOW).samples)
    with pytest.raises(BadSnapshot):
        g.check(snapshot("stmgr", samples=[[5, "counter", {}, 1]]), NOW)
    text = generate_latest(registry).decode()
    assert (
        'heron_emitted_total{component="bolt",container="1",instance_id="3",'
        'stream="default",topology="T"} 5.0'
    ) in text
    assert (
        'heron_metricsmgr_dropped_snapshots_total{container="1",reason="bad_sample",'
        'topology="T"} 1.0'
    ) in text
    store.remove("task-3")
    assert "heron_emitted_total{" not in generate_latest(registry).decode()
