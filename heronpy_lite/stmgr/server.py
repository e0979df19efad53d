"""The stream manager process of one container: the asyncio runner of
`StreamManagerCore` (core.py), which decides everything.

It listens on one port for its local instances and for peer stream managers,
connects to the tmaster (found through the state manager) and to every peer
the physical plan names (one outbound connection each: a peer's inbound
connection only carries what it sends us). Each connection's frames are fed
to the core in order; the runner does what the core answers: writes through
the outlets (a data write above an outlet's hard limit waits, so the reader
that produced it stops reading), pauses and resumes reading, connects,
closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from heronpy_lite.api.api_constants import (
    TOPOLOGY_BACKPRESSURE_STRATEGY,
    TOPOLOGY_RELIABILITY_MODE,
)
from heronpy_lite.config import EngineConfig, message_timeout
from heronpy_lite.errors import RemoteProtocolError, StateManagerError
from heronpy_lite.network import advertised_host, connect_host
from heronpy_lite.process import (
    MetricsReporter,
    connection_handler,
    relax_gc,
    tune_socket,
    write_until_done,
)
from heronpy_lite.security import check_bind, client_tls, process_secret, server_options
from heronpy_lite.statemgr import StateManager
from heronpy_lite.statemgr.base import PACKING_PLANS, TMASTERS
from heronpy_lite.stmgr.backpressure import Strategy
from heronpy_lite.stmgr.core import (
    Action,
    Attach,
    Close,
    ConnectPeer,
    Detach,
    Forward,
    Link,
    Pause,
    Purge,
    Reply,
    Resume,
    Role,
    Send,
    StreamManagerCore,
    WatchRelief,
)
from heronpy_lite.stmgr.outlet import Outlet
from heronpy_lite.wire.frames import FrameDecoder
from heronpy_lite.wire.plan import PackingPlan

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024
#: roles of a link that has not yet authenticated and said who it is: it must
#: within heron.network.handshake.timeout.secs of its start
_UNIDENTIFIED = frozenset({Role.UNAUTHENTICATED, Role.AUTHENTICATING, Role.PENDING})


@dataclass(eq=False, slots=True)
class _Connection:
    """A link's I/O: its writer, the outlet of what goes to it alone, its read gate."""

    writer: asyncio.StreamWriter
    outlet: Outlet
    readable: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False


