"""Automatic scaling with real processes (topology.autoscale.*): a bolt made
slower mid-run is scaled up until it keeps up, then down again once it is
fast; each decision is in ``status`` with the metrics that led to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cli_harness import Cli
from rescale_harness import RESCALE, tasks_of
from support import wait_for


def decisions(cli: Cli, name: str) -> list[dict[str, Any]]:
    return list(cli.status(name).get("autoscale", []))


def test_a_slow_bolt_is_scaled_up_until_it_keeps_up_and_down_when_it_is_fast(
    cli: Cli, tmp_path: Path
) -> None:
    name = "Autoscaled"
    tmp_path.mkdir(exist_ok=True)
    slow = tmp_path / "slow"
    slow.touch()  # 120 numbers/s at 8 ms each: one task is busy 960 ms/s
    extra = ["--config-property", "test.count=1000000", "--config-property", "test.rate=120"]
    with cli.submitted(RESCALE, "AutoscaledNumbers", *extra, name=name, output=tmp_path):
        up = wait_for(lambda: decisions(cli, name) or None, 90, "a scale-up decision")
        assert [(d["component"], d["old"], d["new"]) for d in up] == [("work", 1, 2)]
        assert "busy" in up[0]["reason"] or "culprit" in up[0]["reason"]
        assert up[0]["metrics"]["samples"] >= 2
        wait_for(lambda: len(tasks_of(cli, name, "work")) == 2, 90, "work on 2 tasks")

        def busy() -> float | None:
            figures = cli.status(name).get("metrics", {}).get("components", {}).get("work", {})
            value = figures.get("busy_ms_per_sec")
            return value if value is not None and value < 700 else None

        wait_for(busy, 60, "work keeping up on 2 tasks (busy < 700 ms/s)")
        slow.unlink()  # fast now: a few ms per second
        wait_for(lambda: len(decisions(cli, name)) >= 2, 90, "a scale-down decision")
        made = [(d["component"], d["old"], d["new"]) for d in decisions(cli, name)]
        assert made == [("work", 1, 2), ("work", 2, 1)]
        assert "<= 150" in decisions(cli, name)[1]["reason"]
        wait_for(lambda: len(tasks_of(cli, name, "work")) == 1, 90, "work back on 1 task")
        text = cli.verb("status", name).stdout
        assert "Autoscale" in text and "work 2 -> 1" in text
