"""An outlet: the bounded way out of the stream manager to one destination.

Theory of operation
-------------------
There is one outlet per local instance and one per peer stream manager.
While the destination is connected, frames go straight to its transport,
whose write buffer is limited by (high, low) watermarks. While it is not
(an instance restarting, a peer not yet up), frames wait in a bounded queue
and are written in order when it attaches. ``has_room`` tells a reader
whether it may keep reading; when it may not, the reader awaits
``wait_for_room`` and so stops reading its socket: TCP backpressure.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Outlet:
    __slots__ = (
        "_pending",
        "_pending_bytes",
        "_room",
        "capacity",
        "name",
        "writer",
        "written_bytes",
        "written_frames",
    )

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self.writer: asyncio.StreamWriter | None = None
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._room = asyncio.Event()
        self._room.set()
        self.written_frames = 0
        self.written_bytes = 0

    def write(self, frame: bytes) -> None:
        self.written_frames += 1
        self.written_bytes += len(frame)
        if self.writer is not None:
            self.writer.write(frame)
        else:
            self._pending.append(frame)
            self._pending_bytes += len(frame)
            if self._pending_bytes >= self.capacity:
                self._room.clear()

    def attach(self, writer: asyncio.StreamWriter) -> None:
        writer.transport.set_write_buffer_limits(high=self.capacity, low=self.capacity // 2)
        self.writer = writer
        if self._pending:
            writer.writelines(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
        self._room.set()

    def detach(self, writer: asyncio.StreamWriter) -> None:
        if self.writer is writer:
            self.writer = None

    def has_room(self) -> bool:
        if self.writer is not None:
            return self.writer.transport.get_write_buffer_size() <= self.capacity
        return self._room.is_set()

    async def wait_for_room(self) -> None:
        while not self.has_room():
            writer = self.writer
            if writer is not None:
                try:
                    await writer.drain()
                except ConnectionError:
                    self.detach(writer)
            else:
                await self._room.wait()

    def statistics(self) -> dict[str, int]:
        buffered = (
            self.writer.transport.get_write_buffer_size()
            if self.writer is not None
            else self._pending_bytes
        )
        return {
            "buffered_bytes": buffered,
            "capacity_bytes": self.capacity,
            "connected": int(self.writer is not None),
            "written_frames": self.written_frames,
            "written_bytes": self.written_bytes,
        }