class StreamManager:
    def __init__(
        self,
        *,
        topology: str,
        container: int,
        engine: EngineConfig,
        packing: PackingPlan,
        statemgr: StateManager,
        restarts: int,
        message_timeout_secs: float | None = None,
        strategy: Strategy = Strategy.SPOUT,
        components: dict[str, Any] | None = None,
        metrics_port: int = 0,
        stateful: bool = False,
        secret: bytes | None = None,
    ) -> None:
        self.topology = topology
        self.engine = engine
        self.statemgr = statemgr
        self.metrics_port = metrics_port
        self.core = StreamManagerCore(
            topology=topology,
            container=container,
            packing=packing,
            components=components or {},
            strategy=strategy,
            message_timeout_secs=message_timeout_secs,
            heartbeat_interval_secs=engine.heartbeat_interval_secs,
            host=advertised_host(
                engine.bind_host, engine.advertised_host, engine.statemgr_connection_string
            ),
            pid=os.getpid(),
            restarts=restarts,
            now=time.monotonic(),
            stateful=stateful,
            alignment_buffer_bytes=engine.alignment_buffer_bytes,
            secret=secret,
            max_connections=engine.max_connections,
            max_frame_bytes=engine.max_frame_bytes,
            unauthenticated_max_frame_bytes=engine.unauthenticated_max_frame_bytes,
        )
        self._client_tls = client_tls(engine)
        self._high, self._low = engine.stmgr_buffer_high_bytes, engine.stmgr_buffer_low_bytes
        # tcp: readers block as soon as an outlet is congested; otherwise the strategy acts
        # at the high watermark and blocking readers is the backstop at the hard limit
        self._hard = self._high if strategy == Strategy.TCP else engine.stmgr_buffer_hard_bytes
        self.outlets = {
            name: Outlet(name, self._high, self._low, self._hard) for name in self.core.outlets()
        }
        self._local = {name for name, local in self.core.outlets().items() if local}
        self._connections: dict[Link, _Connection] = {}
        self._peer_tasks: dict[int, asyncio.Task[None]] = {}
        self._tg: asyncio.TaskGroup | None = None

    # -- lifecycle --

    async def serve(self, port: int, port_file: str) -> None:
        server = await asyncio.start_server(
            connection_handler(self._on_connection),
            self.engine.bind_host,
            port,
            reuse_address=True,
            **server_options(self.engine),
        )
        self.core.port = server.sockets[0].getsockname()[1]
        log.info(
            "stmgr of container %d listening on %s:%d",
            self.core.container,
            self.engine.bind_host,
            self.core.port,
        )
        relax_gc()
        async with server, asyncio.TaskGroup() as tg:
            self._tg = tg
            if port_file:  # retried while it cannot be written (a full disk)
                tg.create_task(write_until_done(port_file, str(self.core.port), "the port file"))
            tg.create_task(self._tmaster_loop())
            tg.create_task(self._ticker())
            if self.metrics_port:
                reporter = MetricsReporter(
                    connect_host(self.engine.bind_host),
                    self.metrics_port,
                    "stmgr",
                    self._collect_metrics,
                    self.engine.metrics_interval_secs,
                    secret=self.core.secret,
                    tls=self._client_tls,
                    handshake_timeout=self.engine.handshake_timeout_secs,
                )
                tg.create_task(reporter.run())
            await server.serve_forever()

    def _collect_metrics(self) -> list[Any]:
        stats = [outlet.statistics() for outlet in self.outlets.values()]
        return self.core.collect_metrics(stats, time.monotonic())

    # -- connections --

    def _open(self, link: Link, writer: asyncio.StreamWriter) -> _Connection:
        tune_socket(writer, self.engine.socket_buffer_bytes)
        outlet = Outlet(f"link {link.id}", self._high, self._low, self._hard)
        outlet.attach(writer)
        connection = _Connection(writer, outlet)
        connection.readable.set()
        self._connections[link] = connection
        return connection

    async def _close(self, link: Link) -> None:
        """The link ended: tell the core, then forget its connection."""
        await self._perform(self.core.closed(link, time.monotonic()))
        connection = self._connections.pop(link, None)
        if connection is not None:
            connection.writer.close()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        link = self.core.accepted()
        self._open(link, writer)
        try:
            await self._perform(self.core.greeting(link))
            await self._pump(link, reader)
        except RemoteProtocolError as exc:
            log.error("closing connection from %s: protocol error: %s", peer, exc)
        except TimeoutError:
            log.warning("connection from %s closed: it did not say who it is in time", peer)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("connection from %s closed: %s", peer, exc)
        finally:
            await self._close(link)

    async def _pump(self, link: Link, reader: asyncio.StreamReader) -> None:
        """Feed every frame from one connection to the core until it closes."""
        connection = self._connections.get(link)
        if connection is None:
            return
        core = self.core
        decoder = FrameDecoder(core.frame_limit(link))
        received = core.received
        readable = connection.readable
        monotonic = time.monotonic
        deadline = asyncio.get_running_loop().time() + self.engine.handshake_timeout_secs
        while not connection.closed:
            if not readable.is_set():
                await readable.wait()
            if link.role in _UNIDENTIFIED:
                async with asyncio.timeout_at(deadline):
                    data = await reader.read(READ_CHUNK)
            else:
                data = await reader.read(READ_CHUNK)
            if not data:
                return
            frames = decoder.feed(data)
            while True:
                actions = received(link, frames, monotonic())
                if actions:
                    await self._perform(actions)
                decoder.max_frame_bytes = core.frame_limit(link)
                if not decoder.held or connection.closed:
                    break
                frames = decoder.feed(b"")  # a frame the link may send now it said who it is

    # -- doing what the core says --

    async def _perform(self, actions: list[Action]) -> None:
        """Do ``actions`` in order. A data frame its outlet refuses (above the hard
        limit) waits for room, and so do the frames after it for that outlet."""
        waiting: list[Forward] = []
        full: set[str] = set()
        for action in actions:
            if type(action) is Forward:
                if action.outlet in full or not self._offer(action):
                    waiting.append(action)
                    full.add(action.outlet)
            else:
                self._do(action)
        for action in waiting:
            outlet = self.outlets[action.outlet]
            while not self._offer(action):
                await outlet.wait_for_room()

    def _offer(self, action: Forward) -> bool:
        outlet = self.outlets[action.outlet]
        if not outlet.offer(action.frame, action.tuples):
            return False
        if outlet.buffered > outlet.high and action.outlet in self._local:
            for follow in self.core.congested(action.outlet, time.monotonic()):
                self._do(follow)
        return True

    def _do(self, action: Action) -> None:
        """Every action but Forward; none of them waits."""
        if type(action) is Send:
            outlet = self.outlets[action.outlet]
            if not outlet.send_control(action.frame) and outlet.writer is not None:
                log.error("%s is not reading; closing its connection", action.outlet)
                outlet.writer.close()
        elif type(action) is Reply:
            connection = self._connections.get(action.link)
            if connection is not None and not connection.outlet.send_control(action.frame):
                log.error("%r is not reading; closing it", action.link)
                self._do(Close(action.link, "not reading"))
        elif type(action) is Attach:
            connection = self._connections.get(action.link)
            if connection is not None:
                self.outlets[action.outlet].attach(connection.writer)
        elif type(action) is Detach:
            connection = self._connections.get(action.link)
            if connection is not None:
                self.outlets[action.outlet].detach(connection.writer)
        elif type(action) is Pause:
            connection = self._connections.get(action.link)
            if connection is not None:
                connection.readable.clear()
        elif type(action) is Resume:
            connection = self._connections.get(action.link)
            if connection is not None:
                connection.readable.set()
        elif type(action) is WatchRelief:
            assert self._tg is not None
            self._tg.create_task(self._watch_relief(action.outlet))
        elif type(action) is ConnectPeer:
            self._connect_peer(action)
        elif type(action) is Purge:
            self.outlets[action.outlet].purge()
        elif type(action) is Close:
            connection = self._connections.get(action.link)
            if connection is not None and not connection.closed:
                if action.reason.startswith("protocol"):
                    level = logging.ERROR
                elif action.reason.startswith(("authentication", "too many")):
                    level = logging.WARNING
                else:
                    level = logging.INFO
                log.log(level, "closing %r: %s", action.link, action.reason)
                connection.closed = True
                connection.readable.set()  # a paused reader must see it
                if action.abort:
                    connection.writer.transport.abort()
                else:
                    connection.writer.close()

    async def _watch_relief(self, outlet: str) -> None:
        await self.outlets[outlet].wait_relieved()
        await self._perform(self.core.relieved(outlet, time.monotonic()))

    async def _ticker(self) -> None:
        """Heartbeats and tree timeouts, when the core says they are due."""
        while True:
            now = time.monotonic()
            await asyncio.sleep(min(max(self.core.next_tick() - now, 0.01), 1.0))
            await self._perform(self.core.tick(time.monotonic()))

    # -- the tmaster --

    async def _tmaster_loop(self) -> None:
        interval = self.engine.reconnect_interval_secs
        while True:
            try:
                location = await asyncio.to_thread(self.statemgr.get, TMASTERS, self.topology)
            except StateManagerError as exc:
                # ZooKeeper down: the data path goes on; look the tmaster up again later
                log.warning("cannot look up the tmaster: %s", exc)
                await asyncio.sleep(interval)
                continue
            if location is None:
                await asyncio.sleep(interval)
                continue
            try:
                reader, writer = await asyncio.open_connection(
                    location["host"], location["port"], ssl=self._client_tls
                )
            except OSError:
                await asyncio.sleep(interval)
                continue
            log.info("connected to tmaster at %s:%s", location["host"], location["port"])
            link, actions = self.core.tmaster_connected()
            self._open(link, writer)
            await self._perform(actions)
            try:
                await self._pump(link, reader)
            except (ConnectionError, RemoteProtocolError) as exc:
                log.warning("tmaster connection lost: %s", exc)
            finally:
                await self._close(link)
            log.warning("tmaster connection closed; looking it up again")
            await asyncio.sleep(interval)

    # -- peers --

    def _connect_peer(self, action: ConnectPeer) -> None:
        current = self._peer_tasks.pop(action.container, None)
        if current is not None:
            current.cancel()
        assert self._tg is not None
        self._peer_tasks[action.container] = self._tg.create_task(
            self._peer_loop(action.container, (action.host, action.port))
        )

    async def _peer_loop(self, container: int, address: tuple[str, int]) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(*address, ssl=self._client_tls)
            except OSError:
                await asyncio.sleep(self.engine.reconnect_interval_secs)
                continue
            link, actions = self.core.peer_connected(container)
            self._open(link, writer)
            await self._perform(actions)
            log.info("connected to peer stmgr %d at %s:%d", container, *address)
            try:
                await self._pump(link, reader)  # peers never send on our connection
            except (ConnectionError, RemoteProtocolError) as exc:
                log.warning("peer stmgr %d: %s", container, exc)
            finally:
                await self._close(link)
            log.warning("peer stmgr %d connection lost; reconnecting", container)
            await asyncio.sleep(self.engine.reconnect_interval_secs)


