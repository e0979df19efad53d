"""What EFFECTIVELY_ONCE costs: word count with checkpoints every 1 s and every
10 s against ATLEAST_ONCE, in one run; the time to recover after kill -9; and
a task's state written whole or as a delta.

    python benchmarks/stateful.py              # 2 rounds, ~6 min on 2 cores
    python benchmarks/stateful.py --quick      # 1 round, short windows, ~2 min
    python benchmarks/stateful.py --json

1. **Throughput and latency.** The cases are those of ``run.py`` (the same
   harness and figures: median tuples/s over windows at full speed, p50/p99
   emit->process latency at 10% of that rate): ``WordCount`` in ATLEAST_ONCE,
   and ``StatefulWordCount`` (the same spout and bolt, their position and
   counts in the checkpointed state) in EFFECTIVELY_ONCE at
   ``topology.stateful.checkpoint.interval.seconds`` 1 and 10. The cases run
   in turn, ``--rounds`` times (medians), so that all see the same machine;
   ratios are against ATLEAST_ONCE of the same round.
2. **Recovery.** ``StatefulWordCount`` paced at 2,000 tuples/s with 1 s
   checkpoints: kill -9 of the counting bolt, then the time until the
   topology master reports the restore done (``status`` polled: a new epoch,
   not restoring; each poll is a CLI process, so this is an upper bound) and
   until the restarted bolt counts again (its first report with a count); the
   median of ``--kills``.
3. **State writes.** In this process, no engine: a `HashMapState` of 100,000
   counters of which 1% change between checkpoints, written whole and as a
   delta (`checkpoint.store.StateWriter`): bytes and milliseconds per
   checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import run
from harness import Cli, Reports, leftovers

from heronpy_lite.api.state.state import HashMapState
from heronpy_lite.checkpoint.store import StateWriter

INTERVALS = (1, 10)


def throughput(cli: Cli, rounds: int, timing: run.Timing) -> list[dict[str, Any]]:
    results = []
    for r in range(rounds):
        cases = [(run.Case(f"wc-r{r}", "WordCount", 1, run.ALO), [], "ATLEAST_ONCE")]
        for secs in INTERVALS:
            case = run.Case(f"wc-cp{secs}s-r{r}", "StatefulWordCount", 1, run.EO)
            prop = f"topology.stateful.checkpoint.interval.seconds={secs}"
            cases.append((case, [prop], f"EO {secs}s"))
        for case, extra, label in cases:
            result = run.run_case(cli, case, timing, 20000, extra)
            result["label"], result["round"] = label, r
            results.append(result)
            print(f"  round {r} {label}: {result['tuples_per_s']:,}/s", file=sys.stderr)
    return results


def recovery(cli: Cli, kills: int) -> dict[str, Any]:
    out = cli.home / "out" / "recovery"
    out.mkdir(parents=True)
    control = cli.home / "recovery.rate"
    control.write_text("2000")
    props = {
        "topology.reliability.mode": run.EO,
        "topology.stateful.checkpoint.interval.seconds": 1,
        "bench.output.dir": out,
        "bench.control.file": control,
    }
    restored, counting = [], []
    reports = Reports(out)
    with cli.submitted("StatefulWordCount", "Recovery", props) as name:
        for _ in range(kills):
            wait_latest(cli, name, 1)
            status = cli.status(name)
            epoch = status["checkpoints"]["epoch"]
            (pid,) = [
                i["pid"]
                for c in status["containers"]
                for i in c.get("instances", [])
                if i["component"] == "count"
            ]
            killed = time.time()
            os.kill(pid, signal.SIGKILL)
            while True:
                now = cli.status(name)["checkpoints"]
                if now["epoch"] > epoch and not now["restoring"]:
                    restored.append(time.time() - killed)
                    break
                if time.time() - killed > 60:
                    raise RuntimeError("no recovery within 60 s")
                time.sleep(0.05)
            if not reports.wait(lambda r, k=killed: counting_again(r, k), 60):
                raise RuntimeError("the bolt did not count again within 60 s")
            counting.append(first_count_after(reports, killed) - killed)
    return {
        "kills": kills,
        "restore_done_s": round(statistics.median(restored), 3),
        "counting_again_s": round(statistics.median(counting), 3),
        "restore_done_all_s": [round(x, 3) for x in restored],
        "counting_again_all_s": [round(x, 3) for x in counting],
    }


def wait_latest(cli: Cli, name: str, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while cli.status(name).get("checkpoints", {}).get("latest", -1) < at_least:
        if time.monotonic() > deadline:
            raise RuntimeError("no checkpoint within 60 s")
        time.sleep(0.1)


def counting_again(reports: Reports, killed: float) -> bool:
    return first_count_after(reports, killed) > 0


def first_count_after(reports: Reports, killed: float) -> float:
    """The time of the restarted bolt's first report with a count: after its
    opening line ``[t, 0, []]``, which follows the kill."""
    started = [t for t, count, _ in reports.records if t > killed and count == 0]
    if not started:
        return 0.0
    after = [t for t, count, _ in reports.records if t > started[0] and count > 0]
    return after[0] if after else 0.0


def state_writes(keys: int = 100_000, changed: float = 0.01, rounds: int = 10) -> dict[str, Any]:
    state = HashMapState({f"word{i}": i for i in range(keys)})
    state.take_changes()
    step = int(1 / changed)
    figures: dict[str, list[tuple[int, float]]] = {"full": [], "delta": []}
    for kind, full_every in (("full", 1), ("delta", 1_000_000)):
        writer = StateWriter(full_every)
        writer.payload(state)  # the first file is always full
        for r in range(rounds):
            for i in range(r % step, keys, step):
                state[f"word{i}"] = i + r
            t0 = time.perf_counter()
            got, payload = writer.payload(state)
            figures[kind].append((len(payload), time.perf_counter() - t0))
            assert got == ("full" if kind == "full" else "delta"), got
    return {
        "keys": keys,
        "changed_per_checkpoint": int(keys * changed),
        **{
            f"{kind}_bytes": statistics.median(b for b, _ in rows) for kind, rows in figures.items()
        },
        **{
            f"{kind}_ms": round(statistics.median(s for _, s in rows) * 1000, 2)
            for kind, rows in figures.items()
        },
    }


def report(results: list[dict[str, Any]], rec: dict[str, Any], writes: dict[str, Any]) -> str:
    lines = [
        f"{'case':<16}{'tuples/s':>11}{'vs ALO':>8}{'baseline/s':>12}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'CPU s/M':>9}"
    ]
    by_label: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_label.setdefault(r["label"], []).append(r)
    alo_by_round = {r["round"]: r["tuples_per_s"] for r in by_label["ATLEAST_ONCE"]}
    for label, rows in by_label.items():
        rate = statistics.median(r["tuples_per_s"] for r in rows)
        ratio = statistics.median(r["tuples_per_s"] / alo_by_round[r["round"]] for r in rows)
        lines.append(
            f"{label:<16}{rate:>11,.0f}{ratio:>8.2f}"
            f"{statistics.median(r['baseline_tuples_per_s'] for r in rows):>12,.0f}"
            f"{statistics.median(r['latency_p50_ms'] for r in rows):>8.2f}"
            f"{statistics.median(r['latency_p99_ms'] for r in rows):>8.2f}"
            f"{statistics.median(r['cpu_s_per_million'] for r in rows):>9.1f}"
        )
    lines.append(
        f"recovery after kill -9 of the counting bolt (median of {rec['kills']}): restore done "
        f"in {rec['restore_done_s']} s, counting again after {rec['counting_again_s']} s"
    )
    lines.append(
        f"state of {writes['keys']:,} keys, {writes['changed_per_checkpoint']:,} changed per "
        f"checkpoint: whole {writes['full_bytes']:,.0f} bytes in {writes['full_ms']} ms, "
        f"delta {writes['delta_bytes']:,.0f} bytes in {writes['delta_ms']} ms"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round, short windows")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of the three cases")
    parser.add_argument("--kills", type=int, default=3, help="kill -9s to time recovery")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 2)
    timing = run.QUICK if args.quick else run.FULL

    started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="heronpy_lite_bench_"))
    cli = Cli(home)
    try:
        if not args.json:
            print(f"machine: {run.machine()} (shared); code: {run.git_state()}", flush=True)
        writes = state_writes()
        results = throughput(cli, rounds, timing)
        rec = recovery(cli, args.kills)
    finally:
        left = leftovers(home)
        if left:
            print(f"warning: processes left running: {left}", file=sys.stderr)
        shutil.rmtree(home, ignore_errors=True)
    if args.json:
        print(json.dumps({"cases": results, "recovery": rec, "state_writes": writes}, indent=2))
    else:
        print(report(results, rec, writes))
        print(f"total {time.monotonic() - started:.0f} s; load avg now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
