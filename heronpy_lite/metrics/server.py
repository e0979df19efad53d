"""The metrics manager process of one container.

It accepts `MetricsSnapshot` frames from the container's processes on a
loopback port (written to ``--port-file`` for the executor, which passes it
back as ``--port`` when it restarts this process, so the container's
reporters find it where it was), serves the
latest of each on one HTTP ``/metrics`` endpoint in Prometheus' text format
(prometheus-client, its own registry), and records its URL under
``metricsmgrs/<topology>/<container>`` so that ``status``, the tracker and
the file_sd targets file find it. Both sockets bind to
``heron.network.bind.host``.

It also keeps the last ``heron.metricsmgr.history.secs`` of snapshots
(`history.SnapshotHistory`) and serves ``/window?seconds=S`` as JSON: per
process, every series' latest value and its increase over the last S
seconds, between the producers' own timestamps, and the process's recent
exceptions. ``status`` and the tracker compute rates from it.

Every snapshot is checked as it arrives (`gate.SnapshotGate`: only this
container's processes, well-formed samples, bounded sizes); a bad one is
dropped with a log line (rate-limited) and counted in
``heron_metricsmgr_dropped_snapshots_total``, and the connection stays open.
A source silent for ``heron.metricsmgr.source.expiry.secs`` is forgotten.
A full disk (its port file, a local state node) is retried, never fatal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
import urllib.parse
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import AuthenticationFailed, RemoteProtocolError, StateManagerError
from heronpy_lite.metrics.gate import BadSnapshot, SnapshotGate, known_sources
from heronpy_lite.metrics.history import SnapshotHistory
from heronpy_lite.metrics.store import SnapshotStore
from heronpy_lite.network import advertised_host
from heronpy_lite.process import connection_handler, write_until_done
from heronpy_lite.security import check_bind, process_secret, server_options
from heronpy_lite.statemgr import StateManager
from heronpy_lite.statemgr.base import PACKING_PLANS
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.frames import ControlFrame, FrameDecoder
from heronpy_lite.wire.handshake import Handshake
from heronpy_lite.wire.plan import PackingPlan

log = logging.getLogger(__name__)

_MAX_REQUEST = 8192


class MetricsManager:
    def __init__(
        self,
        *,
        topology: str,
        container: int,
        engine: EngineConfig,
        statemgr: StateManager,
        packing: PackingPlan,
        secret: bytes | None = None,
    ) -> None:
        self.topology = topology
        self.secret = secret
        self.producers = 0
        self.refused_connections = 0
        self.container = container
        self.engine = engine
        self.statemgr = statemgr
        self.gate = SnapshotGate(
            known_sources(container, (t.task_id for t in packing.tasks_in(container))),
            expiry_secs=engine.metricsmgr_source_expiry_secs,
            max_series=engine.metricsmgr_max_series,
        )
        self.store = SnapshotStore(topology, container, self.gate.dropped)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.store)
        self.history = SnapshotHistory(engine.metricsmgr_history_secs, engine.metrics_interval_secs)

    async def serve(self, port_file: str, port: int = 0) -> None:
        host = self.engine.bind_host
        snapshots = await asyncio.start_server(
            connection_handler(self._on_producer),
            host,
            port,
            reuse_address=True,
            **server_options(self.engine),
        )
        http = await asyncio.start_server(
            connection_handler(self._on_http), host, self.engine.metricsmgr_port
        )
        snapshot_port = snapshots.sockets[0].getsockname()[1]
        http_port = http.sockets[0].getsockname()[1]
        published = advertised_host(
            host, self.engine.advertised_host, self.engine.statemgr_connection_string
        )
        url = f"http://{published}:{http_port}/metrics"
        location = {
            "host": published,
            "port": http_port,
            "url": url,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
        }
        log.info(
            "metrics manager of container %d: snapshots on %d, %s",
            self.container,
            snapshot_port,
            url,
        )
        async with snapshots, http, asyncio.TaskGroup() as tg:
            tg.create_task(self._record(location))
            if port_file:
                tg.create_task(write_until_done(port_file, str(snapshot_port), "the port file"))
            tg.create_task(self._expire_sources())
            tg.create_task(snapshots.serve_forever())
            tg.create_task(http.serve_forever())

    async def _record(self, location: dict[str, Any]) -> None:
        """``metricsmgrs/<topology>/<container>``, retried while the state manager
        cannot be written (ZooKeeper away, a full disk)."""
        failing = False
        while True:
            try:
                await asyncio.to_thread(
                    self.statemgr.set_metricsmgr, self.topology, self.container, location
                )
            except StateManagerError as exc:
                if not failing:
                    log.warning("cannot record this metrics manager, retrying: %s", exc)
                failing = True
                await asyncio.sleep(1.0)
                continue
            if failing:
                log.info("recorded this metrics manager")
            return

    async def _expire_sources(self) -> None:
        """Forget the sources that stopped reporting (their series are no longer served)."""
        expiry = self.engine.metricsmgr_source_expiry_secs
        while True:
            await asyncio.sleep(min(expiry / 4, 5.0))
            for source in self.gate.expired(time.time()):
                self.store.remove(source)
                self.history.remove(source)
                log.info("%s sent no metrics for %gs: forgotten", source, expiry)

    async def _on_producer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One producer's snapshots: after the handshake (with a secret), snapshots only;
        it must have authenticated and sent its first one within the handshake timeout."""
        engine = self.engine
        if self.producers >= engine.max_connections:
            self.refused_connections += 1
            if self.refused_connections <= 5 or self.refused_connections % 1000 == 0:
                log.warning("refusing a producer connection: %d open", self.producers)
            writer.close()
            return
        self.producers += 1
        decoder = FrameDecoder(engine.unauthenticated_max_frame_bytes)
        handshake = Handshake(self.secret, accepting=True) if self.secret else None
        if handshake is not None:
            writer.write(handshake.hello())
        deadline: float | None = asyncio.get_running_loop().time() + engine.handshake_timeout_secs
        try:
            while True:
                async with asyncio.timeout_at(deadline):
                    data = await reader.read(1 << 16)
                if not data:
                    return
                frames = decoder.feed(data)
                while True:
                    for frame in frames:
                        if not isinstance(frame, ControlFrame):
                            raise RemoteProtocolError("metrics manager accepts control frames only")
                        msg = m.decode(frame.payload)
                        if handshake is not None and not handshake.done:
                            if not isinstance(msg, (m.AuthHello, m.AuthProof)):
                                raise AuthenticationFailed(
                                    f"authentication failed: {msg.TYPE} before the handshake"
                                )
                            writer.writelines(handshake.receive(msg))
                            continue
                        if not isinstance(msg, m.MetricsSnapshot):
                            raise RemoteProtocolError(f"unexpected {msg.TYPE} message")
                        deadline = None
                        self._on_snapshot(msg, writer)
                    if handshake is None or handshake.done:
                        decoder.max_frame_bytes = engine.max_frame_bytes
                    if not decoder.held:
                        break
                    frames = decoder.feed(b"")
        except AuthenticationFailed as exc:
            log.warning("closing a producer connection: %s", exc)
        except RemoteProtocolError as exc:
            log.error("closing a producer connection: %s", exc)
        except TimeoutError:
            log.warning("closing a producer connection: it sent no snapshot in time")
        except ConnectionError:
            pass
        finally:
            self.producers -= 1
            writer.close()

    def _on_snapshot(self, msg: m.MetricsSnapshot, writer: asyncio.StreamWriter) -> None:
        try:
            snapshot = self.gate.check(msg, time.time())
        except BadSnapshot as exc:
            log.warning(
                "dropped a metrics snapshot from %s: %s (%d dropped so far)",
                writer.get_extra_info("peername"),
                exc,
                sum(self.gate.dropped.values()),
            )
            return
        self.store.update(snapshot.source, snapshot.samples)
        self.history.add(snapshot.source, snapshot.time, snapshot.samples, snapshot.exceptions)

    async def _on_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            if len(head) > _MAX_REQUEST:
                raise ValueError("request too large")
            method, target, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            path, _, query = target.partition("?")
            if method != "GET":
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path in ("/metrics", "/"):
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.registry)
            elif path == "/window":
                status, ctype, body = "200 OK", "application/json", self._window(query)
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"try /metrics\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (
            ValueError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ) as exc:
            log.debug("bad metrics request: %s", exc)
        finally:
            writer.close()

    def _window(self, query: str) -> bytes:
        """``/window?seconds=S`` (default 10): see `SnapshotHistory.window`."""
        params = urllib.parse.parse_qs(query)
        try:
            seconds = float(params.get("seconds", ["10"])[0])
        except ValueError:
            seconds = 10.0
        now = time.time()
        document = {
            "topology": self.topology,
            "container": self.container,
            "now": now,
            "interval": self.engine.metrics_interval_secs,
            "sources": self.history.window(now, max(0.0, seconds)),
        }
        return json.dumps(document, allow_nan=False).encode()


async def main_async(args: Any) -> int:
    from heronpy_lite.process import state_manager_from_args

    statemgr = await asyncio.to_thread(state_manager_from_args, args)
    try:
        record = await asyncio.to_thread(statemgr.get_topology, args.topology)
        packing = await asyncio.to_thread(statemgr.get, PACKING_PLANS, args.topology)
        engine = EngineConfig.from_config(record["config"])
        check_bind(engine)
        manager = MetricsManager(
            topology=args.topology,
            container=args.container,
            engine=engine,
            statemgr=statemgr,
            packing=PackingPlan.from_dict(
                packing or {"topology": args.topology, "tasks": [], "num_containers": 0}
            ),
            secret=process_secret(engine),
        )
        await manager.serve(args.port_file, args.port)
    except StateManagerError as exc:
        log.error("metrics manager cannot start: %s", exc)
        return 1
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(statemgr.close)
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--container", type=int, required=True)
    parser.add_argument("--port-file", default="")
    parser.add_argument("--port", type=int, default=0, help="snapshot port (0: any free one)")


def main(argv: list[str] | None = None) -> int:
    from heronpy_lite import process

    return process.start("heronpy_lite.metrics", main_async, argv, _arguments)


if __name__ == "__main__":
    sys.exit(main())
