"""A sliding ``reduce_by_key_and_window`` before and after folding per pane, in one run.

    python benchmarks/window_fold.py                 # ~1-2 min on 2 cores
    python benchmarks/window_fold.py --scale 0.25 --rounds 1
    python benchmarks/window_fold.py --json

The operator is the real `ReduceByKeyAndWindowBolt` of a Builder written as
Heron's word_count_streamlet.py (``(word, 1)`` pairs, ``lambda x, y: x + y``,
sliding windows of 10 s every 2 s; and 3 s every 2 s, where the slide does
not divide the length), driven in this process with a clock that it reads
from the benchmark: ``--rate`` words per simulated second for ``--seconds``
simulated seconds, a tick every 0.1 simulated s, as the engine's ticks
would. Each word arrives as a fresh `HeronTuple` (its string decoded from
bytes, as msgpack would make it), so what the windows keep alive is what
they would keep in an instance.

Two variants of the same bolt, alternately (``--rounds``, best of them):

- ``refold``: the bolt as it was before panes, keeping every tuple of the
  window and folding each window's values when it fires (``_fold`` off);
- ``panes``: one partial fold per key and pane of gcd(length, slide),
  panes combined when a window fires.

Both run with ``max_tuples`` raised to 10 M so that the refold keeps every
tuple (at its default of 100,000 it would refuse most of a 10 s window at
these rates). Time is this process's CPU time in the bolt (wall time on a
shared machine is mostly other people's load), less the cost of making the
tuples (measured alone in the same round); memory is a separate pass under
tracemalloc: the peak of what was allocated and still alive during the run,
and the most items the windows held (the ``window_held`` gauge).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import time
import tracemalloc
from typing import Any

from heronpy_lite.api import api_constants
from heronpy_lite.api.topology import definition_of
from heronpy_lite.api.topology_context import StreamId, TopologyContext
from heronpy_lite.api.tuple import HeronTuple
from heronpy_lite.process import GC_THRESHOLDS
from heronpy_lite.streamlet import Builder, WindowConfig
from heronpy_lite.streamlet.impl.streamletboltbase import KEYED

NAME = "reducebykeyandwindow-1"
WORDS = [w.encode() for w in ["Mary", "Had", "a", "little", "lamb", "I", "Love", "You"]]
SHAPES = [(10, 2), (3, 2)]
MODES = ["ATMOST_ONCE", "ATLEAST_ONCE"]
TICK = 0.1


class _Delegate:
    """What the bolt calls: emits are counted, acks and fails do nothing."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("benchmarks.window_fold")
        self.emitted = 0

    def emit(self, tup: Any, *args: Any, **kw: Any) -> None:
        self.emitted += 1

    def ack(self, tup: Any) -> None:
        pass

    def fail(self, tup: Any) -> None:
        pass


def make_bolt(length: float, slide: float, mode: str, refold: bool) -> tuple[Any, _Delegate]:
    builder = Builder()
    window = WindowConfig.create_sliding_window(length, slide).with_max_tuples(10_000_000)
    (
        builder.new_source(lambda: "Mary Had a little lamb")
        .flat_map(lambda line: line.split())
        .map(lambda word: (word, 1))
        .reduce_by_key_and_window(window, lambda x, y: x + y)
        .consume(lambda element: None)
    )
    comp = definition_of(builder, "Bench").components[NAME]
    delegate = _Delegate()
    bolt = comp.python_class(delegate=delegate)
    if refold:
        bolt._fold = lambda: None
    config = {**comp.config, api_constants.TOPOLOGY_RELIABILITY_MODE: mode}
    sources = {StreamId(i.stream, i.component): i.grouping for i in comp.inputs}
    context = TopologyContext(
        "Bench", 1, NAME, config, {NAME: sources}, {NAME: [1]}, lambda *a: None
    )
    bolt.initialize(config, context)
    assert bolt._folding is not refold
    return bolt, delegate


