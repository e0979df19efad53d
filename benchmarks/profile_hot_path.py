"""Profile the hot path of the 1-container ATMOST_ONCE word count under full load.

    pip install py-spy
    python benchmarks/profile_hot_path.py [--seconds 10] [--mode ATMOST_ONCE] [--out DIR] [--svg]

Submits ``WordCount`` (benchmarks/topologies/bench.py) through the CLI under
its own HERONPY_LITE_HOME, warms up, then runs ``py-spy record`` on the spout
instance, the count bolt instance and the stream manager at the same time
(``--nonblocking``, so the targets are not paused), while measuring the
throughput and each process's CPU use. Writes the collapsed stacks
(``<role>.txt``, ``--svg`` adds flame graphs from a second recording) to
``--out`` (default ``benchmarks/profiles/``) and prints, per process, the top
functions by self and by total time and the hottest lines (time inside C
calls such as ``msgpack.packb`` or ``time.time`` is charged to the calling
line). The topology is always killed at the end.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from harness import HERE, Cli, Reports, cpu_snapshot, leftovers, processes

_LINE = re.compile(r"^(.*) \((.*?):(\d+)\)$")


def parse(path: Path) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """(samples, self by function, total by function, self by line)."""
    selfs: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    samples = 0
    for raw in path.read_text().splitlines():
        stack, _, count_text = raw.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")
        seen = set()
        for i, frame in enumerate(frames):
            m = _LINE.match(frame)
            func = f"{m.group(1)} ({m.group(2)})" if m else frame
            if i == len(frames) - 1:
                selfs[func] += count
                lines[frame] += count
            if func not in seen:
                seen.add(func)
                totals[func] += count
    return samples, selfs, totals, lines


def summary(role: str, path: Path, seconds: float, rate: int, cores: float, top: int) -> str:
    samples, selfs, totals, lines = parse(path)
    if not samples:
        return f"== {role}: no samples"
    out = [
        f"== {role}: {samples} samples over {seconds:.0f}s at {rate} Hz "
        f"(on CPU {samples / (seconds * rate):.0%} of the time by py-spy, "
        f"{cores:.2f} cores by psutil)"
    ]

    def block(title: str, counter: Counter[str]) -> None:
        out.append(f"  -- {title}")
        for name, n in counter.most_common(top):
            out.append(f"  {100 * n / samples:5.1f}%  {name}")

    block("self time by function", selfs)
    block("total time by function", totals)
    block("self time by line (C calls charged to their line)", lines)
    return "\n".join(out)


def pids_of(status: dict) -> dict[str, int]:
    out = {}
    for c in status["containers"]:
        if c["container"] == 0:
            continue
        out["stmgr"] = c["stmgr"]["pid"]
        for i in c["instances"]:
            out[i["component"]] = i["pid"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=4)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples/s")
    parser.add_argument("--mode", default="ATMOST_ONCE")
    parser.add_argument("--containers", type=int, default=1)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--out", type=Path, default=HERE / "profiles")
    parser.add_argument("--svg", action="store_true", help="also record flame graphs")
    parser.add_argument("--config-property", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if shutil.which("py-spy") is None:
        parser.error("py-spy is not installed: pip install py-spy")
    args.out.mkdir(parents=True, exist_ok=True)

    home = Path(tempfile.mkdtemp(prefix="heronpy_lite_profile_"))
    cli = Cli(home)
    out_dir = home / "out"
    out_dir.mkdir()
    props = {
        "topology.reliability.mode": args.mode,
        "topology.stmgrs": args.containers,
        "topology.max.spout.pending": 20000,
        "bench.output.dir": out_dir,
    }
    extra = [x for p in args.config_property for x in ("--config-property", p)]
    reports = Reports(out_dir)
    try:
        with cli.submitted("WordCount", "profile", props, extra) as name:
            status = cli.status(name)
            pids = pids_of(status)
            procs = processes(status)
            if not reports.wait(lambda r: r.last_count > 0, 30):
                raise RuntimeError("no tuple reached the bolt")
            time.sleep(args.warmup)
            targets = {"spout": pids["spout"], "count": pids["count"], "stmgr": pids["stmgr"]}
            formats = [("raw", "txt")] + ([("flamegraph", "svg")] if args.svg else [])
            for fmt, ext in formats:
                t0, cpu0 = time.time(), cpu_snapshot(procs)
                spies = {
                    role: subprocess.Popen(
                        [
                            "py-spy",
                            "record",
                            "--pid",
                            str(pid),
                            "--duration",
                            str(int(args.seconds)),
                            "--rate",
                            str(args.rate),
                            "--nonblocking",
                            "--format",
                            fmt,
                            "--output",
                            str(args.out / f"{role}.{ext}"),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                    for role, pid in targets.items()
                }
                for role, spy in spies.items():
                    _, err = spy.communicate(timeout=args.seconds + 60)
                    if spy.returncode != 0:
                        raise RuntimeError(f"py-spy on {role} failed: {err.strip()}")
                t1, cpu1 = time.time(), cpu_snapshot(procs)
                if fmt == "raw":
                    reports.wait(lambda r, t1=t1: r.last_time >= t1, 3)
                    rate = (reports.count_at(t1) - reports.count_at(t0)) / (t1 - t0)
                    cores = {role: (cpu1[role] - cpu0[role]) / (t1 - t0) for role in cpu0}
            print(f"throughput while profiling: {rate:,.0f} tuples/s ({args.mode})")
            print(
                "cores by process: "
                + ", ".join(f"{r} {c:.2f}" for r, c in sorted(cores.items(), key=lambda x: -x[1]))
            )
            for role in targets:
                core = next((v for k, v in cores.items() if k.startswith(role)), float("nan"))
                print(
                    summary(role, args.out / f"{role}.txt", args.seconds, args.rate, core, args.top)
                )
    finally:
        left = leftovers(home)
        if left:
            print(f"warning: processes left running: {left}", file=sys.stderr)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
