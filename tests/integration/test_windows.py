"""Window bolts with real processes: heronpy's processing-time sliding and
tumbling bolts (window bounds and contents), heronpy_lite's event-time
windows and sessions fed out-of-order tuples (which windows fire, with what,
what goes to the late stream), and a WindowedBolt in ATLEAST_ONCE under
kill -9 (nothing lost)."""

from __future__ import annotations

import itertools
import json
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from cli_harness import TOPOLOGIES, Cli, read_sinks
from support import wait_for

WINDOWS = TOPOLOGIES / "windows.py"


def windows_of(folder: Path, component: str) -> list[Any]:
    records: list[Any] = []
    for path in sorted(folder.glob(f"{component}-*.jsonl")):
        with open(path) as f:
            records.extend(json.loads(line) for line in f if line.endswith("\n"))
    return records


def test_heronpy_sliding_and_tumbling_window_bolts(cli: Cli, tmp_path: Path) -> None:
    n = 100  # 2 s of tuples at 50/s
    props = ["--config-property", f"test.tuples={n}", "--config-property", "test.rate=50"]
    with cli.submitted(WINDOWS, "HeronpyWindows", *props, output=tmp_path):

        def drained() -> bool:
            # every tuple has been handed over by the tumbling bolt, and the sliding
            # bolt has moved past the last arrival (so every window holding it fired)
            tumbled = {s for *_, seqs in windows_of(tmp_path, "tumbling") for s, _ in seqs}
            sliding = windows_of(tmp_path, "sliding")
            arrivals = [t for *_, seqs in sliding for _, t in seqs]
            return (
                len(tumbled) == n
                and bool(arrivals)
                and any(start > int(max(arrivals)) for start, *_ in sliding)
            )

        wait_for(drained, 60, "both bolts past the last tuple")

    # Each record: [start, end, handed over at, [[seq, arrival], ...]]. heronpy's
    # windows are whole seconds: a tuple arriving at second s (int(time)) is in a
    # sliding window when start <= s <= end and it arrived before the window was
    # handed over. Arrival is stamped by the engine just before process(): within
    # a few ms of the bolt's own clock, so tuples that close to an edge are excused.
    def expected(records: list[Any], arrival: dict[int, float], edge: float = 0.05) -> None:
        for start, end, handed, seqs in records:
            got = {s for s, _ in seqs}
            sure = {s for s, t in arrival.items() if start + edge < t < min(end + 1, handed) - edge}
            maybe = {s for s, t in arrival.items() if start - edge <= t <= handed + edge}
            assert sure <= got <= maybe, (start, end, sorted(sure - got), sorted(got - maybe))
            assert [s for s, _ in seqs] == sorted(got)  # in arrival order

    tumbling = windows_of(tmp_path, "tumbling")
    seen = [s for *_, seqs in tumbling for s, _ in seqs]
    assert sorted(seen) == list(range(n))  # each tuple in exactly one tumbling window
    assert all(end - start == 1 for start, end, *_ in tumbling)
    ends = [end for _, end, *_ in tumbling]
    assert ends == sorted(ends) and all(1 <= b - a <= 2 for a, b in itertools.pairwise(ends))
    # a tumbling window holds what arrived since the previous one was handed over
    previous = float("-inf")
    arrival = {s: t for *_, seqs in tumbling for s, t in seqs}
    for *_, handed, seqs in tumbling:
        inside = {s for s, t in arrival.items() if previous + 0.05 < t < handed - 0.05}
        assert (
            inside
            <= {s for s, _ in seqs}
            <= {s for s, t in arrival.items() if previous - 0.05 <= t <= handed + 0.05}
        )
        previous = handed

    sliding = windows_of(tmp_path, "sliding")
    assert all(end - start == 2 for start, end, *_ in sliding)
    arrival = {s: t for *_, seqs in sliding for s, t in seqs}
    assert sorted(arrival) == list(range(n))  # nothing lost
    expected(sliding, arrival)


