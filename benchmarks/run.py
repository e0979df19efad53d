"""Throughput, latency and CPU cost of real topologies, against the user-code ceiling.

    python benchmarks/run.py            # every case, ~3.5 min on 2 cores
    python benchmarks/run.py --quick    # fewer cases, shorter windows (< 90 s)
    python benchmarks/run.py --json     # a JSON list instead of the table

Each case submits a topology from ``benchmarks/topologies/bench.py`` through
``python -m heronpy_lite submit local`` (its own temporary HERONPY_LITE_HOME,
every process separate, the stream manager in the path), then:

1. waits for the counting bolt's first report, then a warm-up;
2. measures repeated windows at full speed: tuples/s counted at the last bolt
   (from its ``[time, count]`` reports, interpolated at the window edges) and
   the CPU seconds of every process of the topology (psutil);
3. paces the spout at 10% of the median rate (a control file the spout reads)
   and collects emit->process latency samples carried in the tuples;
4. kills the topology (and SIGKILLs anything left with our HERONPY_LITE_HOME).

The baseline runs the same spout/bolt classes in this process with no engine
(`baseline.py`), measured right before each case. Everything reported is a
median of windows. Extra ``--config-property k=v`` go to every submit (for
exploratory runs; the reference table uses the engine defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import baseline
import psutil
from harness import REPO, Cli, Reports, cpu_snapshot, engine_defaults, leftovers, processes

TICK_SECS = 0.5


@dataclass(frozen=True)
class Case:
    name: str
    topology: str
    containers: int
    mode: str

    @property
    def slug(self) -> str:
        return f"{self.name}-{SHORT[self.mode]}"


AMO, ALO, EO = "ATMOST_ONCE", "ATLEAST_ONCE", "EFFECTIVELY_ONCE"
SHORT = {AMO: "amo", ALO: "alo", EO: "eo"}
CASES = [
    Case("wordcount", "WordCount", 1, AMO),
    Case("wordcount", "WordCount", 1, ALO),
    Case("wordcount-2c", "WordCount", 2, AMO),
    Case("wordcount-2c", "WordCount", 2, ALO),
    Case("chain3", "Chain", 1, AMO),
    Case("chain3", "Chain", 1, ALO),
]
QUICK_CASES = [CASES[0], CASES[1], CASES[2], CASES[4]]


@dataclass(frozen=True)
class Timing:
    warmup: float
    windows: int
    window: float
    settle: float
    latency: float
    baseline_windows: int
    baseline_window: float
    drain_timeout: float = 30


FULL = Timing(
    warmup=4, windows=5, window=3, settle=2, latency=5, baseline_windows=5, baseline_window=1
)
QUICK = Timing(
    warmup=1.5,
    windows=3,
    window=1.2,
    settle=0.8,
    latency=2,
    baseline_windows=4,
    baseline_window=0.4,
)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run_case(
    cli: Cli, case: Case, timing: Timing, max_pending: int, extra_props: list[str]
) -> dict[str, Any]:
    me = psutil.Process()
    busy0, mine0, t0 = machine_busy(), sum(me.cpu_times()[:2]), time.monotonic()
    base_rates = baseline.measure(
        case.topology, case.mode, timing.baseline_windows, timing.baseline_window
    )
    busy1, mine1, t1 = machine_busy(), sum(me.cpu_times()[:2]), time.monotonic()
    base_other = max(0.0, ((busy1 - busy0) - (mine1 - mine0)) / (t1 - t0))
    base = statistics.median(base_rates)

    out = cli.home / "out" / case.slug
    out.mkdir(parents=True)
    control = cli.home / f"{case.slug}.rate"
    control.write_text("0")
    props: dict[str, Any] = {
        "topology.reliability.mode": case.mode,
        "topology.stmgrs": case.containers,
        "bench.output.dir": out,
        "bench.control.file": control,
    }
    if case.mode == ALO:
        props["topology.max.spout.pending"] = max_pending
    extra = [x for p in extra_props for x in ("--config-property", p)]
    reports = Reports(out)
    with cli.submitted(case.topology, case.slug, props, extra) as name:
        procs = processes(cli.status(name))
        if not reports.wait(lambda r: r.last_count > 0, 30):
            raise RuntimeError(f"{name}: no tuple reached the counting bolt within 30 s")
        time.sleep(timing.warmup)

        windows = []
        for _ in range(timing.windows):
            t0, cpu0, busy0 = time.time(), cpu_snapshot(procs), machine_busy()
            time.sleep(timing.window)
            t1, cpu1, busy1 = time.time(), cpu_snapshot(procs), machine_busy()
            windows.append((t0, t1, cpu0, cpu1, busy1 - busy0))
        last = windows[-1][1]
        reports.wait(lambda r: r.last_time >= last, 3 * TICK_SECS + 2)

        rates, cpu_per_m, shares, others = [], [], [], []
        for t0, t1, cpu0, cpu1, busy in windows:
            counted = reports.count_at(t1) - reports.count_at(t0)
            rates.append(counted / (t1 - t0))
            used = {role: cpu1[role] - cpu0[role] for role in cpu0}
            total = sum(v for v in used.values() if v == v)
            cpu_per_m.append(total / counted * 1e6 if counted else float("nan"))
            shares.append({role: v / (t1 - t0) for role, v in used.items()})
            others.append(max(0.0, (busy - total) / (t1 - t0)))
        rate = statistics.median(rates)
        loaded = reports.samples_between(windows[0][0], last, TICK_SECS)

        # latency at 10% of the measured maximum: first pause the spout until
        # everything queued at full speed has reached the bolt (its count stops
        # moving), so that the latency window sees no backlog
        control.write_text("-1")
        drained = drain(reports, timeout=timing.drain_timeout)
        paced = max(rate * 0.1, 100.0)
        control.write_text(f"{paced:.1f}")
        time.sleep(timing.settle)
        l0 = time.time()
        time.sleep(timing.latency)
        l1 = time.time()
        reports.wait(lambda r: r.last_time >= l1, 3 * TICK_SECS + 2)
        samples = reports.samples_between(l0, l1, TICK_SECS)
        paced_actual = (reports.count_at(l1) - reports.count_at(l0)) / (l1 - l0)

    return {
        "name": case.name,
        "mode": case.mode,
        "containers": case.containers,
        "tuples_per_s": round(rate),
        "baseline_tuples_per_s": round(base),
        "ratio": round(rate / base, 4),
        "latency_p50_ms": round(percentile(samples, 0.5) * 1000, 3),
        "latency_p99_ms": round(percentile(samples, 0.99) * 1000, 3),
        "cpu_s_per_million": round(statistics.median(cpu_per_m), 3),
        # extras
        "windows_tuples_per_s": [round(r) for r in rates],
        "baseline_windows_tuples_per_s": [round(r) for r in base_rates],
        "latency_rate_tuples_per_s": round(paced_actual),
        "latency_target_tuples_per_s": round(paced),
        "latency_samples": len(samples),
        "full_load_latency_p50_ms": round(percentile(loaded, 0.5) * 1000, 1),
        "drain_s": round(drained, 2),
        "cpu_cores_by_process": {
            role: round(statistics.median(s[role] for s in shares), 3) for role in shares[0]
        },
        "other_load_cores": round(statistics.median(others), 2),
        "baseline_other_load_cores": round(base_other, 2),
        "max_spout_pending": max_pending if case.mode == ALO else None,
        "config_properties": extra_props,
    }


def drain(reports: Reports, timeout: float) -> float:
    """Wait until two successive reports show the same count (nothing arrived
    for a tick); return how long that took."""
    began = time.time()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = time.time()
        reports.wait(lambda r, t=t: r.last_time >= t + 2 * TICK_SECS, 3 * TICK_SECS + 2)
        recent = [c for ts, c, _ in reports.records if ts >= t]
        if len(recent) >= 2 and recent[-1] == recent[-2]:
            return time.time() - began
    return float("nan")


def table(results: list[dict[str, Any]]) -> str:
    head = (
        f"{'case':<14}{'mode':<14}{'cont':>4}{'tuples/s':>11}{'baseline/s':>12}"
        f"{'ratio':>7}{'p50 ms':>8}{'p99 ms':>8}{'cpu s/M':>9}{'other':>7}  windows"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        w = r.get("windows_tuples_per_s") or [0]
        spread = f"{min(w) / 1000:.0f}k..{max(w) / 1000:.0f}k"
        lines.append(
            f"{r['name']:<14}{r['mode']:<14}{r['containers']:>4}{r['tuples_per_s']:>11,}"
            f"{r['baseline_tuples_per_s']:>12,}{r['ratio']:>7.3f}{r['latency_p50_ms']:>8.2f}"
            f"{r['latency_p99_ms']:>8.2f}{r['cpu_s_per_million']:>9.2f}"
            f"{r['other_load_cores']:>7.2f}  {spread}"
        )
    return "\n".join(lines)


def busiest(result: dict[str, Any]) -> str:
    shares = sorted(result["cpu_cores_by_process"].items(), key=lambda kv: -kv[1])
    return ", ".join(f"{role} {v:.2f}" for role, v in shares[:4] if v >= 0.01)


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (every process, all cores)."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def git_state() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return rev or "unknown"


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases, shorter windows")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.add_argument("--cases", help="comma-separated case slugs, e.g. wordcount-amo")
    parser.add_argument(
        "--max-spout-pending",
        type=int,
        default=20000,
        help="topology.max.spout.pending for ATLEAST_ONCE cases (default 20000)",
    )
    parser.add_argument(
        "--config-property",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to every submit (exploration; the reference table uses defaults)",
    )
    parser.add_argument("--keep-home", action="store_true", help="keep the working root")
    args = parser.parse_args(argv)

    timing = QUICK if args.quick else FULL
    cases = QUICK_CASES if args.quick else CASES
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = [c for c in CASES if c.slug in wanted]
        unknown = wanted - {c.slug for c in CASES}
        if unknown:
            parser.error(f"unknown case(s) {sorted(unknown)}; known: {[c.slug for c in CASES]}")

    started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="heronpy_lite_bench_"))
    cli = Cli(home)
    results = []
    try:
        if not args.json:
            d = engine_defaults()
            print(f"machine: {machine()} (shared); code: {git_state()}", flush=True)
            keys = (
                "heron.instance.batch.max.tuples",
                "heron.instance.flush.interval.ms",
                "heron.instance.emit.batch.max.tuples",
                "heron.instance.emit.batch.time.ms",
                "topology.backpressure.strategy",
            )
            print("engine defaults: " + ", ".join(f"{k}={d[k]}" for k in keys))
            print(
                f"ATLEAST_ONCE: topology.max.spout.pending={args.max_spout_pending}; "
                f"windows: {timing.windows} x {timing.window}s after {timing.warmup}s warm-up; "
                f"latency at 10% of max rate over {timing.latency}s",
                flush=True,
            )
            if args.config_property:
                print(f"extra config: {args.config_property}")
        for case in cases:
            result = run_case(cli, case, timing, args.max_spout_pending, args.config_property)
            results.append(result)
            if not args.json:
                print(
                    f"  {case.slug}: {result['tuples_per_s']:,}/s (cores: {busiest(result)})",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        left = leftovers(home)
        if left:
            print(f"warning: processes left running: {left}", file=sys.stderr)
        if not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table(results))
        print(f"total {time.monotonic() - started:.0f} s; load avg now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
