"""The Streamlet API with real processes (topologies/streamlets.py, each
Builder submitted as ATTR): word count checked exactly against the sources'
emitted counts; every operation, with exact outputs; the four joins and a
self-join over event-time windows; ATLEAST_ONCE across kill -9."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections import Counter
from collections.abc import Iterator
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import pytest
from cli_harness import TOPOLOGIES, Cli
from prometheus_client.parser import text_string_to_metric_families
from support import wait_for

STREAMLETS = TOPOLOGIES / "streamlets.py"
LINES_A = ["the quick brown fox", "jumps over the lazy dog", "the end"]
LINES_B = ["a quick brown dog", "barks at the fox"]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("streamlet-out")


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, out: Path) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("home"))
    cli.env["STREAMLET_TEST_OUT"] = str(out)
    return cli


def records(out: Path, tag: str) -> list[Any]:
    """[kinds, element] of every element a ``record(tag)`` sink consumed."""
    result: list[Any] = []
    for path in sorted(out.glob(f"{tag}-*.jsonl")):
        with open(path) as f:
            result.extend(json.loads(line) for line in f if line.endswith("\n"))
    return result


def elements(out: Path, tag: str) -> list[Any]:
    return [element for _, element in records(out, tag)]


def metric(cli: Cli, name: str, metric_name: str, **labels: str) -> dict[str, float]:
    """instance_id -> value of one metric over every container of a topology."""
    values: dict[str, float] = {}
    for container in cli.status(name)["containers"]:
        url = container.get("metrics_url")
        if not url:
            continue
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == metric_name and all(s.labels.get(k) == v for k, v in labels.items()):
                    key = s.labels.get("instance_id", "")
                    values[key] = values.get(key, 0) + s.value
    return values


def tasks_of(cli: Cli, name: str, component: str) -> list[str]:
    return sorted(
        (
            str(i["task_id"])
            for c in cli.status(name)["containers"]
            for i in c.get("instances", [])
            if i["component"] == component
        ),
        key=int,
    )


@pytest.fixture
def submitted(cli: Cli, out: Path) -> Iterator[Any]:
    names: list[str] = []

    def submit(attr: str, *extra: str) -> str:
        for path in out.glob("*.jsonl"):
            path.unlink()
        cli.verb("submit", str(STREAMLETS), attr, "--name", attr.capitalize(), *extra)
        names.append(attr.capitalize())
        return attr.capitalize()

    yield submit
    for name in names:
        proc = cli.verb("kill", name, check=False)
        assert proc.returncode == 0, proc.stderr


def expected_counts(lines: list[str], n: int) -> Counter[str]:
    return Counter(w for line in islice(cycle(lines), n) for w in line.split())


def test_word_count_of_two_sources_is_exact_and_each_key_is_counted_once_per_window(
    cli: Cli, out: Path, submitted: Any
) -> None:
    name = submitted("wordcount")
    info = cli.status(name)
    components = {i["component"] for c in info["containers"] for i in c.get("instances", [])}
    assert components == {
        "lines-a",
        "lines-b",
        "flatmap-1",
        "flatmap-2",
        "map-1",
        "map-2",
        "union-1",
        "reducebykeyandwindow-1",
        "consume-1",
    }
    wait_for(lambda: len(records(out, "counts")) > 20, 60, "windows counted")
    cli.verb("deactivate", name)

    def settled() -> bool:
        # the sources stopped; every window holding their words has fired once the
        # counts add up to what the sources emitted (metrics are 1 s behind: the
        # counts only match when both are final)
        emitted = [
            sum(metric(cli, name, "heron_emitted_total", component=c, stream="output").values())
            for c in ("lines-a", "lines-b")
        ]
        want = expected_counts(LINES_A, int(emitted[0])) + expected_counts(LINES_B, int(emitted[1]))
        got: Counter[str] = Counter()
        for (word, _), count in elements(out, "counts"):
            got[word] += count
        return got == want and sum(want.values()) > 0

    wait_for(settled, 60, "counts equal to the words the sources emitted")
    assert settled()  # still equal a moment later: nothing more arrived
    counted = records(out, "counts")
    assert {tuple(kinds) for kinds, _ in counted} == {("KeyedWindow", "int")}
    windows = Counter((word, start, end) for (word, (start, end)), _ in elements(out, "counts"))
    # keys reach their reducer from both union tasks by the engine's stable fields
    # grouping: one result per key and window (Python's salted hash() would split them)
    assert max(windows.values()) == 1
    assert all(end - start == 1 and isinstance(start, int) for _, start, end in windows)
    executed = metric(cli, name, "heron_executed_total", component="reducebykeyandwindow-1")
    assert len(executed) == 2  # both reducers got words


def sliding_windows_problems(
    counted: list[Any], lines: list[str], n_lines: int, length: int
) -> list[str]:
    """What is wrong with sliding windows of ``length`` seconds every second over
    the words of the first ``n_lines`` of ``lines`` (cycled), which reached their
    single reducer in order; [] when every window is exact.

    Each window [e - length, e) is the words that arrived in the seconds e -
    length .. e - 1. How many words arrived in each second follows from the
    windows' totals (a window's total less the seconds it shares with the one
    before); then every window's counts must be exactly the Counter of its
    stretch of the word sequence, the seconds must cover the sequence from its
    first word to its last, and the last second's last window must have fired."""
    windows: dict[int, Counter[str]] = {}
    for (word, (start, end)), count in counted:
        if end - start != length or not isinstance(end, int):
            return [f"window [{start}, {end}) is not {length} whole seconds"]
        windows.setdefault(end, Counter())[word] += count
    if not windows:
        return ["no window"]
    words = [w for line in islice(cycle(lines), n_lines) for w in line.split()]
    first, last = min(windows), max(windows)
    # words that arrived in second q (panes before the first window's last are empty)
    arrived: dict[int, int] = {}
    for end in range(first, last + 1):
        shared = sum(arrived.get(q, 0) for q in range(end - length, end - 1))
        arrived[end - 1] = windows.get(end, Counter()).total() - shared
        if arrived[end - 1] < 0:
            return [f"window ending {end} has fewer words than the seconds it shares"]
    offset = {}
    position = 0
    for q in sorted(arrived):
        offset[q] = position
        position += arrived[q]
    problems = []
    if position != len(words):
        problems.append(f"the windows hold {position} words, the source emitted {len(words)}")
    for end in range(first, last + 1):
        lo = offset.get(end - length, 0)
        hi = offset[end - 1] + arrived[end - 1]
        want = Counter(words[lo:hi])
        if windows.get(end, Counter()) != want:
            problems.append(f"window ending {end}: {dict(windows.get(end, {}))} != {dict(want)}")
    if any(arrived[q] for q in range(last - length + 1, last)):
        problems.append("the last second's last window has not fired yet")
    return problems


