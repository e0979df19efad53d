"""Every grouping, checked exactly, on one shared topology over 2 containers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from cli_harness import TOPOLOGIES, Cli, count_lines, read_sinks
from support import wait_for

N = 600
PAR = 3


@pytest.fixture(scope="module")
def received(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("groupings")
    with cli.submitted(
        TOPOLOGIES / "groupings.py",
        "Groupings",
        "--config-property",
        f"test.tuples={N}",
        output=out,
    ) as name:
        info = cli.status(name)
        # shuffle, fields, none, direct, custom: N each; all: N * PAR; global: N
        expected = 5 * N + N * PAR + N
        wait_for(lambda: count_lines(out) >= expected, 60, f"{expected} sink records")
    sinks = read_sinks(out)
    tasks = {
        c: sorted(ts) for c, ts in ((comp["name"], comp["tasks"]) for comp in _components(info))
    }
    return {"sinks": sinks, "tasks": tasks}


def _components(info: dict[str, Any]) -> list[dict[str, Any]]:
    by: dict[str, list[int]] = {}
    for c in info["containers"]:
        for i in c.get("instances", []):
            by.setdefault(i["component"], []).append(i["task_id"])
    return [{"name": k, "tasks": v} for k, v in by.items()]


def seqs(records: list[Any]) -> list[int]:
    return [values[1] for _, _, _, values in records]


def all_seqs(sink: dict[int, list[Any]]) -> list[int]:
    return sorted(s for records in sink.values() for s in seqs(records))


def test_shuffle_delivers_each_tuple_once_spread_over_tasks(received: dict[str, Any]) -> None:
    sink = received["sinks"]["shuffle_sink"]
    assert all_seqs(sink) == list(range(N))
    assert sorted(sink) == received["tasks"]["shuffle_sink"]
    assert all(len(records) == N // PAR for records in sink.values())  # round robin


def test_fields_sends_each_key_to_exactly_one_task(received: dict[str, Any]) -> None:
    sink = received["sinks"]["fields_sink"]
    assert all_seqs(sink) == list(range(N))
    owners: dict[str, set[int]] = {}
    for task, records in sink.items():
        for _, _, _, values in records:
            owners.setdefault(values[2], set()).add(task)
    assert sorted(owners) == [str(k) for k in range(10)]
    assert all(len(t) == 1 for t in owners.values()), owners


def test_all_sends_every_tuple_to_every_task(received: dict[str, Any]) -> None:
    sink = received["sinks"]["all_sink"]
    assert sorted(sink) == received["tasks"]["all_sink"]
    for records in sink.values():
        assert sorted(seqs(records)) == list(range(N))


def test_global_sends_everything_to_the_lowest_task(received: dict[str, Any]) -> None:
    sink = received["sinks"]["global_sink"]
    lowest = min(received["tasks"]["global_sink"])
    assert {t for t, r in sink.items() if r} == {lowest}
    assert sorted(seqs(sink[lowest])) == list(range(N))


def test_none_delivers_each_tuple_once(received: dict[str, Any]) -> None:
    assert all_seqs(received["sinks"]["none_sink"]) == list(range(N))


def test_direct_delivers_to_the_chosen_task(received: dict[str, Any]) -> None:
    sink = received["sinks"]["direct_sink"]
    tasks = received["tasks"]["direct_sink"]
    assert all_seqs(sink) == list(range(N))
    for task, records in sink.items():
        for _, _, stream, values in records:
            assert stream == "direct"
            assert tasks[values[1] % len(tasks)] == task


def test_custom_grouping_choice_is_honoured(received: dict[str, Any]) -> None:
    sink = received["sinks"]["custom_sink"]
    tasks = received["tasks"]["custom_sink"]
    assert all_seqs(sink) == list(range(N))
    assert Counter(s % 2 for s in seqs(sink.get(min(tasks), []))) == {0: N // 2}
    assert Counter(s % 2 for s in seqs(sink.get(max(tasks), []))) == {1: N // 2}


def test_tuples_carry_source_component_task_and_stream(received: dict[str, Any]) -> None:
    spout_task = received["tasks"]["spout"][0]
    for component, sink in received["sinks"].items():
        for records in sink.values():
            for source, task, stream, values in records:
                assert (source, task) == ("spout", spout_task)
                assert stream == ("direct" if component == "direct_sink" else "default")
                assert values[0] == spout_task
