"""The tmaster and stream manager runners in one event loop over loopback
(pytest-asyncio), driven by clients written here that speak the wire
protocol: the handshakes, tuples between instances, and peers that break the
rules, which are cut off while everything else goes on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import pytest_asyncio

from heronpy_lite import config
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import AuthenticationFailed
from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.security import authenticate
from heronpy_lite.statemgr.base import TMASTERS
from heronpy_lite.statemgr.localfs import LocalFileStateManager
from heronpy_lite.stmgr.server import StreamManager
from heronpy_lite.tmaster.server import TopologyMaster
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.frames import ControlFrame, DataFrame, FrameDecoder, encode_data

# spout (task 1) -> bolt (task 2), both in container 1
PACKING = pack_round_robin("T", [("spout", 1), ("bolt", 1)], 1)
COMPONENTS = {
    "spout": {"par": 1, "spout": True, "inputs": []},
    "bolt": {"par": 1, "spout": False, "inputs": ["spout"]},
}


class Client:
    """One connection to a runner, speaking frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder()
        self.frames: list[Any] = []

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))

    async def next_frame(self) -> Any:
        async with asyncio.timeout(10):
            while not self.frames:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed")
                self.frames += self.decoder.feed(data)
        return self.frames.pop(0)

    async def next_message(self) -> m.Message:
        frame = await self.next_frame()
        assert isinstance(frame, ControlFrame), frame
        return m.decode(frame.payload)

    async def closed_by_peer(self) -> bool:
        """Whether the runner closes this connection (reading whatever comes first)."""
        async with asyncio.timeout(10):
            while True:
                try:
                    data = await self.reader.read(65536)
                except ConnectionError:
                    return True
                if not data:
                    return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


SECRET = b"r" * 32


async def serving(
    tmp_path: Path, secret: bytes | None, **properties: Any
) -> tuple[StreamManager, TopologyMaster, list[asyncio.Future[Any]], socket.socket]:
    resolved = config.resolve(
        "local",
        None,
        {
            "heron.stmgr.heartbeat.interval.secs": 0.2,
            "heron.network.handshake.timeout.secs": 1.0,
            **properties,
        },
    )
    engine = EngineConfig.from_config(resolved)
    statemgr = LocalFileStateManager(tmp_path / "state")
    sock = socket.create_server(("127.0.0.1", 0))
    tmaster = TopologyMaster(
        topology="T",
        engine=engine,
        packing=PACKING,
        statemgr=statemgr,
        execution={},
        secret=secret,
    )
    statemgr.set(TMASTERS, "T", {"host": "127.0.0.1", "port": sock.getsockname()[1]})
    manager = StreamManager(
        topology="T",
        container=1,
        engine=engine,
        packing=PACKING,
        statemgr=statemgr,
        restarts=0,
        components=COMPONENTS,
        secret=secret,
    )
    tasks = [
        asyncio.ensure_future(tmaster.serve(sock)),
        asyncio.ensure_future(manager.serve(0, "")),
    ]
    async with asyncio.timeout(10):
        while not manager.core.port or manager.core.plan is None:
            await asyncio.sleep(0.01)  # a condition with a deadline: the plan arrived
    return manager, tmaster, tasks, sock


async def stop(tasks: list[asyncio.Future[Any]], sock: socket.socket) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    sock.close()


@pytest_asyncio.fixture
async def stmgr(tmp_path: Path) -> AsyncIterator[StreamManager]:
    """A tmaster and the stream manager of container 1, serving on free ports
    (authentication off: everything on loopback)."""
    manager, _, tasks, sock = await serving(tmp_path, None)
    yield manager
    await stop(tasks, sock)


@pytest_asyncio.fixture
async def secured(tmp_path: Path) -> AsyncIterator[tuple[StreamManager, TopologyMaster]]:
    """The same with the topology's secret: every link authenticates."""
    manager, tmaster, tasks, sock = await serving(tmp_path, SECRET)
    yield manager, tmaster
    await stop(tasks, sock)


async def instance(port: int, task: int, component: str) -> Client:
    client = await Client.connect(port)
    client.send(m.encode(m.RegisterInstance("T", task, component, 1000 + task, 0)))
    plan = await client.next_message()
    assert isinstance(plan, m.PhysicalPlanUpdate)
    return client