def test_herons_sliding_word_count_is_exact_at_most_once(
    cli: Cli, out: Path, submitted: Any
) -> None:
    """Heron's word_count_streamlet.py (ArrayLooper, flat_map, map,
    reduce_by_key_and_window over a sliding window), every window exact."""
    name = submitted("sliding")
    lines = ["Mary Had a little lamb", "I Love You"]
    wait_for(lambda: len({e for (_, (_, e)), _ in elements(out, "sliding")}) >= 2, 60, "windows")
    cli.verb("deactivate", name)

    def emitted() -> int:
        values = metric(cli, name, "heron_emitted_total", component="lines", stream="output")
        return int(sum(values.values()))

    def exact() -> bool:
        n = emitted()
        return n > 0 and not sliding_windows_problems(elements(out, "sliding"), lines, n, 3)

    wait_for(exact, 60, "every sliding window exact and the last one fired")
    counted = elements(out, "sliding")
    assert sliding_windows_problems(counted, lines, emitted(), 3) == []  # nothing came since
    # a window held more words than max_tuples (1000): refolding, which keeps every
    # word of the window, would have refused some; folding per pane holds a value
    # per word and second, and nothing was refused or failed
    totals: Counter[int] = Counter()
    for (_, (_, end)), count in counted:
        totals[end] += count
    assert max(totals.values()) > 3 * 1000, totals
    for metric_name in ("heron_failed_total", "heron_user_window_refused_total"):
        values = metric(cli, name, metric_name, component="reducebykeyandwindow-1")
        assert sum(values.values()) == 0, (metric_name, values)
    assert {tuple(kinds) for kinds, _ in records(out, "sliding")} == {("KeyedWindow", "int")}


def test_every_element_wise_operation(cli: Cli, out: Path, submitted: Any) -> None:
    name = submitted("operations")
    n = 30
    chain = Counter(10 * x for x in range(n) if x % 2 == 0 for _ in range(x % 3))
    expected: dict[str, Counter[Any]] = {
        # map x*10, flat_map into x % 3 copies, filter multiples of 4 (x even)
        "chain": chain,
        # 0..4 go to two partitions, the rest to one; then the letters
        "partitions": Counter([*range(5), *range(n), "x", "y", "z"]),
        # first.union(first) gives each twice, union(second) once more
        "clones": Counter(3 * list(range(n))),
    }

    def done() -> bool:
        return all(Counter(elements(out, t)) == c for t, c in expected.items()) and (
            len(elements(out, "transform")) == 2 * n
        )

    wait_for(done, 60, "every operation's output")
    # the metrics lag the output by up to an export interval: wait for every tuple
    for component in ("by-function", "spread"):
        wait_for(
            lambda c=component: (
                sum(metric(cli, name, "heron_executed_total", component=c).values()) >= 35
            ),
            30,
            f"{component}'s executed counts",
        )
    # repartition: the function's partition, whatever task it is; an even spread
    by_function = metric(cli, name, "heron_executed_total", component="by-function")
    assert [by_function.get(t, 0) for t in tasks_of(cli, name, "by-function")] == [25, 0, 10]
    spread = metric(cli, name, "heron_executed_total", component="spread")
    assert sorted(spread.get(t, 0) for t in tasks_of(cli, name, "spread")) == [17, 18]
    # transform: each element tagged with the operator's partition, and its negation
    transformed = elements(out, "transform")
    tagged = [e for e in transformed if isinstance(e, list)]
    assert sorted(x for x, _, _ in tagged) == list(range(n))
    assert {(i, parts) for _, i, parts in tagged} == {(0, 2), (1, 2)}
    assert sorted(e for e in transformed if not isinstance(e, list)) == sorted(-x for x in range(n))
    # log: every element of the chain in the task's log
    logs = "".join(p.read_text() for p in cli.log_dir(name).glob("instance-logged-*.log"))
    logged = [line.rsplit(" ", 1)[-1] for line in logs.splitlines() if "user.logged" in line]
    assert Counter(map(int, logged)) == chain


