"""Outlets over a real loopback connection (pytest-asyncio): the hard limit's
rule for data and for control, queueing while disconnected, statistics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from heronpy_lite.process import tune_socket
from heronpy_lite.stmgr.outlet import CONTROL_RESERVE, Outlet, OutletStatistics

CHUNK = b"x" * 65536


@dataclass
class Pair:
    writer: asyncio.StreamWriter
    reader: asyncio.StreamReader  # the destination's end: reads only when the test says


@pytest_asyncio.fixture
async def pair() -> AsyncIterator[Pair]:
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tune_socket(writer, 65536)
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    tune_socket(writer, 65536)
    reader, far_writer = await asyncio.wait_for(accepted.get(), 5)
    yield Pair(writer, reader)
    for w in (writer, far_writer):
        w.close()
    for w in (writer, far_writer):
        with contextlib.suppress(ConnectionError):
            await w.wait_closed()
    server.close()
    await server.wait_closed()


async def fill(outlet: Outlet) -> int:
    """Offer data until the outlet refuses; the number of frames it took."""
    taken = 0
    async with asyncio.timeout(10):
        while outlet.offer(CHUNK, tuples=1):
            taken += 1
            await asyncio.sleep(0)  # let the transport hand what it can to the kernel
    return taken


async def read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    async with asyncio.timeout(10):
        return await reader.readexactly(n)


@pytest.mark.asyncio
async def test_data_is_refused_above_the_hard_limit_until_the_destination_reads(
    pair: Pair,
) -> None:
    outlet = Outlet("task 2", high=128 * 1024, low=64 * 1024, hard=256 * 1024)
    outlet.attach(pair.writer)
    taken = await fill(outlet)
    assert outlet.buffered > outlet.hard and not outlet.has_room()
    assert not outlet.offer(b"refused")  # and stays refused
    waiting = asyncio.ensure_future(outlet.wait_for_room())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # nobody read yet
    await read_exactly(pair.reader, taken * len(CHUNK))
    async with asyncio.timeout(10):
        await waiting
    assert outlet.offer(b"now")
    stats = outlet.statistics()
    assert isinstance(stats, OutletStatistics)
    assert (stats.written_frames, stats.written_tuples) == (taken + 1, taken)
    assert stats.connected and stats.hard_bytes == 256 * 1024


@pytest.mark.asyncio
async def test_control_passes_the_hard_limit_up_to_its_reserve(pair: Pair) -> None:
    outlet = Outlet("task 2", high=64 * 1024, low=32 * 1024, hard=64 * 1024)
    outlet.attach(pair.writer)
    await fill(outlet)
    assert outlet.send_control(b"c" * 1000)  # a full destination still gets control
    sent = 0
    async with asyncio.timeout(10):
        while outlet.send_control(CHUNK):
            sent += 1
            await asyncio.sleep(0)
    assert outlet.buffered > outlet.hard + CONTROL_RESERVE - len(CHUNK)
    assert sent >= CONTROL_RESERVE // len(CHUNK) - 2
    assert outlet.statistics().refused_controls == 1


@pytest.mark.asyncio
async def test_while_disconnected_data_queues_in_order_and_control_is_dropped(
    pair: Pair,
) -> None:
    outlet = Outlet("task 2", high=1000, low=500, hard=3000)
    assert outlet.offer(b"one")
    assert outlet.send_control(b"dropped")  # a destination that connects is sent fresh state
    assert outlet.offer(b"two")
    assert not outlet.statistics().connected and outlet.buffered == 6
    big = b"z" * 3000
    assert outlet.offer(big)  # the frame that crosses the mark is taken...
    assert not outlet.offer(b"three")  # ...the next one waits
    outlet.attach(pair.writer)
    assert await read_exactly(pair.reader, 6 + len(big)) == b"onetwo" + big
    assert outlet.offer(b"three")
    assert await read_exactly(pair.reader, 5) == b"three"


@pytest.mark.asyncio
async def test_relief_waits_for_the_low_watermark(pair: Pair) -> None:
    outlet = Outlet("task 2", high=128 * 1024, low=16 * 1024, hard=1 << 20)
    outlet.attach(pair.writer)
    for _ in range(16):
        outlet.offer(CHUNK)
    relieved = asyncio.ensure_future(outlet.wait_relieved())
    await asyncio.sleep(0.05)
    assert not relieved.done()
    await read_exactly(pair.reader, 16 * len(CHUNK))
    async with asyncio.timeout(10):
        await relieved
    assert outlet.buffered <= outlet.low
