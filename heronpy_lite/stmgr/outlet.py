"""An outlet: the bounded way out of the stream manager to one destination.

Theory of operation
-------------------
There is one outlet per local instance and one per peer stream manager, and
one per connection for the frames that go to that connection alone. Every
write of the stream manager goes through one. While the destination is
connected, frames go straight to its transport; while it is not (an
instance restarting, a peer not yet up), data frames wait in order in a
queue and are written when it attaches. Either way the outlet counts its
buffered bytes against three marks:

- ``high``: above it the outlet is *congested* (the backpressure controller
  hears about it and, depending on the strategy, pauses upstream readers);
- ``low``: a congested outlet is relieved once it drains below this;
- ``hard``: the bound on what it holds.

The rule at the hard limit, as in trio's memory channels, depends on what is
written:

- data (`offer`: DATA frames, and ACK frames on their way to a spout's
  stream manager) is refused above ``hard``: the reader that produced it
  waits in `wait_for_room` and retries, reading nothing meanwhile (TCP
  backpressure, the backstop that bounds memory whatever the strategy). At
  most one frame per reader overshoots the mark.
- control (`send_control`: plans, throttle notices, verdicts for a local
  spout, backpressure notices) never waits, since a reader blocked on it
  could deadlock the protocol. It is small; it is admitted up to ``hard +
  CONTROL_RESERVE`` and refused past that: the destination has not read that
  much, and the caller closes its connection (it reconnects and gets fresh
  state). Control for a destination that is not connected is dropped: a
  destination that connects is sent the current state.

The transport's own write-buffer limits are set to (high, low), so
``drain()`` returns exactly when the outlet is relieved. `statistics` is what
the metrics read.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

_POLL_SECS = 0.005
#: control frames admitted above the hard limit before the destination counts as stuck
CONTROL_RESERVE = 1 << 20


@dataclass(frozen=True, slots=True)
class OutletStatistics:
    """One outlet, as its metrics show it."""

    name: str
    connected: bool
    buffered_bytes: int
    high_bytes: int
    low_bytes: int
    hard_bytes: int
    written_frames: int
    written_bytes: int
    written_tuples: int
    refused_controls: int


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
        "refused_controls",
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
        self.refused_controls = 0

    # -- writing --

    def offer(self, frame: bytes, tuples: int = 0) -> bool:
        """Write a data frame, or refuse it (False) while above the hard limit:
        then `wait_for_room` and offer it again."""
        if self.buffered > self.hard:
            return False
        self.written_tuples += tuples
        self._write(frame, queue=True)
        return True

    def send_control(self, frame: bytes) -> bool:
        """Write a control frame; False if the destination has not read
        ``hard + CONTROL_RESERVE`` bytes (the caller closes its connection).
        Dropped, and True, while it is not connected."""
        if self._connected_writer() is None:
            return True
        if self.buffered > self.hard + CONTROL_RESERVE:
            self.refused_controls += 1
            return False
        self._write(frame, queue=False)
        return True

    def _write(self, frame: bytes, queue: bool) -> None:
        self.written_frames += 1
        self.written_bytes += len(frame)
        writer = self._connected_writer()
        if writer is not None:
            try:
                writer.write(frame)
                return
            except RuntimeError:  # uvloop: closed under our feet
                self._lost()
        if queue:
            self._pending.append(frame)
            self._pending_bytes += len(frame)
            if self._pending_bytes > self.hard:
                self._room.clear()

    def _connected_writer(self) -> asyncio.StreamWriter | None:
        writer = self.writer
        if writer is not None and writer.is_closing():
            # the destination just died and its handler has not detached it yet:
            # keep data for whoever attaches next (a restarted instance)
            self._lost()
            return None
        return writer

    def _lost(self) -> None:
        self.writer = None
        self._attached.clear()

    # -- the destination's connection --

    def attach(self, writer: asyncio.StreamWriter) -> None:
        """Write to ``writer`` from now on, what was queued first."""
        writer.transport.set_write_buffer_limits(high=self.high, low=self.low)
        self.writer = writer
        if self._pending:
            writer.writelines(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
        self._room.set()
        self._attached.set()

    def purge(self) -> int:
        """Drop what waits for a destination that is not connected; the frames dropped
        (what its transport already holds is not recalled)."""
        dropped = len(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        self._room.set()
        return dropped

    def detach(self, writer: asyncio.StreamWriter) -> None:
        if self.writer is writer:
            self._lost()

    # -- waiting --

    @property
    def buffered(self) -> int:
        writer = self.writer
        if writer is not None:
            return int(writer.transport.get_write_buffer_size())
        return self._pending_bytes

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

    def statistics(self) -> OutletStatistics:
        return OutletStatistics(
            name=self.name,
            connected=self.writer is not None,
            buffered_bytes=self.buffered,
            high_bytes=self.high,
            low_bytes=self.low,
            hard_bytes=self.hard,
            written_frames=self.written_frames,
            written_bytes=self.written_bytes,
            written_tuples=self.written_tuples,
            refused_controls=self.refused_controls,
        )