def test_window_operations(cli: Cli, out: Path, submitted: Any) -> None:
    name = submitted("windowed")
    wait_for(
        lambda: (
            len(elements(out, "reduce_by_window")) == 3
            and len(elements(out, "count_window")) == 5
            and len(elements(out, "rekeyed")) == 3
        ),
        60,
        "every window operation's output",
    )
    # reduce_by_window over event time: (7, 4) came after [0, 10) had fired: late
    assert records(out, "reduce_by_window") == [
        [["Window", "list"], [[0, 10], [4, 3]]],
        [["Window", "list"], [[10, 20], [15, 8]]],
        [["Window", "list"], [[30, 40], [31, 6]]],
    ]

    def late() -> float:
        values = metric(cli, name, "heron_user_window_late_total", component="reducebywindow-1")
        return sum(values.values())

    wait_for(lambda: late() >= 1, 15, "the late element counted")  # sampled once a second
    assert late() == 1
    # count windows of 3 elements, in arrival order, reduced per key
    assert [(k, v) for (k, _), v in elements(out, "count_window")] == [
        ("a", 4),
        ("b", 2),
        ("a", 4),
        ("b", 5),
        ("c", 6),
    ]
    # keyed by the KeyedWindow of the first reduce (a key within a key: the inner
    # one arrives as a list, as values not rebuilt by the API do)
    rekeyed = records(out, "rekeyed")
    assert {tuple(kinds) for kinds, _ in rekeyed} == {("KeyedWindow", "int")}
    assert sorted((inner[0], v) for ((inner, _), v) in (e for _, e in rekeyed)) == [
        ("a", 15),
        ("b", 7),
        ("c", 6),
    ]


def test_joins_over_event_time_windows(out: Path, submitted: Any) -> None:
    submitted("joins")
    inner = [
        ["k1", 0, 10, "L1", "R1"],
        ["k1", 0, 10, "L3", "R1"],
        ["k3", 10, 20, "L4", "R3"],
    ]
    left_only = [["k2", 0, 10, "L2", None]]
    right_only = [["k4", 0, 10, None, "R2"], ["k5", 10, 20, None, "R4"]]
    expected = {
        "inner": inner,
        "outer_left": inner + left_only,
        "outer_right": inner + right_only,
        "outer": inner + left_only + right_only,
        "self": [
            ["k1", 0, 10, "L1", "L1"],
            ["k1", 0, 10, "L1", "L3"],
            ["k1", 0, 10, "L3", "L1"],
            ["k1", 0, 10, "L3", "L3"],
            ["k2", 0, 10, "L2", "L2"],
            ["k3", 10, 20, "L4", "L4"],
        ],
    }

    def joined(tag: str) -> list[Any]:
        rows = []
        for kinds, ((key, (start, end)), (left, right)) in records(out, tag):
            assert kinds == ["KeyedWindow", "list"]
            rows.append([key, start, end, left, right])
        return sorted(rows, key=json.dumps)

    wait_for(
        lambda: all(len(joined(t)) == len(rows) for t, rows in expected.items()),
        60,
        "every join's pairs",
    )
    for tag, rows in expected.items():
        assert joined(tag) == sorted(rows, key=json.dumps), tag


def test_at_least_once_streamlets_lose_nothing_across_kill_9(
    cli: Cli, out: Path, submitted: Any
) -> None:
    n = 3000
    name = submitted(
        "reliable",
        "--config-property",
        "topology.reliability.mode=ATLEAST_ONCE",
        "--config-property",
        "topology.message.timeout.secs=4",
    )
    want = {2 * x for x in range(n) if (2 * x) % 3 != 1}
    wait_for(lambda: len(elements(out, "reliable")) > 500, 30, "mid-stream")
    victim = next(
        i
        for c in cli.status(name)["containers"]
        for i in c.get("instances", [])
        if i["component"] == "slow-sink"
    )
    # what was queued in front of the killed sink is lost with it; the map and the
    # filter had acked their inputs, but the trees wait for the sink's ack
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(lambda: set(elements(out, "reliable")) == want, 90, "every element at the sink")
    wait_for(
        lambda: sum(metric(cli, name, "heron_acked_total", component="paced").values()) == n,
        30,
        "every source element acked",
    )
    failed = metric(cli, name, "heron_failed_total", component="paced")
    assert sum(failed.values()) > 0, "the kill should have failed (and replayed) some trees"
