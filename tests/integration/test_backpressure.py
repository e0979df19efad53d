"""Backpressure through the CLI, one 20 s run per strategy.

A spout that emits as fast as it is asked feeds a bolt that sleeps 2 ms per
tuple (50-100x slower). Buffers are configured small so that queues drain
in seconds. For each strategy: the spout's rate settles within 2x of the
bolt's, every stmgr and instance stays under a fixed RSS bound without
growing, the spout speeds up again when the bolt does, and every tuple
emitted reaches the bolt exactly once. The independent paced path keeps its
rate under ``stage`` and is throttled under ``spout`` (the documented
difference).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from cli_harness import TOPOLOGIES, Cli
from support import wait_for

RUN_SECS = 20
PACED_RATE = 500
#: RSS bounds, in MiB, that the README states
STMGR_RSS_MIB = 150
INSTANCE_RSS_MIB = 150

SMALL_BUFFERS = {
    "heron.instance.out.buffer.high.bytes": 65536,
    "heron.stmgr.connection.buffer.high.bytes": 262144,
    "heron.stmgr.connection.buffer.low.bytes": 131072,
    "heron.stmgr.connection.buffer.hard.bytes": 1048576,
    "heron.network.socket.buffer.bytes": 65536,
    "test.paced.rate": PACED_RATE,
}


def props(values: dict[str, Any]) -> list[str]:
    return [arg for k, v in values.items() for arg in ("--config-property", f"{k}={v}")]


def progress(out: Path, component: str) -> list[list[float]]:
    path = next(out.glob(f"{component}-*.progress"), None)
    if path is None:
        return []
    with open(path) as f:
        return [
            p for p in (json.loads(line) for line in f if line.endswith("\n")) if p[0] != "final"
        ]


def final(out: Path) -> list[int] | None:
    path = next(out.glob("flood-*.progress"), None)
    if path is None:
        return None
    with open(path) as f:
        finals = [
            p for p in (json.loads(line) for line in f if line.endswith("\n")) if p[0] == "final"
        ]
    return finals[0][1:] if finals else None


def count_at(points: list[list[float]], t: float) -> float:
    """Count at wall time ``t``, interpolated between progress points (a component
    only writes progress when it is called: none after ``t`` means none since)."""
    before = [p for p in points if p[0] <= t]
    after = [p for p in points if p[0] >= t]
    if not before:
        raise AssertionError(f"no progress before {t}")
    if not after:
        return before[-1][1]
    a, b = before[-1], after[0]
    if b[0] == a[0]:
        return a[1]
    return a[1] + (b[1] - a[1]) * (t - a[0]) / (b[0] - a[0])


def rate(points: list[list[float]], t0: float, t1: float) -> float:
    return (count_at(points, t1) - count_at(points, t0)) / (t1 - t0)


def rss_mib(pids: dict[str, int]) -> dict[str, float]:
    return {role: psutil.Process(pid).memory_info().rss / 2**20 for role, pid in pids.items()}


@pytest.mark.parametrize("strategy", ["tcp", "spout", "stage"])
def test_backpressure_strategy(cli: Cli, tmp_path: Path, strategy: str) -> None:
    config = {**SMALL_BUFFERS, "topology.backpressure.strategy": strategy}
    with cli.submitted(
        TOPOLOGIES / "pressure.py",
        "Pressure",
        *props(config),
        name=f"Pressure-{strategy}",
        output=tmp_path,
    ) as name:
        info = cli.status(name)
        pids = {f"stmgr-{c['container']}": c["stmgr"]["pid"] for c in info["containers"][1:]}
        pids.update(
            {f"{i['component']}": i["pid"] for c in info["containers"][1:] for i in c["instances"]}
        )
        wait_for(lambda: len(progress(tmp_path, "slow")) > 1, 30, "the slow bolt working")
        start = time.time()
        samples = []
        while time.time() - start < RUN_SECS:  # measurement at 1 Hz, not synchronisation
            samples.append((time.time() - start, rss_mib(pids)))
            time.sleep(1.0)
        window = (start + RUN_SECS - 10, start + RUN_SECS - 0.5)
        flood, slow = progress(tmp_path, "flood"), progress(tmp_path, "slow")
        spout_rate, bolt_rate = rate(flood, *window), rate(slow, *window)
        fast_rate = rate(progress(tmp_path, "fast"), *window)

        # the spout settles at the bolt's pace
        assert bolt_rate > 100, bolt_rate
        assert spout_rate <= 2 * bolt_rate, (spout_rate, bolt_rate)

        # memory bounded, and not growing with the run
        for role in pids:
            peak = max(s[role] for _, s in samples)
            bound = STMGR_RSS_MIB if role.startswith("stmgr") else INSTANCE_RSS_MIB
            assert peak < bound, (role, peak)
            settled = [s[role] for t, s in samples if t >= 5]
            assert settled[-1] - settled[0] < 20, (role, settled)

        if strategy == "stage":  # the unrelated path keeps its rate
            assert fast_rate > 0.7 * PACED_RATE, fast_rate
        if strategy == "spout":  # every spout is throttled for one slow path
            assert fast_rate < 0.5 * PACED_RATE, fast_rate

        # status names the culprit and how long each component was paused
        bp = wait_for(
            lambda: (
                (b := cli.status(name)["backpressure"])["culprit_seconds"].get("slow", 0) > 10 and b
            ),
            10,
            "the culprit's time in status",
        )
        assert set(bp["culprit_seconds"]) == {"slow"}, bp
        if strategy == "tcp":
            assert bp["paused_seconds"] == {}
        else:
            assert bp["paused_seconds"]["flood"] > 10, bp
        if strategy == "stage":
            assert bp["paused_seconds"].get("paced", 0) < 1, bp
        if strategy == "spout":
            assert bp["paused_seconds"]["paced"] > 10, bp
        text = cli.run("status", "local", name).stdout
        assert f"Backpressure ({strategy})" in text and "caused by: slow" in text, text

        # when the bolt speeds up, the spout climbs back
        (tmp_path / "speedup").touch()

        def climbed() -> bool:
            points = progress(tmp_path, "flood")
            recent = [p for p in points if p[0] >= points[-1][0] - 1.0]
            if len(recent) < 3 or recent[-1][0] == recent[0][0]:
                return False
            return (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0]) > 5 * bolt_rate

        wait_for(climbed, 30, "the spout rate climbing after the speed-up")

        # nothing dropped, nothing duplicated
        (tmp_path / "stop").touch()
        count, total = wait_for(lambda: final(tmp_path), 20, "the spout stopped")
        wait_for(
            lambda: progress(tmp_path, "slow")[-1][1:] == [count, total],
            30,
            f"all {count} tuples at the bolt",
        )
