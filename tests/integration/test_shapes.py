"""Topology shapes, checked exactly, on one shared topology over 3 containers."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
from cli_harness import TOPOLOGIES, Cli, count_lines, read_sinks
from support import wait_for

N = 500


@pytest.fixture(scope="module")
def run(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("shapes")
    with cli.submitted(
        TOPOLOGIES / "shapes.py",
        "builder",
        "--config-property",
        f"test.tuples={N}",
        name="Shapes",
        output=out,
    ) as name:
        info = cli.status(name)
        expected = {
            "merge": 4 * N,  # numbers (3 tasks x N) + letters (N)
            "double_sink": 2 * 3 * N,
            "chain_sink": 3 * N,
            "evens_sink": N // 2,
            "odds_sink": N // 2,
        }
        for prefix, count in expected.items():
            wait_for(
                lambda p=prefix, c=count: count_lines(out, p + "-") >= c,
                60,
                f"{count} records at {prefix}",
            )
        wait_for(lambda: count_lines(out, "ticker-") >= 3, 30, "3 tick tuples")
    tasks: dict[str, list[int]] = {}
    containers: dict[int, int] = {}
    for c in info["containers"]:
        for i in c.get("instances", []):
            tasks.setdefault(i["component"], []).append(i["task_id"])
            containers[i["task_id"]] = c["container"]
    return {"sinks": read_sinks(out), "tasks": tasks, "containers": containers}


def records(run: dict[str, Any], component: str) -> list[Any]:
    return [r for rs in run["sinks"][component].values() for r in rs]


def test_par_3_spout_and_a_second_spout_into_one_bolt(run: dict[str, Any]) -> None:
    got = Counter((src, task, values[1]) for src, task, _, values in records(run, "merge"))
    expected = Counter(("numbers", t, s) for t in run["tasks"]["numbers"] for s in range(N))
    expected.update(("letters", t, s) for t in run["tasks"]["letters"] for s in range(N))
    assert got == expected


def test_one_spout_into_two_bolts_and_a_bolt_emitting_twice(run: dict[str, Any]) -> None:
    got = Counter(
        (values[0], values[1], values[2]) for _, _, _, values in records(run, "double_sink")
    )
    expected = Counter(
        (t, s, copy) for t in run["tasks"]["numbers"] for s in range(N) for copy in (0, 1)
    )
    assert got == expected
    assert {src for src, *_ in records(run, "double_sink")} == {"doubler"}


def test_three_stage_chain_across_three_containers(run: dict[str, Any]) -> None:
    got = Counter((values[0], values[1]) for _, _, _, values in records(run, "chain_sink"))
    assert got == Counter((t, s) for t in run["tasks"]["numbers"] for s in range(N))
    assert {src for src, *_ in records(run, "chain_sink")} == {"stage2"}
    used = {
        run["containers"][t] for c in ("stage1", "stage2", "chain_sink") for t in run["tasks"][c]
    }
    assert used == {1, 2, 3}


def test_named_streams_reach_only_their_subscribers(run: dict[str, Any]) -> None:
    evens = records(run, "evens_sink")
    odds = records(run, "odds_sink")
    assert len(evens) == N // 2 and len(odds) == N // 2
    assert {stream for _, _, stream, _ in evens} == {"evens"}
    assert {stream for _, _, stream, _ in odds} == {"odds"}
    assert sorted(v[0] for *_, v in evens) == list(range(0, N, 2))
    assert sorted(v[0] for *_, v in odds) == list(range(1, N, 2))
    assert all(v[1] == "odd" for *_, v in odds)


def test_tick_tuples_arrive_at_the_frequency_set_in_initialize(run: dict[str, Any]) -> None:
    ticks = records(run, "ticker")
    assert all(r[:2] == ["__system", "__tick"] for r in ticks)
    times = [r[2] for r in ticks]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps and all(0.1 < g < 1.0 for g in gaps), gaps  # configured 0.2 s
