"""Where a task's wall time goes: busy, backpressured or idle.

Theory of operation
-------------------
Flink reports, per operator, ``busyTimeMsPerSecond``,
``backPressuredTimeMsPerSecond`` and ``idleTimeMsPerSecond``, which add up
to about 1000. A task here is one process whose coroutines take turns: the
reader (input, and a spout's acks), the spout loop, the writer waiting for
room, a tick. Each of them is a *part* that says, when it changes, what it
is doing now (`set`): ``BUSY`` (running), ``IDLE`` (nothing to do: waiting
for input, a spout round that emitted nothing, deactivated) or
``BACKPRESSURED`` (waiting for room downstream: the output above the high
watermark, throttled by the stream manager, at max spout pending).

The task is backpressured while any part waits for room, else busy while
any part runs, else idle: the time between two changes goes to that one
state, so the three always add up to the wall time. Busy therefore counts
what the engine does for the user's code (decoding a batch, packing its
emits) as well as the code itself, as Flink's does.

Pure: every call takes ``now`` (seconds, one monotonic clock); no sleeps in
its tests. The runner calls `set` around its awaits and `take_rates` once
per metrics export.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from heronpy_lite.wire import metric_names as names


class Doing(IntEnum):
    """What a part of the task is doing; a higher value wins for the task."""

    IDLE = 0
    BUSY = 1
    BACKPRESSURED = 2


class TimeAccount:
    """Seconds busy, backpressured and idle since ``now`` (see the module docstring)."""

    __slots__ = ("_last_sample", "_parts", "_since", "_state", "seconds")

    def __init__(self, now: float) -> None:
        self._parts: dict[str, Doing] = {}
        self._state = Doing.IDLE
        self._since = now
        #: seconds so far, indexed by `Doing`, up to the last change
        self.seconds = [0.0, 0.0, 0.0]
        self._last_sample = (now, (0.0, 0.0, 0.0))

    @property
    def state(self) -> Doing:
        return self._state

    def set(self, part: str, doing: Doing, now: float) -> None:
        """``part`` is ``doing`` from ``now`` on."""
        parts = self._parts
        if parts.get(part) is doing:
            return
        parts[part] = doing
        state = max(parts.values())
        if state is not self._state:
            if now > self._since:
                self.seconds[self._state] += now - self._since
                self._since = now
            self._state = state

    def totals(self, now: float) -> tuple[float, float, float]:
        """Seconds (busy, backpressured, idle) until ``now``."""
        seconds = list(self.seconds)
        seconds[self._state] += max(0.0, now - self._since)
        return seconds[Doing.BUSY], seconds[Doing.BACKPRESSURED], seconds[Doing.IDLE]

    def take_rates(self, now: float) -> tuple[float, float, float]:
        """Milliseconds per second (busy, backpressured, idle) since the previous
        call (or since the account began): they add up to 1000, or are all 0
        when no time passed."""
        then, before = self._last_sample
        current = self.totals(now)
        self._last_sample = (now, current)
        elapsed = now - then
        if elapsed <= 0:
            return 0.0, 0.0, 0.0
        busy, bp, idle = (1000 * (c - b) / elapsed for c, b in zip(current, before, strict=True))
        return busy, bp, idle


def samples(account: TimeAccount, labels: dict[str, str], now: float) -> list[list[Any]]:
    """The account as metric samples (wire/metric_names.py): the three counters, and
    the three gauges over the time since the previous call (one export interval)."""
    busy, bp, idle = account.totals(now)
    busy_ms, bp_ms, idle_ms = account.take_rates(now)
    return [
        [names.BUSY, "counter", labels, busy],
        [names.BACKPRESSURED, "counter", labels, bp],
        [names.IDLE, "counter", labels, idle],
        [names.BUSY_MS, "gauge", labels, busy_ms],
        [names.BACKPRESSURED_MS, "gauge", labels, bp_ms],
        [names.IDLE_MS, "gauge", labels, idle_ms],
    ]
