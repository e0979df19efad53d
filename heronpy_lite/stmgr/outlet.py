"""An outlet: the bounded way out of the stream manager to one destination.

Theory of operation
-------------------
There is one outlet per local instance and one per peer stream manager.
While the destination is connected, frames go straight to its transport;
while it is not (an instance restarting, a peer not yet up), they wait in
order in a queue and are written when it attaches. Either way the outlet
counts its buffered bytes against three marks:

- ``high``: above it the outlet is *congested* (the backpressure controller
  hears about it and, depending on the strategy, pauses upstream readers);
- ``low``: a congested outlet is relieved once it drains below this;
- ``hard``: above it, `has_room` is false and the reader that wrote here
  waits in `wait_for_room` before reading on: TCP backpressure, the backstop
  that bounds memory whatever the strategy.

The transport's own write-buffer limits are set to (high, low), so
``drain()`` returns exactly when the outlet is relieved.
"""

from __future__ import annotations

import asyncio
from collections import deque

_POLL_SECS = 0.005


class Outlet:
    __slots__ = (
        "_attached",
        "_pending",
        "_pending_bytes",
        "_room",
        "hard",
        "high",
        "low",
        "name",
        "writer",
        "written_bytes",
        "written_frames",
        "written_tuples",
    )

    def __init__(self, name: str, high: int, low: int, hard: int) -> None:
        self.name = name
        self.high = high
        self.low = low
        self.hard = max(hard, high)
        self.writer: asyncio.StreamWriter | None = None
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._room = asyncio.Event()
        self._room.set()
        self._attached = asyncio.Event()
        self.written_frames = 0
        self.written_bytes = 0
        self.written_tuples = 0

    def write(self, frame: bytes, tuples: int = 0) -> None:
        self.written_tuples += tuples
        self.written_frames += 1
        self.written_bytes += len(frame)
        writer = self.writer
        if writer is not None and writer.is_closing():
            # the destination just died and its handler has not detached it yet:
            # keep the frame for whoever attaches next (a restarted instance)
            self.writer = writer = None
            self._attached.clear()
        if writer is not None:
            try:
                writer.write(frame)
            except RuntimeError:  # uvloop: closed under our feet
                self.writer = None
                self._attached.clear()
                self._pending.append(frame)
                self._pending_bytes += len(frame)
        else:
            self._pending.append(frame)
            self._pending_bytes += len(frame)
            if self._pending_bytes > self.hard:
                self._room.clear()

    def attach(self, writer: asyncio.StreamWriter) -> None:
        writer.transport.set_write_buffer_limits(high=self.high, low=self.low)
        self.writer = writer
        if self._pending:
            writer.writelines(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
        self._room.set()
        self._attached.set()

    def detach(self, writer: asyncio.StreamWriter) -> None:
        if self.writer is writer:
            self.writer = None
            self._attached.clear()

    @property
    def buffered(self) -> int:
        if self.writer is not None:
            return int(self.writer.transport.get_write_buffer_size())
        return self._pending_bytes

    def congested(self) -> bool:
        return self.buffered > self.high

    def has_room(self) -> bool:
        return self.buffered <= self.hard

    async def wait_for_room(self) -> None:
        while not self.has_room():
            await self._drain_once()

    async def wait_relieved(self) -> None:
        """Return once the outlet is connected and below its low watermark."""
        while self.writer is None or self.buffered > self.low:
            await self._drain_once()

    async def _drain_once(self) -> None:
        """Wait for the buffer to shrink, always yielding to the loop.

        ``drain()`` only waits while the transport is paused (above ``high``);
        between the marks it returns at once, so poll briefly there instead of
        spinning.
        """
        writer = self.writer
        if writer is None:
            if self._pending_bytes > self.hard:
                await self._room.wait()
            else:
                await self._attached.wait()
            return
        try:
            await writer.drain()
        except ConnectionError:
            self.detach(writer)
            return
        if self.writer is writer and self.buffered > self.low:
            await asyncio.sleep(_POLL_SECS)

    def statistics(self) -> dict[str, int]:
        return {
            "buffered_bytes": self.buffered,
            "high_bytes": self.high,
            "hard_bytes": self.hard,
            "connected": int(self.writer is not None),
            "written_frames": self.written_frames,
            "written_bytes": self.written_bytes,
        }