def test_event_time_windows_watermark_lateness_late_stream_and_sessions(
    cli: Cli, tmp_path: Path
) -> None:
    with cli.submitted(WINDOWS, "EventTime", output=tmp_path):
        wait_for(
            lambda: (
                len(windows_of(tmp_path, "windows_out")) == 5
                and len(windows_of(tmp_path, "sessions_out")) == 8
            ),
            60,
            "every window and session fired",
        )
    sinks = read_sinks(tmp_path)

    def values(component: str) -> list[Any]:
        return [v for rs in sinks.get(component, {}).values() for _, _, _, v in rs]

    # watermark = newest timestamp - 3; [0, 10) fires when 14 arrives (watermark 11),
    # then 9 arrives within the allowed lateness (5 s) and fires it again; 22
    # (watermark 19) ends its lateness, so 3 is late; [10, 20) fires when 40 arrives
    # with 12, 14 and the out-of-order 18; 100 fires [40, 50); "end" stays held.
    assert values("windows_out") == [
        [0, 10, False, ["a", "b", "d"]],
        [0, 10, True, ["a", "b", "d", "f"]],
        [10, 20, False, ["c", "e", "i"]],
        [20, 30, False, ["g"]],
        [40, 50, False, ["j"]],
    ]
    assert values("windows_late") == [["script", "default", [3, "h", "u1"], 3]]
    # sessions per user, gap 4: f (9) joins c's session [12, 16); d's [7, 11) had
    # closed at watermark 11; h (3) comes after its session could exist
    assert values("sessions_out") == [
        ["u1", 1.0, 5.0, ["a"]],
        ["u2", 4.0, 8.0, ["b"]],
        ["u1", 7.0, 11.0, ["d"]],
        ["u1", 9.0, 16.0, ["f", "c"]],
        ["u2", 14.0, 18.0, ["e"]],
        ["u1", 18.0, 22.0, ["i"]],
        ["u2", 22.0, 26.0, ["g"]],
        ["u2", 40.0, 44.0, ["j"]],
    ]
    assert values("sessions_late") == [["script", "default", [3, "h", "u1"], 3]]


def test_window_bolt_at_least_once_loses_nothing_across_kill_9(cli: Cli, tmp_path: Path) -> None:
    n = 3000
    props: list[str] = []
    for key, value in {
        "topology.reliability.mode": "ATLEAST_ONCE",
        "test.tuples": n,
        "test.rate": 600,
        "topology.message.timeout.secs": 4,
        "topology.max.spout.pending": 2000,
    }.items():
        props += ["--config-property", f"{key}={value}"]

    def acked() -> Counter[int]:
        events = []
        for path in tmp_path.glob("spout-*.events"):
            with open(path) as f:
                events.extend(json.loads(line) for line in f if line.endswith("\n"))
        return Counter(e[1] for e in events if e[0] == "ack")

    def sunk() -> set[int]:
        return {s for window in windows_of(tmp_path, "sink") for s in window}

    with cli.submitted(WINDOWS, "ReliableWindows", *props, output=tmp_path) as name:
        wait_for(lambda: len(acked()) >= 600, 30, "windows acked mid-stream")
        victim = next(
            i
            for c in cli.status(name)["containers"]
            for i in c.get("instances", [])
            if i["component"] == "windows"
        )
        os.kill(victim["pid"], signal.SIGKILL)
        wait_for(lambda: len(acked()) == n, 120, f"all {n} trees acked")
        held = wait_for(lambda: _restarted(cli, name), 30, "the window bolt restarted")
        assert held
    assert sunk() == set(range(n))  # nothing lost
    assert acked() == Counter(range(n))  # one ack per tuple in the end
    failed = []
    for path in tmp_path.glob("spout-*.events"):
        with open(path) as f:
            failed += [
                json.loads(line)[1]
                for line in f
                if line.startswith('["fail"') and line.endswith("\n")
            ]
    assert failed, "the tuples held by the killed bolt's windows should have been replayed"


def _restarted(cli: Cli, name: str) -> bool:
    return any(
        i["component"] == "windows" and i["restarts"] >= 1 and i["state"] == "running"
        for c in cli.status(name)["containers"]
        for i in c.get("instances", [])
    )
