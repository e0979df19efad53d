"""What ``update`` costs a user: the time from ``update`` to the new plan
running, and how long the output stops, for a 10-task topology.

    python benchmarks/rescale.py            # 3 updates per mode, ~3 min on 2 cores
    python benchmarks/rescale.py --updates 1

Cases (benchmarks/topologies/bench.py), paced at ``--rate`` tuples/s per
spout task (a control file), 2 stream managers:

- ATLEAST_ONCE ``Rescaled`` (spout x2, relay x4, stage2 x3, sink x1): the
  relay goes 4 -> 6 -> 4 -> ...; the update drains the in-flight trees first.
- EFFECTIVELY_ONCE ``StatefulRescaled`` (spout x2, count x8, checkpoints every
  1 s): the count goes 8 -> 4 -> 8 -> ...; its keyed state moves.

Figures, medians over ``--updates``: **update**, the wall time of the
``update`` command (it returns when every task of the new plan runs);
**paused**, what the command itself reports (from deactivating the spouts,
or from stopping the containers, to the new plan running); **output gap**,
the longest time the counting bolts reported no progress around the update
(their reports come every 0.5 s: that is the resolution); and the rate
before and after.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import Cli, leftovers


def progress(folder: Path) -> list[tuple[float, int]]:
    """(time, tuples counted since the previous report of the same task), every
    report of every counting task, in time order."""
    out: list[tuple[float, int]] = []
    for path in folder.glob("*.jsonl"):
        last = 0
        with open(path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                t, count, _ = json.loads(line)
                out.append((t, count - last))
                last = count
    return sorted(out)


def rate(events: list[tuple[float, int]], t0: float, t1: float) -> float:
    return sum(d for t, d in events if t0 < t <= t1) / (t1 - t0)


def longest_gap(events: list[tuple[float, int]], t0: float, t1: float) -> float:
    """The longest interval in [t0, t1] between two reports that counted something."""
    times = [t for t, d in events if d > 0 and t0 <= t <= t1]
    return max((b - a for a, b in itertools.pairwise(times)), default=t1 - t0)


def case(
    cli: Cli, attr: str, component: str, sizes: tuple[int, int], props: dict[str, Any], updates: int
) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="rescale-"))
    control = out / "control"
    control.write_text(str(props.pop("rate")))
    props = {"bench.output.dir": out, "bench.control.file": control, "topology.stmgrs": 2, **props}
    results = []
    with cli.submitted(attr, attr, props):
        deadline = time.time() + 60
        while not progress(out) and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(5)  # warm up
        for i in range(updates):
            size = sizes[(i + 1) % 2]
            events = progress(out)
            before = rate(events, time.time() - 4, time.time())
            t0 = time.time()
            said = cli.run(
                "update",
                "local",
                attr,
                "--component-parallelism",
                f"{component}:{size}",
                timeout=300,
            )
            t1 = time.time()
            time.sleep(6)
            events = progress(out)
            after = rate(events, t1 + 1, time.time())
            paused = re.search(r"paused ([0-9.]+)s", said)
            results.append(
                {
                    "update_secs": t1 - t0,
                    "paused_secs": float(paused.group(1)) if paused else None,
                    "output_gap_secs": longest_gap(events, t0 - 1, t1 + 5),
                    "rate_before": before,
                    "rate_after": after,
                }
            )
    return {
        "case": f"{attr} {component} {sizes[0]}<->{sizes[1]}",
        "updates": len(results),
        **{k: statistics.median(r[k] for r in results) for k in results[0]},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--updates", type=int, default=3)
    p.add_argument("--rate", type=int, default=1000, help="tuples/s per spout task")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="rescale-home-"))
    cli = Cli(home)
    rows = [
        case(
            cli,
            "Rescaled",
            "relay",
            (4, 6),
            {"rate": args.rate, "topology.reliability.mode": "ATLEAST_ONCE"},
            args.updates,
        ),
        case(
            cli,
            "StatefulRescaled",
            "count",
            (8, 4),
            {
                "rate": args.rate,
                "topology.reliability.mode": "EFFECTIVELY_ONCE",
                "topology.stateful.checkpoint.interval.seconds": 1,
            },
            args.updates,
        ),
    ]
    left = leftovers(home)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        heads = ("update s", "paused s", "gap s", "before/s", "after/s")
        print(f"{'case':<32} " + " ".join(f"{h:>9}" for h in heads))
        for r in rows:
            print(
                f"{r['case']:<32} {r['update_secs']:>9.2f} {r['paused_secs'] or 0:>9.2f} "
                f"{r['output_gap_secs']:>9.2f} {r['rate_before']:>9.0f} {r['rate_after']:>9.0f}"
            )
    if left:
        print(f"leftover processes: {left}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
