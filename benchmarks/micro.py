"""Raw per-tuple costs of the hot path, in one process (no sockets, no event loop).

    python benchmarks/micro.py [--repeat 7] [--json]

Each line is ns per tuple (best and median of ``--repeat`` runs; the machine
is shared, so "best" is the cleaner number). The end compares what the spout
process and the bolt process spend per tuple with the budget the targets
imply (1.5 M tuples/s at-most-once: 667 ns per tuple per process; 0.85 M/s
at-least-once: 1176 ns).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

import msgpack
from baseline import _Context, _Stub, load_bench
from harness import TOPOLOGY_FILE

from heronpy_lite.api._loader import load_topology
from heronpy_lite.api.tuple import HeronTuple
from heronpy_lite.instance.host import TaskHost
from heronpy_lite.instance.routing import OutputRouter, stable_hash
from heronpy_lite.stmgr.acking import XorTracker
from heronpy_lite.wire.acking import AckBatch
from heronpy_lite.wire.frames import DataFrame, FrameDecoder, encode_data
from heronpy_lite.wire.tuples import pack_batch, unpack_batch

BATCH = 1000
_SIZED = (str, bytes)
RESULTS: list[dict[str, Any]] = []


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


def words_and_batch(n: int = BATCH) -> tuple[list[str], list[list[Any]]]:
    bench_mod = load_bench()
    words = bench_mod.vocabulary(1000)
    now = time.time()
    return words, [[words[i % len(words)], now + i * 1e-6] for i in range(n)]


def make_host(reliable: bool, component: str = "spout", task: int = 1) -> TaskHost:
    definition = load_topology(TOPOLOGY_FILE, "WordCount", "micro")
    component_tasks = {"spout": [1], "count": [2]}
    router = OutputRouter(definition, component, component_tasks, None)
    return TaskHost(
        topology="micro",
        task_id=task,
        component=component,
        is_spout=component == "spout",
        router=router,
        task_components={1: "spout", 2: "count"},
        batch_max_tuples=1024,
        max_frame_bytes=32 * 1024 * 1024,
        logger=logging.getLogger("micro"),
        reliable=reliable,
        message_timeout_secs=30 if reliable else None,
    )


def _lean_emit_prototype(host: TaskHost) -> Callable[..., None]:
    """What ``TaskHost.emit`` could cost for the common case (default stream, one
    fields route): same checks (arity, str/bytes size bound, list copy), the route
    memoized per key (bounded), the batch appended inline, plain int counters, and
    installed as the component's ``emit`` (no ``Spout.emit`` frame). Anything else
    would fall back to the general path."""
    out = host._streams["default"]
    tasks = out.routes[0].tasks
    n_tasks = len(tasks)
    batches: dict[int, list[Any]] = {t: [] for t in tasks}
    memo: dict[Any, list[Any]] = {}
    arity = out.arity
    limit = host.batch_max_tuples
    state = [0, 0]  # emitted, pending bytes

    def emit(
        tup: Any,
        tup_id: Any = None,
        stream: str = "default",
        direct_task: Any = None,
        need_task_ids: bool = False,
    ) -> None:
        if stream != "default" or tup_id is not None or len(tup) != arity:
            raise NotImplementedError("slow path")
        tup = list(tup)
        size = 0
        for value in tup:
            if type(value) in _SIZED:
                size += len(value)
        key = tup[0]
        batch = memo.get(key)
        if batch is None:
            batch = batches[tasks[stable_hash(key) % n_tasks]]
            if len(memo) < 65536:
                memo[key] = batch
        batch.append(tup)
        state[0] += 1
        state[1] += size
        if len(batch) >= limit:
            pack_batch(batch)
            batch.clear()

    return emit


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
    words, batch = words_and_batch()
    body = pack_batch(batch)
    config_amo = {"topology.reliability.mode": "ATMOST_ONCE"}
    config_alo = {"topology.reliability.mode": "ATLEAST_ONCE"}
    print(f"{'best ns':>9} {'median':>9}  per tuple (batches of {BATCH}; body {len(body)} B)")

    # ---- user code ----
    print("-- user code")
    clock = time.time

    def t_time(k: int) -> None:
        for _ in range(k):
            clock()

    bench("time.time()", t_time, 1, r, n(500_000))

    def user_spout(config: dict[str, Any]) -> Callable[[int], None]:
        spout = bench_mod.BenchSpout(delegate=_Stub("spout", 1))
        spout.initialize(config=config, context=_Context("spout", 1, config))
        nt = spout.next_tuple

        def run(k: int) -> None:
            for _ in range(k):
                nt()

        return run

    spout_user = bench(
        "BenchSpout.next_tuple, stub emit (AMO)", user_spout(config_amo), 1, r, n(300_000)
    )
    bench(
        "BenchSpout.next_tuple, stub emit (ALO, tup_id)", user_spout(config_alo), 1, r, n(300_000)
    )

    def user_bolt(config: dict[str, Any]) -> Callable[[int], None]:
        bolt = bench_mod.CountBolt(delegate=_Stub("count", 2))
        bolt.initialize(config=config, context=_Context("count", 2, config))
        new = tuple.__new__
        tuples = [new(HeronTuple, (None, "spout", "default", 1, v, 0.0, None)) for v in batch]
        process = bolt.process

        def run(k: int) -> None:
            for _ in range(k):
                for t in tuples:
                    process(t)

        return run

    bolt_user = bench("CountBolt.process (AMO)", user_bolt(config_amo), BATCH, r, n(300))
    bench("CountBolt.process (ALO, stub ack)", user_bolt(config_alo), BATCH, r, n(300))

    # ---- engine pieces ----
    print("-- engine pieces")

    def t_pack(k: int) -> None:
        for _ in range(k):
            pack_batch(batch)

    pack = bench("pack_batch (msgpack.Packer.pack of 1000 [word, float])", t_pack, BATCH, r, n(300))

    def t_unpack(k: int) -> None:
        for _ in range(k):
            unpack_batch(body)

    unpack = bench("unpack_batch (msgpack.unpackb)", t_unpack, BATCH, r, n(300))
    entries = [[v, [1, 0x1234567890ABCDEF, 0x0FEDCBA987654321]] for v in batch]
    body_alo = pack_batch(entries)

    def t_pack_alo(k: int) -> None:
        for _ in range(k):
            pack_batch(entries)

    bench("pack_batch ALO entries [values, [task, root, edge]]", t_pack_alo, BATCH, r, n(300))

    def t_unpack_alo(k: int) -> None:
        for _ in range(k):
            unpack_batch(body_alo)

    bench("unpack_batch ALO entries", t_unpack_alo, BATCH, r, n(300))

    def t_unpack_nolist(k: int) -> None:
        for _ in range(k):
            msgpack.unpackb(body, raw=False, use_list=False)

    bench("  (alternative) msgpack.unpackb use_list=False", t_unpack_nolist, BATCH, r, n(300))

    def t_tuple_call(k: int) -> None:
        make = HeronTuple
        for _ in range(k):
            for v in batch:
                make(None, "spout", "default", 1, v, 0.0, None)

    heron_tuple = bench("HeronTuple(...) (namedtuple __new__)", t_tuple_call, BATCH, r, n(300))

    def t_tuple_new(k: int) -> None:
        new = tuple.__new__
        for _ in range(k):
            for v in batch:
                new(HeronTuple, (None, "spout", "default", 1, v, 0.0, None))

    bench("  (alternative) tuple.__new__(HeronTuple, (...))", t_tuple_new, BATCH, r, n(300))

    def t_tuple_map(k: int) -> None:
        from itertools import repeat

        new = tuple.__new__
        for _ in range(k):
            list(
                map(
                    new,
                    repeat(HeronTuple),
                    [(None, "spout", "default", 1, v, 0.0, None) for v in batch],
                )
            )

    bench("  (alternative) batch via map(tuple.__new__)", t_tuple_map, BATCH, r, n(300))

    def t_hash(k: int) -> None:
        for _ in range(k):
            for w in words:
                stable_hash(w)

    bench("stable_hash(word) (crc32 of utf-8)", t_hash, len(words), r, n(300))

    def t_hash_cached(k: int) -> None:
        cache = {w: stable_hash(w) % 1 for w in words}
        get = cache.get
        for _ in range(k):
            for w in words:
                get(w)

    bench("  (alternative) dict cache of word -> task", t_hash_cached, len(words), r, n(300))

    frame = encode_data(2, 1, "default", body)

    def t_encode(k: int) -> None:
        for _ in range(k):
            encode_data(2, 1, "default", body)

    bench("encode_data (1000-tuple frame)", t_encode, BATCH, r, n(3000))

    def t_decode(k: int) -> None:
        dec = FrameDecoder()
        chunk = frame * 8
        for _ in range(k):
            dec.feed(chunk)

    decode = bench(
        "FrameDecoder.feed (8 frames per read; stmgr + bolt)", t_decode, 8 * BATCH, r, n(300)
    )

    # ---- TaskHost in process ----
    print("-- TaskHost (in process: emit + grouping + batching + pack + frame)")

    def host_emit(reliable: bool, via_component: bool) -> Callable[[int], None]:
        host = make_host(reliable)
        spout = bench_mod.BenchSpout(delegate=host)
        host.component = spout
        emit = spout.emit if via_component else host.emit
        vals = batch

        def run(k: int) -> None:
            for _ in range(k):
                if reliable:
                    for i, v in enumerate(vals):
                        emit(v, tup_id=i)
                else:
                    for v in vals:
                        emit(v)
                host.flush()
                host.take_outbox()
                host.immediate_acks.clear()
                host.in_flight.clear()

        return run

    host_direct = bench(
        "TaskHost.emit (AMO), called directly", host_emit(False, False), BATCH, r, n(300)
    )
    host_via = bench("Spout.emit -> TaskHost.emit (AMO)", host_emit(False, True), BATCH, r, n(300))
    host_alo = bench(
        "Spout.emit(tup_id) -> TaskHost._emit_reliable (ALO)",
        host_emit(True, True),
        BATCH,
        r,
        n(300),
    )

    def spout_full(config: dict[str, Any]) -> Callable[[int], None]:
        host = make_host(config is config_alo)
        spout = bench_mod.BenchSpout(delegate=host)
        host.component = spout
        spout.initialize(config=config, context=_Context("spout", 1, config))
        nt = spout.next_tuple

        def run(k: int) -> None:
            for _ in range(k):
                for _ in range(BATCH):
                    nt()
                host.flush()
                host.take_outbox()
                host.immediate_acks.clear()
                host.in_flight.clear()

        return run

    spout_amo = bench(
        "BenchSpout.next_tuple + engine emit path (AMO)", spout_full(config_amo), BATCH, r, n(300)
    )
    spout_alo = bench(
        "BenchSpout.next_tuple + engine emit path (ALO)", spout_full(config_alo), BATCH, r, n(300)
    )

    def bolt_full(reliable: bool) -> Callable[[int], None]:
        host = make_host(reliable, "count", 2)
        bolt = bench_mod.CountBolt(delegate=host)
        host.component = bolt
        config = config_alo if reliable else config_amo
        bolt.initialize(config=config, context=_Context("count", 2, config))
        frames = [DataFrame(2, 1, "default", memoryview(body_alo if reliable else body), b"")]
        process = host.process_batch_reliable if reliable else host.process_batch

        def run(k: int) -> None:
            for _ in range(k):
                for f in frames:
                    process(f.src_task, f.stream, unpack_batch(f.body))
                host.flush()
                host.take_outbox()

        return run

    bolt_amo = bench(
        "unpack + process_batch + CountBolt.process (AMO)", bolt_full(False), BATCH, r, n(300)
    )
    bolt_alo = bench(
        "unpack + process_batch_reliable + process + ack (ALO)", bolt_full(True), BATCH, r, n(300)
    )

    # ---- at-least-once bookkeeping ----
    print("-- at-least-once bookkeeping (per tuple: one init + one update per tree)")
    rand = random.Random(1).getrandbits
    roots = [rand(64) for _ in range(BATCH)]
    edges = [rand(64) for _ in range(BATCH)]
    init = AckBatch(init=[x for pair in zip(roots, edges, strict=True) for x in pair])
    update = AckBatch(update=[x for pair in zip(roots, edges, strict=True) for x in pair])
    init_body, update_body = init.encode(), update.encode()

    def t_ack_codec(k: int) -> None:
        for _ in range(k):
            AckBatch.decode(AckBatch(init=init.init).encode())
            AckBatch.decode(AckBatch(update=update.update).encode())

    bench("AckBatch encode+decode (init + update)", t_ack_codec, BATCH, r, n(100))

    def t_ack_decode_only(k: int) -> None:
        for _ in range(k):
            msgpack.unpackb(init_body, raw=False)
            msgpack.unpackb(update_body, raw=False)

    bench("  of which msgpack.unpackb alone", t_ack_decode_only, BATCH, r, n(100))

    def t_ack_array(k: int) -> None:
        for _ in range(k):
            for flat in (init.init, update.update):
                raw = array("Q", flat).tobytes()
                array("Q").frombytes(raw)

    bench("  (alternative) array('Q') tobytes/frombytes", t_ack_array, BATCH, r, n(100))

    def t_tracker(k: int) -> None:
        for _ in range(k):
            tracker = XorTracker(30, 0.0)
            tracker.apply(1, init, 1.0)
            tracker.apply(1, update, 1.0)

    bench("XorTracker.apply (init + update -> acked)", t_tracker, BATCH, r, n(100))

    # ---- prototypes of the suggested changes (not in the package) ----
    print("-- prototypes of suggested changes (benchmarks only)")
    lean_emit = _lean_emit_prototype(make_host(False))

    def t_lean(k: int) -> None:
        for _ in range(k):
            for v in batch:
                lean_emit(v)

    lean = bench(
        "lean emit: memoized fields route, inline batch, no extra frames", t_lean, BATCH, r, n(300)
    )

    def t_spout_lean(k: int) -> None:
        host = make_host(False)
        spout = bench_mod.BenchSpout(delegate=host)
        spout.initialize(config=config_amo, context=_Context("spout", 1, config_amo))
        spout.emit = _lean_emit_prototype(host)  # installed on the component: no wrapper
        nt = spout.next_tuple
        for _ in range(k):
            for _ in range(BATCH):
                nt()

    spout_lean = bench(
        "BenchSpout.next_tuple + lean emit installed as spout.emit", t_spout_lean, BATCH, r, n(300)
    )

    def t_lean_batch(k: int) -> None:
        bolt = bench_mod.CountBolt(delegate=_Stub("count", 2))
        bolt.initialize(config=config_amo, context=_Context("count", 2, config_amo))
        process = bolt.process
        new = tuple.__new__
        for _ in range(k):
            tuples = unpack_batch(body)
            now = time.time()
            for values in tuples:
                process(new(HeronTuple, (None, "spout", "default", 1, values, now, None)))

    lean_bolt = bench(
        "lean process_batch: tuple.__new__ (+ unpack + CountBolt)", t_lean_batch, BATCH, r, n(300)
    )

    print("-- budget (ns per tuple, per process; target 1.5 M/s AMO = 667, 0.85 M/s ALO = 1176)")
    rows = [
        ("spout process, AMO (next_tuple+emit+pack+frame; no socket)", spout_amo, 667),
        ("  of which user code", spout_user, 667),
        ("  of which engine", spout_amo - spout_user, 667),
        ("bolt process, AMO (unpack+HeronTuple+process; no socket)", bolt_amo + decode, 667),
        ("  of which user code", bolt_user, 667),
        ("  of which engine", bolt_amo + decode - bolt_user, 667),
        ("spout process, ALO", spout_alo, 1176),
        ("bolt process, ALO", bolt_alo + decode, 1176),
        ("spout process, AMO with lean emit (prototype)", spout_lean, 667),
        ("bolt process, AMO with tuple.__new__ (prototype)", lean_bolt + decode, 667),
    ]
    for label, ns, budget in rows:
        print(f"{ns:9.1f} {budget:9d}  {label}")
    summary = {
        "emit_direct_ns": host_direct,
        "emit_via_component_ns": host_via,
        "emit_alo_ns": host_alo,
        "pack_ns": pack,
        "unpack_ns": unpack,
        "heron_tuple_ns": heron_tuple,
        "lean_emit_ns": lean,
    }
    if args.json:
        print(json.dumps({"results": RESULTS, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
