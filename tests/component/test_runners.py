"""The tmaster and stream manager runners in one event loop over loopback
(pytest-asyncio), driven by clients written here that speak the wire
protocol: the handshakes, tuples between instances, and peers that break the
rules, which are cut off while everything else goes on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import pytest_asyncio

from heronpy_lite import config
from heronpy_lite.config import EngineConfig
from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.statemgr.base import TMASTERS
from heronpy_lite.statemgr.localfs import LocalFileStateManager
from heronpy_lite.stmgr import server as stmgr_server
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


@pytest_asyncio.fixture
async def stmgr(tmp_path: Path) -> AsyncIterator[StreamManager]:
    """A tmaster and the stream manager of container 1, serving on free ports."""
    resolved = config.resolve("local", None, {"heron.stmgr.heartbeat.interval.secs": 0.2})
    engine = EngineConfig.from_config(resolved)
    statemgr = LocalFileStateManager(tmp_path / "state")
    sock = socket.create_server(("127.0.0.1", 0))
    tmaster = TopologyMaster(
        topology="T", engine=engine, packing=PACKING, statemgr=statemgr, execution={}
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
    )
    tasks = [
        asyncio.ensure_future(tmaster.serve(sock)),
        asyncio.ensure_future(manager.serve(0, "")),
    ]
    async with asyncio.timeout(10):
        while not manager.core.port or manager.core.plan is None:
            await asyncio.sleep(0.01)  # a condition with a deadline: the plan arrived
    yield manager
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    sock.close()


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
async def test_a_connection_that_never_says_who_it_is_is_closed(
    stmgr: StreamManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stmgr_server, "IDENTIFY_TIMEOUT_SECS", 0.2)
    silent = await Client.connect(stmgr.core.port)
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
