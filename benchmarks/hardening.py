"""Figures of issue 19's hardening, from real processes (nothing here is asserted).

    python benchmarks/hardening.py              # both figures, about a minute
    python benchmarks/hardening.py --json

1. Time to notice a hung task: a spout blocks in ``next_tuple`` for good; the
   figure is the time from the call's start (the spout writes it down) to the
   watchdog's log line, and to ``heron_instance_hung_seconds`` > 0 in the
   container's ``/metrics``, with ``heron.instance.hang.timeout.secs`` 2 (and
   the watchdog's period, an eighth of it). Several runs.
2. A metrics manager under 50,000 fake sources: one snapshot each, sent on one
   connection to the snapshot port of a running container; its RSS before and
   after, and the size and time of one ``/metrics`` scrape afterwards.

Run it from any directory; it submits through ``python -m heronpy_lite``
with its own temporary ``HERONPY_LITE_HOME`` and kills what it started. To
measure another checkout of the engine (say, main before the change), put it
first on ``PYTHONPATH`` and run this file from outside this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
TOPOLOGIES = HERE / "topologies" / "hardening.py"


class Cli:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "HERONPY_LITE_HOME": str(home)}

    def run(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "heronpy_lite", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            cwd=self.home,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"heronpy-lite {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def status(self, name: str) -> dict[str, Any]:
        return dict(json.loads(self.run("status", "local", name, "--format", "json")))


def wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def scrape(url: str) -> tuple[str, float]:
    began = time.monotonic()
    with urllib.request.urlopen(url, timeout=120) as response:
        text = response.read().decode()
    return text, time.monotonic() - began


_HUNG = re.compile(r'heron_instance_hung_seconds\{call="next_tuple\(\)"[^}]*\} ')


def _one_hang(run: int) -> tuple[float, float]:
    """(seconds to the watchdog's log line, seconds to the hang in /metrics)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        cli = Cli(home)
        name = f"Hang{run}"
        cli.run(
            "submit", "local", str(TOPOLOGIES), "Hang", "--name", name,
            "--config-property", f"bench.output.dir={home}",
            "--config-property", "heron.instance.hang.timeout.secs=2",
        )  # fmt: skip
        try:
            url = next(c["metrics_url"] for c in cli.status(name)["containers"][1:])
            marker = home / "hung"
            began = float(wait(lambda: marker.exists() and marker.read_text(), 30, "hang"))
            visible = wait(lambda: _HUNG.search(scrape(url)[0]) and time.time(), 30, "metrics")
            log = home / "topologies" / name / "log" / "instance-spout-1.log"

            def logged() -> str | None:
                lines = log.read_text().splitlines()
                return next((x for x in lines if "has not returned" in x), None)

            line = wait(logged, 30, "log line")
            stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
            return stamp + int(line[20:23]) / 1000 - began, visible - began
        finally:
            cli.run("kill", "local", name, check=False)


def hang_notice(runs: int) -> dict[str, Any]:
    results = [_one_hang(run) for run in range(runs)]
    logged = [r[0] for r in results]
    visible = [r[1] for r in results]
    return {
        "hang_timeout_secs": 2,
        "runs": runs,
        "noticed_in_log_secs": [round(x, 3) for x in logged],
        "in_metrics_secs": [round(x, 3) for x in visible],
        "median_log_secs": round(statistics.median(logged), 3),
        "median_metrics_secs": round(statistics.median(visible), 3),
    }


def fake_sources(count: int) -> dict[str, Any]:
    from heronpy_lite.wire import messages as m  # the snapshot's wire encoding

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        cli = Cli(home)
        cli.run("submit", "local", str(TOPOLOGIES), "Quiet", "--name", "Quiet")
        try:
            c1 = next(c for c in cli.status("Quiet")["containers"] if c["container"] == 1)
            url, manager = c1["metrics_url"], psutil.Process(c1["metrics_pid"])
            port = int((home / "topologies" / "Quiet" / "metricsmgr-1.port").read_text())
            time.sleep(3)  # a few snapshots of its own first
            before_text, before_secs = scrape(url)
            rss_before = manager.memory_info().rss
            sample = ["heron_emitted_total", "counter", {"component": "x", "instance_id": "9"}, 1]
            attack = b"".join(
                m.encode(m.MetricsSnapshot(f"fake-{i}", [sample], time.time()))
                for i in range(count)
            )
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(attack)
                time.sleep(5)  # it reads and handles them meanwhile
            rss_after = manager.memory_info().rss
            text, secs = scrape(url)
        finally:
            cli.run("kill", "local", "Quiet", check=False)
    mib = 1024 * 1024
    return {
        "fake_sources": count,
        "rss_before_mib": round(rss_before / mib, 1),
        "rss_after_mib": round(rss_after / mib, 1),
        "scrape_before_bytes": len(before_text),
        "scrape_before_secs": round(before_secs, 3),
        "scrape_after_bytes": len(text),
        "scrape_after_secs": round(secs, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-hang", action="store_true", help="only the metrics figure")
    args = parser.parse_args()
    figures: dict[str, Any] = {"metrics_manager": fake_sources(50_000)}
    if not args.skip_hang:
        figures["hang"] = hang_notice(args.runs)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for section, values in figures.items():
            print(section)
            for key, v in values.items():
                print(f"  {key:<24} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
