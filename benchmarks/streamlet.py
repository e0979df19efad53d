"""What the Streamlet API costs: word count as streamlets against the same
topology written with spouts and bolts, in one run.

    python benchmarks/streamlet.py            # both modes, 2 rounds, ~4 min on 2 cores
    python benchmarks/streamlet.py --quick --rounds 1   # ~1 min
    python benchmarks/streamlet.py --json

Both topologies are in ``benchmarks/topologies/streamlet_wordcount.py``
(two sources -> split -> (word, 1) -> union -> counts per word over tumbling
1 s windows -> sink, nine processes each). Each is submitted through the CLI
under a private ``HERONPY_LITE_HOME``; its sink writes the number of words
of every window; the rate is the median over the windows that lie inside the
measurement (after a warm-up), in words per second through the topology,
and the CPU time of all its processes per million words. The variants run
alternately (``--rounds``, medians), so that both see the same machine; the
ratio is streamlet / spouts-and-bolts. On a shared machine, look at the
load average printed with each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import HERE, Cli, cpu_snapshot, processes, reap_home

FILE = HERE / "topologies" / "streamlet_wordcount.py"
VARIANTS = [("streamlet", "streamlet"), ("spouts-and-bolts", "SpoutsAndBolts")]
MODES = ["ATMOST_ONCE", "ATLEAST_ONCE"]


def window_totals(folder: Path) -> dict[int, int]:
    """window end -> words counted in it, over every sink task."""
    totals: dict[int, int] = {}
    for path in folder.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            end, words = json.loads(line)
            totals[end] = totals.get(end, 0) + words
    return totals


def measure(
    cli: Cli, variant: str, attr: str, mode: str, warmup: float, span: float, round_: int
) -> Any:
    out = cli.home / "out" / f"{variant}-{mode}-{round_}"
    out.mkdir(parents=True)
    cli.env["BENCH_OUT"] = str(out)
    name = f"{attr}-{mode}".replace("_", "")
    props = {"topology.reliability.mode": mode, "topology.max.spout.pending": 20000}
    args = ["submit", "local", str(FILE), attr, "--name", name]
    for key, value in props.items():
        args += ["--config-property", f"{key}={value}"]
    try:
        cli.run(*args)
        procs = processes(cli.status(name))
        deadline = time.monotonic() + 30
        while not window_totals(out):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: no window counted within 30 s")
            time.sleep(0.2)
        time.sleep(warmup)
        t0, cpu0 = time.time(), cpu_snapshot(procs)
        time.sleep(span)
        t1, cpu1 = time.time(), cpu_snapshot(procs)
        # the window ending at t1 is written once the next one starts
        deadline = time.monotonic() + 10
        while max(window_totals(out), default=0) < t1 + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        cli.run("kill", "local", name, check=False)
        reap_home(cli.home)
    totals = window_totals(out)
    inside = [words for end, words in totals.items() if t0 + 1 <= end <= t1]
    if not inside:
        raise RuntimeError(f"{name}: no complete window inside the measurement")
    cpu = sum(v for v in cpu1.values() if v == v) - sum(v for v in cpu0.values() if v == v)
    words = sum(inside)
    return {
        "variant": variant,
        "mode": mode,
        "words_per_s": round(statistics.median(inside)),
        "windows_words_per_s": inside,
        "cpu_s_per_million": round(cpu / (t1 - t0) * len(inside) / words * 1e6, 2),
        "processes": len(procs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternate the variants this many times (median)"
    )
    args = parser.parse_args(argv)
    warmup, span = (2.0, 4.0) if args.quick else (3.0, 8.0)
    home = Path(tempfile.mkdtemp(prefix="heronpy-lite-bench-"))
    cli = Cli(home)
    results = []
    try:
        for round_ in range(args.rounds):
            for mode in args.modes:
                for variant, attr in VARIANTS:
                    result = measure(cli, variant, attr, mode, warmup, span, round_)
                    result["round"] = round_
                    result["load_avg_1m"] = round(os.getloadavg()[0], 1)
                    results.append(result)
                    print(
                        f"  round {round_} {variant:17} {mode:13} "
                        f"{result['words_per_s']:>9,} words/s  (load {result['load_avg_1m']})",
                        file=sys.stderr,
                    )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'mode':13} {'streamlet':>12} {'spouts+bolts':>13} {'ratio':>6}   cpu s/M words")
    for mode in args.modes:
        rate, cpu = {}, {}
        for variant, _ in VARIANTS:
            runs = [r for r in results if r["mode"] == mode and r["variant"] == variant]
            rate[variant] = statistics.median(r["words_per_s"] for r in runs)
            cpu[variant] = statistics.median(r["cpu_s_per_million"] for r in runs)
        s, b = (v for v, _ in VARIANTS)
        ratio = rate[s] / rate[b] if rate[b] else float("nan")
        print(
            f"{mode:13} {rate[s]:>12,.0f} {rate[b]:>13,.0f} {ratio:>6.2f}   "
            f"{cpu[s]:.1f} vs {cpu[b]:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