async def main_async(args: Any) -> int:
    from heronpy_lite.process import state_manager_from_args

    statemgr = state_manager_from_args(args)
    record = await asyncio.to_thread(statemgr.get_topology, args.topology)
    engine = EngineConfig.from_config(record["config"])
    check_bind(engine)
    packing_raw = await asyncio.to_thread(statemgr.get, PACKING_PLANS, args.topology)
    if packing_raw is None:
        log.error("no packing plan for %s", args.topology)
        return 1
    stmgr = StreamManager(
        topology=args.topology,
        container=args.container,
        engine=engine,
        packing=PackingPlan.from_dict(packing_raw),
        statemgr=statemgr,
        restarts=args.restarts,
        message_timeout_secs=message_timeout(record["config"]),
        strategy=Strategy(record["config"].get(TOPOLOGY_BACKPRESSURE_STRATEGY, "spout")),
        components=record.get("components", {}),
        metrics_port=args.metrics_port,
        stateful=record["config"].get(TOPOLOGY_RELIABILITY_MODE) == "EFFECTIVELY_ONCE",
        secret=process_secret(engine),
    )
    try:
        await stmgr.serve(args.port, args.port_file)
    finally:
        with contextlib.suppress(Exception):
            statemgr.close()
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--container", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", default="")
    parser.add_argument("--restarts", type=int, default=0)


def main(argv: list[str] | None = None) -> int:
    from heronpy_lite import process

    return process.start("heronpy_lite.stmgr", main_async, argv, _arguments)


if __name__ == "__main__":
    sys.exit(main())