def feed(bolt: Any, rate: int, seconds: float, trace: bool = False) -> tuple[int, int]:
    """``rate`` words per simulated second through ``bolt`` (None: only make the
    tuples); returns (tuples, the most items the windows held)."""
    clock = [100.0]
    if bolt is not None:
        bolt._clock = lambda: clock[0]
    per_tick = max(1, round(rate * TICK))
    words = WORDS
    n_words = len(words)
    held = 0
    n = 0
    for step in range(round(seconds / TICK)):
        base = 100.0 + step * TICK
        for i in range(per_tick):
            clock[0] = base + TICK * i / per_tick
            t = HeronTuple(None, "map-1", KEYED, 1, [words[n % n_words].decode(), 1], 0.0, None)
            n += 1
            if bolt is not None:
                bolt.process(t)
        if bolt is not None:
            clock[0] = base + TICK
            bolt.process_tick(None)
            if trace:
                held = max(held, bolt._windows.held)
    return n, held


def timed(variant: str, length: float, slide: float, mode: str, args: Any) -> float:
    bolt = None if variant == "feed" else make_bolt(length, slide, mode, variant == "refold")[0]
    gc.collect()
    t0 = time.process_time()  # CPU time: the machine is shared, wall time is noise
    feed(bolt, args.rate, args.seconds)
    return time.process_time() - t0


def memory(variant: str, length: float, slide: float, mode: str, args: Any) -> dict[str, Any]:
    bolt, delegate = make_bolt(length, slide, mode, variant == "refold")
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    _, held = feed(bolt, args.rate, args.seconds, trace=True)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return {"peak_mib": round(peak / 2**20, 2), "max_held": held, "emitted": delegate.emitted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=20_000, help="words per simulated second")
    parser.add_argument("--seconds", type=float, default=24.0, help="simulated seconds")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies --seconds")
    parser.add_argument("--rounds", type=int, default=3, help="alternate this many times (best)")
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    args = parser.parse_args(argv)
    args.seconds *= args.scale
    gc.set_threshold(*GC_THRESHOLDS)  # as engine processes run
    results = []
    for length, slide in SHAPES:
        for mode in args.modes:
            times: dict[str, list[float]] = {"feed": [], "refold": [], "panes": []}
            for _ in range(args.rounds):
                for variant in times:
                    times[variant].append(timed(variant, length, slide, mode, args))
            n = round(args.seconds / TICK) * max(1, round(args.rate * TICK))
            row: dict[str, Any] = {
                "window": [length, slide],
                "mode": mode,
                "tuples": n,
                "load_avg_1m": round(os.getloadavg()[0], 1),
            }
            feed_s = min(times["feed"])
            for variant in ("refold", "panes"):
                bolt_s = max(1e-9, min(times[variant]) - feed_s)
                row[variant] = {
                    "tuples_per_s": round(n / bolt_s),
                    "ns_per_tuple": round(bolt_s / n * 1e9),
                    "round_s": [round(t, 3) for t in times[variant]],
                    **memory(variant, length, slide, mode, args),
                }
            if row["refold"]["emitted"] != row["panes"]["emitted"]:
                raise RuntimeError(f"the variants emitted different counts: {row}")
            row["speedup"] = round(row["panes"]["tuples_per_s"] / row["refold"]["tuples_per_s"], 2)
            row["memory_ratio"] = round(
                row["panes"]["peak_mib"] / max(row["refold"]["peak_mib"], 1e-9), 3
            )
            results.append(row)
            print(f"  {length}/{slide} {mode} done (load {row['load_avg_1m']})", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"{'window':8} {'mode':13} {'refold t/s':>11} {'panes t/s':>11} {'speedup':>8}   "
        f"{'peak MiB refold/panes':>22} {'held refold/panes':>19}"
    )
    for r in results:
        a, b = r["refold"], r["panes"]
        window = "{:g}/{:g}".format(*r["window"])
        print(
            f"{window:8} {r['mode']:13} {a['tuples_per_s']:>11,} "
            f"{b['tuples_per_s']:>11,} {r['speedup']:>7.2f}x   "
            f"{a['peak_mib']:>10.1f} / {b['peak_mib']:<9.2f} "
            f"{a['max_held']:>9,} / {b['max_held']:<8,}"
        )
    print(f"({results[0]['tuples']:,} words per run, load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