@pytest.mark.asyncio
async def test_instances_register_get_the_plan_and_exchange_tuples(stmgr: StreamManager) -> None:
    spout = await instance(stmgr.core.port, 1, "spout")
    bolt = await instance(stmgr.core.port, 2, "bolt")
    body = msgpack.packb([["hello", 1], ["world", 2]])
    spout.send(encode_data(2, 1, "default", body, tuples=2))
    frame = await bolt.next_frame()
    assert isinstance(frame, DataFrame)
    assert (frame.src_task, frame.dst_task, bytes(frame.body)) == (1, 2, body)
    assert stmgr.outlets["task 2"].statistics().written_tuples == 2
    await spout.close()
    await bolt.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "hostile",
    [
        encode_data(2, 1, "default", b"\x90"),  # data before saying who it is
        b"\x00\x00\x00\x05\x07abcd",  # an unknown frame kind
        b"\xff\xff\xff\xff",  # a length past the frame limit
        m.encode(m.Heartbeat(1)),  # a message no stream manager takes from anyone
    ],
    ids=["unregistered-data", "unknown-kind", "huge-length", "wrong-message"],
)
async def test_a_client_that_breaks_the_protocol_is_cut_off_and_nothing_else_is_disturbed(
    stmgr: StreamManager, hostile: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    spout = await instance(stmgr.core.port, 1, "spout")
    bolt = await instance(stmgr.core.port, 2, "bolt")
    attacker = await Client.connect(stmgr.core.port)
    with caplog.at_level(logging.INFO, logger="heronpy_lite.stmgr"):
        attacker.send(hostile)
        assert await attacker.closed_by_peer()
    assert any("closing" in r.getMessage() for r in caplog.records)
    spout.send(encode_data(2, 1, "default", msgpack.packb([["still", 1]]), tuples=1))
    frame = await bolt.next_frame()
    assert msgpack.unpackb(frame.body) == [["still", 1]]
    for client in (spout, bolt, attacker):
        await client.close()


@pytest.mark.asyncio
async def test_an_instance_that_sends_as_another_task_is_cut_off(stmgr: StreamManager) -> None:
    bolt = await instance(stmgr.core.port, 2, "bolt")
    impostor = await instance(stmgr.core.port, 1, "spout")
    impostor.send(encode_data(2, 7, "default", b"\x90"))  # claims to be task 7
    assert await impostor.closed_by_peer()
    assert stmgr.core.protocol_errors == 1
    honest = await instance(stmgr.core.port, 1, "spout")  # it may connect again
    honest.send(encode_data(2, 1, "default", msgpack.packb([["ok"]]), tuples=1))
    assert msgpack.unpackb((await bolt.next_frame()).body) == [["ok"]]
    for client in (bolt, impostor, honest):
        await client.close()


@pytest.mark.asyncio
async def test_a_connection_that_never_says_who_it_is_is_closed(stmgr: StreamManager) -> None:
    silent = await Client.connect(stmgr.core.port)  # heron.network.handshake.timeout.secs: 1
    assert await silent.closed_by_peer()
    await silent.close()


@pytest.mark.asyncio
async def test_a_registration_for_another_container_s_task_is_rejected(
    stmgr: StreamManager,
) -> None:
    stranger = await Client.connect(stmgr.core.port)
    stranger.send(m.encode(m.RegisterInstance("T", 9, "bolt", 1, 0)))
    rejected = await stranger.next_message()
    assert isinstance(rejected, m.Rejected) and "task 9" in rejected.reason
    assert await stranger.closed_by_peer()
    await stranger.close()


@pytest.mark.asyncio
async def test_the_tmaster_hears_the_stream_manager_s_heartbeats_and_statuses(
    stmgr: StreamManager,
) -> None:
    bolt = await instance(stmgr.core.port, 2, "bolt")
    bolt.send(m.encode(m.InstanceStatus(2, "bolt", "running", 1002, 0)))
    tmaster_location = stmgr.statemgr.get(TMASTERS, "T")
    assert tmaster_location is not None
    cli = await Client.connect(tmaster_location["port"])
    async with asyncio.timeout(10):
        while True:  # a condition with a deadline: the status reached the tmaster
            cli.send(m.encode(m.ControlRequest("status")))
            response = await cli.next_message()
            assert isinstance(response, m.ControlResponse)
            instances = dict(response.data["plan"]["instances"])
            if instances.get(2, {}).get("state") == "running":
                break
            await asyncio.sleep(0.05)
    for client in (bolt, cli):
        await client.close()


# ------------------------------------------- authentication and hostile clients


async def authenticated(port: int, secret: bytes = SECRET) -> Client:
    client = await Client.connect(port)
    try:
        await authenticate(client.reader, client.writer, secret, timeout=5)
    except BaseException:
        await client.close()
        raise
    return client


async def secured_instance(port: int, task: int, component: str) -> Client:
    client = await authenticated(port)
    client.send(m.encode(m.RegisterInstance("T", task, component, 1000 + task, 0)))
    plan = await client.next_message()
    assert isinstance(plan, m.PhysicalPlanUpdate)
    return client


def tmaster_port(manager: StreamManager) -> int:
    location = manager.statemgr.get(TMASTERS, "T")
    assert location is not None
    return int(location["port"])


@pytest.mark.asyncio
async def test_with_a_secret_every_link_authenticates_and_strangers_are_refused(
    secured: tuple[StreamManager, TopologyMaster], caplog: pytest.LogCaptureFixture
) -> None:
    manager, _ = secured
    assert manager.core.tmaster is not None  # the stream manager authenticated to the tmaster
    spout = await secured_instance(manager.core.port, 1, "spout")
    bolt = await secured_instance(manager.core.port, 2, "bolt")
    for port in (manager.core.port, tmaster_port(manager)):
        # no handshake: the hello comes, then the connection closes at the first frame
        stranger = await Client.connect(port)
        assert isinstance(await stranger.next_message(), m.AuthHello)
        stranger.send(m.encode(m.RegisterInstance("T", 2, "bolt", 1, 0)))
        assert await stranger.closed_by_peer()
        await stranger.close()
        # the wrong secret
        with (
            caplog.at_level(logging.WARNING),
            pytest.raises((AuthenticationFailed, ConnectionError)),
        ):
            await authenticated(port, b"w" * 32)
        assert any("authentication failed" in r.getMessage() for r in caplog.records)
    # the CLI's control path authenticates too
    cli = await authenticated(tmaster_port(manager))
    cli.send(m.encode(m.ControlRequest("status")))
    assert isinstance(await cli.next_message(), m.ControlResponse)
    # nothing else was disturbed
    spout.send(encode_data(2, 1, "default", msgpack.packb([["after", 1]]), tuples=1))
    assert msgpack.unpackb((await bolt.next_frame()).body) == [["after", 1]]
    assert manager.core.failed_handshakes == 1
    for client in (spout, bolt, cli):
        await client.close()


@pytest.mark.asyncio
async def test_before_the_handshake_a_connection_may_buffer_a_small_frame_only(
    secured: tuple[StreamManager, TopologyMaster],
) -> None:
    manager, _ = secured
    for port in (manager.core.port, tmaster_port(manager)):
        greedy = await Client.connect(port)
        await greedy.next_message()  # the hello
        greedy.send(struct.pack(">I", 1 << 20) + b"\x02")  # a 1 MiB frame begins
        assert await greedy.closed_by_peer()  # refused from its length alone
        await greedy.close()


@pytest.mark.asyncio
async def test_a_silent_connection_is_closed_on_every_port(
    secured: tuple[StreamManager, TopologyMaster],
) -> None:
    manager, _ = secured
    for port in (manager.core.port, tmaster_port(manager)):
        silent = await Client.connect(port)  # heron.network.handshake.timeout.secs: 1
        assert await silent.closed_by_peer()
        await silent.close()


@pytest.mark.asyncio
async def test_connections_beyond_the_limit_are_closed_on_every_port(tmp_path: Path) -> None:
    manager, tmaster, tasks, sock = await serving(
        tmp_path, None, **{"heron.network.max.connections": 4}
    )
    try:
        port = tmaster_port(manager)
        # the tmaster holds one stream manager; the stream manager nothing yet
        held = [await Client.connect(port) for _ in range(3)]
        extra = await Client.connect(port)
        assert await extra.closed_by_peer()
        await extra.close()
        held += [await Client.connect(manager.core.port) for _ in range(4)]
        extra = await Client.connect(manager.core.port)
        assert await extra.closed_by_peer()
        await extra.close()
        assert manager.core.refused_connections == 1 and tmaster.refused_connections == 1
        for client in held:
            await client.close()
        # a place freed is a place taken
        spout = await instance(manager.core.port, 1, "spout")
        await spout.close()
    finally:
        await stop(tasks, sock)


@pytest.mark.asyncio
async def test_nobody_takes_over_a_live_container_or_task(stmgr: StreamManager) -> None:
    """Issue 19's plan hijack, without a secret: the tmaster keeps the live stream
    manager in the plan, the stream manager keeps the live instance's link."""
    bolt = await instance(stmgr.core.port, 2, "bolt")
    spout = await instance(stmgr.core.port, 1, "spout")
    port = tmaster_port(stmgr)
    hijacker = await Client.connect(port)
    hijacker.send(m.encode(m.RegisterStmgr("T", 1, "127.0.0.1", 1, 4242, 0, [1, 2])))
    rejected = await hijacker.next_message()
    assert isinstance(rejected, m.Rejected) and "live stream manager" in rejected.reason
    assert await hijacker.closed_by_peer()
    thief = await Client.connect(stmgr.core.port)
    thief.send(m.encode(m.RegisterInstance("T", 2, "bolt", 4243, 0)))
    rejected = await thief.next_message()
    assert isinstance(rejected, m.Rejected) and "connected already" in rejected.reason
    assert await thief.closed_by_peer()
    # the plan still names the real stream manager, and tuples still reach the bolt
    cli = await Client.connect(port)
    cli.send(m.encode(m.ControlRequest("status")))
    response = await cli.next_message()
    assert isinstance(response, m.ControlResponse)
    (location,) = response.data["plan"]["stmgrs"]
    assert location[1:3] == ["127.0.0.1", stmgr.core.port]
    spout.send(encode_data(2, 1, "default", msgpack.packb([["mine"]]), tuples=1))
    assert msgpack.unpackb((await bolt.next_frame()).body) == [["mine"]]
    for client in (bolt, spout, hijacker, thief, cli):
        await client.close()
