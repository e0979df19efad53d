"""What hostile connections cost, and what the handshake costs.

Issue 19 item 3's figure: the resident memory of a stream manager, a topology
master and a metrics manager before and while 1,000 hostile connections each
hold the largest partial frame the port accepts before the handshake, and
how many of them are refused at once. Then the handshake's cost on connection
set-up: the time from ``connect()`` to the stream manager's reply to a
registration (the physical plan), with authentication on and off, over
loopback, on the same running stream manager's code (in this process).

    python benchmarks/hostile.py [--connections 1000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from harness import Cli, processes

from heronpy_lite import config
from heronpy_lite.config import EngineConfig
from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.security import authenticate
from heronpy_lite.statemgr.base import TMASTERS
from heronpy_lite.statemgr.localfs import LocalFileStateManager
from heronpy_lite.stmgr.server import StreamManager
from heronpy_lite.tmaster.server import TopologyMaster
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.frames import FrameDecoder

MiB = 1024 * 1024


def rss(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / MiB


def hold(address: tuple[str, int], count: int, partial: int) -> tuple[list[socket.socket], int]:
    """``count`` connections that each send the first ``partial`` bytes of a frame
    and then nothing; (the ones still open after a moment, how many were refused)."""
    held = []
    for _ in range(count):
        sock = socket.create_connection(address, timeout=5)
        sock.sendall(struct.pack(">I", partial) + b"\x02" + b"x" * (partial - 2))
        held.append(sock)
    time.sleep(1.0)  # let the server read what they sent (and close what it refuses)
    alive, refused = [], 0
    for sock in held:
        sock.setblocking(False)
        try:
            closed = sock.recv(65536, socket.MSG_PEEK) == b""
        except BlockingIOError:
            closed = False
        except OSError:
            closed = True
        if closed:
            refused += 1
            sock.close()
        else:
            alive.append(sock)
    return alive, refused


def memory_figures(connections: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        cli = Cli(Path(home))
        props = {"heron.network.handshake.timeout.secs": 60}
        with cli.submitted("WordCount", "Hostile", props):
            status = cli.status("Hostile")
            procs = processes(status)
            stmgr = status["containers"][1]["stmgr"]
            tmaster = status["containers"][0]["tmaster"]
            port_file = Path(home) / "topologies" / "Hostile" / "metricsmgr-1.port"
            targets = {
                "stmgr": (procs["stmgr1"].pid, (stmgr["host"], stmgr["port"])),
                "tmaster": (procs["tmaster"].pid, (tmaster["host"], tmaster["port"])),
                "metricsmgr": (
                    next(p.pid for r, p in procs.items() if r.startswith("metrics1")),
                    ("127.0.0.1", int(port_file.read_text())),
                ),
            }
            limit = EngineConfig.from_config(
                config.resolve("local")
            ).unauthenticated_max_frame_bytes
            out: dict[str, Any] = {"connections": connections, "partial_frame_bytes": limit}
            for role, (pid, address) in targets.items():
                before = rss(pid)
                alive, refused = hold(address, connections, limit)
                during = rss(pid)
                for sock in alive:
                    sock.close()
                out[role] = {
                    "rss_before_mib": round(before, 1),
                    "rss_holding_mib": round(during, 1),
                    "added_kib_per_connection": round((during - before) * 1024 / connections, 1),
                    "held": len(alive),
                    "refused": refused,
                }
            return out


async def _setup_times(secret: bytes | None, rounds: int) -> list[float]:
    packing = pack_round_robin("T", [("spout", 1), ("bolt", 1)], 1)
    components = {
        "spout": {"par": 1, "spout": True, "inputs": []},
        "bolt": {"par": 1, "spout": False, "inputs": ["spout"]},
    }
    engine = EngineConfig.from_config(config.resolve("local"))
    with tempfile.TemporaryDirectory() as folder:
        statemgr = LocalFileStateManager(Path(folder))
        sock = socket.create_server(("127.0.0.1", 0))
        statemgr.set(TMASTERS, "T", {"host": "127.0.0.1", "port": sock.getsockname()[1]})
        tmaster = TopologyMaster(
            topology="T",
            engine=engine,
            packing=packing,
            statemgr=statemgr,
            execution={},
            secret=secret,
        )
        manager = StreamManager(
            topology="T",
            container=1,
            engine=engine,
            packing=packing,
            statemgr=statemgr,
            restarts=0,
            components=components,
            secret=secret,
        )
        tasks = [
            asyncio.ensure_future(tmaster.serve(sock)),
            asyncio.ensure_future(manager.serve(0, "")),
        ]
        while manager.core.plan is None:
            await asyncio.sleep(0.01)
        times = []
        for i in range(rounds):
            began = time.perf_counter()
            reader, writer = await asyncio.open_connection("127.0.0.1", manager.core.port)
            if secret is not None:
                await authenticate(reader, writer, secret, timeout=5)
            writer.write(m.encode(m.RegisterInstance("T", 1 + i % 2, "spout", 10 + i, 0)))
            decoder = FrameDecoder()
            while not decoder.feed(await reader.read(65536)):
                pass
            times.append(time.perf_counter() - began)
            writer.close()
            await writer.wait_closed()
            while any(i.link is not None for i in manager.core._instances.values()):
                await asyncio.sleep(0.001)  # the stream manager saw it go
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sock.close()
        return times


def handshake_figures(rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": rounds}
    for label, secret in (("off", None), ("on", b"s" * 32)):
        times = asyncio.run(_setup_times(secret, rounds))
        out[label] = {
            "median_ms": round(statistics.median(times) * 1000, 3),
            "p90_ms": round(statistics.quantiles(times, n=10)[-1] * 1000, 3),
        }
    out["added_ms"] = round(out["on"]["median_ms"] - out["off"]["median_ms"], 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.getLogger("heronpy_lite").setLevel(logging.ERROR)  # the in-process runners'
    result = {
        "hostile_connections": memory_figures(args.connections),
        "connection_setup": handshake_figures(args.rounds),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    hostile = result["hostile_connections"]
    print(
        f"{hostile['connections']} hostile connections, each holding a "
        f"{hostile['partial_frame_bytes']}-byte partial frame before the handshake:"
    )
    for role in ("stmgr", "tmaster", "metricsmgr"):
        r = hostile[role]
        print(
            f"  {role:<11} RSS {r['rss_before_mib']:6.1f} -> {r['rss_holding_mib']:6.1f} MiB "
            f"({r['added_kib_per_connection']:.1f} KiB per connection; "
            f"{r['held']} held, {r['refused']} refused)"
        )
    setup = result["connection_setup"]
    print(
        f"connection set-up to the plan, median of {setup['rounds']}: "
        f"{setup['off']['median_ms']:.3f} ms without authentication, "
        f"{setup['on']['median_ms']:.3f} ms with (+{setup['added_ms']:.3f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
