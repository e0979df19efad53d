"""Raw per-tuple costs of the hot path, in one process (no sockets, no event loop).

    python benchmarks/micro.py [--repeat 7] [--scale 1.0] [--json]

Each line is ns per tuple (best and median of ``--repeat`` runs; the machine
is shared, so "best" is the cleaner number). Every engine line is measured on
both tuple paths (``c``: the extension, ``python``: the pure-Python reference,
see docs/decisions/0015-compiled-tuple-path.md) and both XOR trackers, in the
same run. The end compares what the spout process and the bolt process spend
per tuple with the budget the targets imply (1.5 M tuples/s at most once:
667 ns per tuple per process; 0.85 M/s at least once: 1176 ns).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import msgpack
from baseline import _Context, _Stub, load_bench
from harness import TOPOLOGY_FILE

from heronpy_lite.api._loader import load_topology
from heronpy_lite.api.tuple import HeronTuple
from heronpy_lite.instance import tuplepath
from heronpy_lite.instance.bolt import BoltInstance
from heronpy_lite.instance.core import install_forwarded
from heronpy_lite.instance.routing import stream_specs
from heronpy_lite.instance.spout import SpoutInstance
from heronpy_lite.instance.task import Batching, TaskInstance
from heronpy_lite.stmgr import acking
from heronpy_lite.wire.acking import AckBatch
from heronpy_lite.wire.frames import FrameDecoder

BATCH = 1024
RESULTS: list[dict[str, Any]] = []
AMO = {"topology.reliability.mode": "ATMOST_ONCE"}
ALO = {"topology.reliability.mode": "ATLEAST_ONCE"}


def bench(name: str, fn: Callable[[int], None], per_call: int, repeat: int, n: int) -> float:
    """``fn(n)`` does ``n`` iterations of ``per_call`` tuples; returns best ns/tuple."""
    fn(max(1, n // 10))  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(n)
        times.append((time.perf_counter() - t0) / (n * per_call) * 1e9)
    best, med = min(times), statistics.median(times)
    RESULTS.append({"name": name, "best_ns": round(best, 1), "median_ns": round(med, 1)})
    print(f"{best:9.1f} {med:9.1f}  {name}", flush=True)
    return best


def make_host(path: ModuleType, component: str, config: dict[str, Any]) -> Any:
    """A word-count task on ``path``, built as the instance core builds it, its
    component initialized."""
    reliable = config is ALO
    definition = load_topology(TOPOLOGY_FILE, "WordCount", "micro")
    streams = stream_specs(definition, component, {"spout": [1], "count": [2]}, None)
    task = 1 if component == "spout" else 2
    arguments: dict[str, Any] = {
        "topology": "micro",
        "task_id": task,
        "component": component,
        "streams": streams,
        "task_components": {1: "spout", 2: "count"},
        "logger": logging.getLogger("micro"),
        "batching": Batching(BATCH, 1 << 20, 32 * 1024 * 1024),
        "reliable": reliable,
        "path": path,
    }
    host: TaskInstance
    if component == "spout":
        host = SpoutInstance(message_timeout_secs=30 if reliable else None, **arguments)
    else:
        host = BoltInstance(**arguments)
    cls = definition.components[component].python_class
    host.component = cls(delegate=host)
    install_forwarded(host.component, host)  # as the instance core does
    host.component.initialize(config=config, context=_Context(component, task, config))
    return host


def spout_frames(path: ModuleType, config: dict[str, Any], batches: int) -> list[Any]:
    """DATA frames of ``batches`` full batches from a spout on ``path``."""
    host = make_host(path, "spout", config)
    for _ in range(batches * BATCH):
        host.component.next_tuple()
    host.flush()
    frames = FrameDecoder(64 << 20).feed(b"".join(host.take_output()))
    return [f for f in frames if hasattr(f, "stream")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply iteration counts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    r = args.repeat

    def n(base: int) -> int:
        return max(1, int(base * args.scale))

    bench_mod = load_bench()
    paths = tuplepath.IMPLEMENTATIONS
    print(f"tuple paths: {', '.join(sorted(paths))}; {'best ns':>9} {'median':>9} per tuple")

    print("-- user code alone (emit does nothing; process gets prebuilt tuples)")

    def user_spout(config: dict[str, Any]) -> Callable[[int], None]:
        spout = bench_mod.BenchSpout(delegate=_Stub("spout", 1))
        # the cheapest call that takes emit's arguments: a C method that ignores them
        spout.emit = "".format
        spout.initialize(config=config, context=_Context("spout", 1, config))
        nt = spout.next_tuple

        def run(k: int) -> None:
            for _ in range(k):
                nt()

        return run

    spout_user = bench("BenchSpout.next_tuple (AMO)", user_spout(AMO), 1, r, n(300_000))
    bench("BenchSpout.next_tuple (ALO, tup_id)", user_spout(ALO), 1, r, n(300_000))

    def user_bolt(config: dict[str, Any]) -> Callable[[int], None]:
        bolt = bench_mod.CountBolt(delegate=_Stub("count", 2))
        bolt.initialize(config=config, context=_Context("count", 2, config))
        now = time.time()
        words = bench_mod.vocabulary(1000)
        tuples = [
            tuple.__new__(
                HeronTuple, (None, "spout", "default", 1, [words[i % 1000], now], now, None)
            )
            for i in range(BATCH)
        ]
        process = bolt.process

        def run(k: int) -> None:
            for _ in range(k):
                for t in tuples:
                    process(t)

        return run

    bolt_user = bench("CountBolt.process (AMO)", user_bolt(AMO), BATCH, r, n(300))

    print("-- packing and unpacking")
    words = bench_mod.vocabulary(1000)
    values = [[words[i % 1000], 1.5 + i] for i in range(BATCH)]
    for name, path in sorted(paths.items()):
        pack = path.pack

        def t_pack(k: int, pack: Any = pack) -> None:
            for _ in range(k):
                for v in values:
                    pack(v)

        bench(f"[{name}] pack([word, float]) one tuple at a time", t_pack, BATCH, r, n(300))
    body = msgpack.packb(values, use_bin_type=True)
    for name, path in sorted(paths.items()):

        def t_unpack(k: int, unpack: Any = path.unpack) -> None:
            for _ in range(k):
                unpack(body)

        bench(f"[{name}] unpack of a 1024-tuple batch", t_unpack, BATCH, r, n(300))

    spout_cost: dict[tuple[str, str], float] = {}
    bolt_cost: dict[tuple[str, str], float] = {}
    for mode, config in (("AMO", AMO), ("ALO", ALO)):
        print(f"-- a task in process, {mode} (next_tuple/emit/flush; unpack/deliver/process)")
        for name, path in sorted(paths.items()):

            def t_spout(k: int, path: ModuleType = path, config: dict[str, Any] = config) -> None:
                host = make_host(path, "spout", config)
                nt = host.component.next_tuple
                for _ in range(k):
                    for _ in range(BATCH):
                        nt()
                    host.flush()
                    host.take_output()
                    host.emitter.immediate.clear()
                    host.in_flight.clear()

            spout_cost[(mode, name)] = bench(
                f"[{name}] BenchSpout.next_tuple + emit + flush", t_spout, BATCH, r, n(200)
            )
            frames = spout_frames(path, config, 8)

            def t_bolt(
                k: int,
                path: ModuleType = path,
                config: dict[str, Any] = config,
                frames: list[Any] = frames,
            ) -> None:
                host = make_host(path, "count", config)
                for _ in range(k):
                    for f in frames:
                        host.process_batch(f.src_task, f.stream, f.body)
                    host.flush()
                    host.take_output()

            bolt_cost[(mode, name)] = bench(
                f"[{name}] unpack + deliver + CountBolt.process (+ ack)",
                t_bolt,
                8 * BATCH,
                r,
                n(25),
            )

    print("-- XOR tracker (per tuple: one init, one update, completed)")
    rand = random.Random(1).getrandbits
    roots = [rand(64) or 1 for _ in range(BATCH)]
    edges = [rand(64) or 1 for _ in range(BATCH)]
    pairs = [x for pair in zip(roots, edges, strict=True) for x in pair]
    init_body, update_body = AckBatch(init=pairs).encode(), AckBatch(update=pairs).encode()
    trackers = {"python": acking.PyXorTracker, **({"c": acking.NATIVE} if acking.NATIVE else {})}
    for name, cls in sorted(trackers.items()):

        def t_tracker(k: int, cls: Any = cls) -> None:
            for _ in range(k):
                tracker = cls(30, 0.0)
                tracker.apply_body(1, init_body, 1.0)
                tracker.apply_body(1, update_body, 1.0)

        bench(
            f"[{name}] XorTracker.apply_body (init + update -> acked)", t_tracker, BATCH, r, n(100)
        )

    print("-- budget (ns per tuple, per process; 1.5 M/s AMO = 667, 0.85 M/s ALO = 1176)")
    for name in sorted(paths):
        rows = [
            (f"[{name}] spout process, AMO (no socket)", spout_cost[("AMO", name)], 667),
            (f"[{name}]   of which engine", spout_cost[("AMO", name)] - spout_user, 667),
            (f"[{name}] bolt process, AMO (no socket)", bolt_cost[("AMO", name)], 667),
            (f"[{name}]   of which engine", bolt_cost[("AMO", name)] - bolt_user, 667),
            (f"[{name}] spout process, ALO", spout_cost[("ALO", name)], 1176),
            (f"[{name}] bolt process, ALO", bolt_cost[("ALO", name)], 1176),
        ]
        for label, ns, budget in rows:
            print(f"{ns:9.1f} {budget:9d}  {label}")
    if args.json:
        print(json.dumps({"results": RESULTS}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
