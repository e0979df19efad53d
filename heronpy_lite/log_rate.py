"""Rate limits for repeated log lines: a flood from one log statement costs a
few lines and a count, never a line per frame.

Theory of operation
-------------------
A hostile or broken peer can make a process log once per frame or once per
connection (thousands of lines a second: disk, CPU, and the history that
matters rotated away). Every engine process therefore passes its log records
through `RepeatFilter`, which keys each record by its *log statement* (logger
and source line, so a statement that logs different peers or values is still
one statement) and asks `RepeatLimiter` whether it may pass:

- a token bucket per statement: ``burst`` lines pass at once, then one per
  ``interval`` seconds;
- a line that passes after some were held back says how many, and since
  when: ``... [1234 more like this since 12:00:01.250]``; what is still held
  back when the process exits is written then (`RepeatFilter.summaries`);
- at most ``max_keys`` statements are tracked (the least recently seen is
  forgotten first): bounded, whatever logs.

User exceptions are already reported per type (first few in full, then every
1000th, instance/task.py); this is the same promise for every other line the
engine writes. What user code logs itself (``self.log``, ``self.logger``:
loggers under ``heronpy_lite.user.``) passes as it is. ``interval`` 0 turns
the limit off.

`RepeatLimiter` is pure: the time is passed in (the filter passes the
record's own timestamp), so its tests need no clock and no sleep.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

#: what user code logs through (``self.log``, ``self.logger``): not limited here. A
#: user's own lines are the user's to choose (and rotation bounds their disk); the
#: engine already limits what it logs for them (user exceptions, instance/task.py)
USER_LOGGERS = "heronpy_lite.user."
DEFAULT_BURST = 20
DEFAULT_INTERVAL_SECS = 1.0
MAX_KEYS = 4096


@dataclass(slots=True)
class _Bucket:
    tokens: float
    last: float
    held: int = 0
    held_since: float = 0.0


class RepeatLimiter:
    """Per key: ``burst`` at once, then one per ``interval`` seconds."""

    def __init__(
        self,
        burst: int = DEFAULT_BURST,
        interval: float = DEFAULT_INTERVAL_SECS,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.burst = max(1, burst)
        self.interval = interval
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def admit(self, key: Hashable, now: float) -> tuple[int, float] | None:
        """None: hold this line back. Otherwise (how many lines of ``key`` were held
        back before this one, since when): ``(0, now)`` when none were."""
        if self.interval <= 0:
            return 0, now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            if now > bucket.last:
                bucket.tokens = min(
                    float(self.burst), bucket.tokens + (now - bucket.last) / self.interval
                )
            bucket.last = max(bucket.last, now)
        if bucket.tokens < 1.0:
            if not bucket.held:
                bucket.held_since = now
            bucket.held += 1
            return None
        bucket.tokens -= 1.0
        held, since = bucket.held, bucket.held_since
        bucket.held = 0
        return (held, since) if held else (0, now)

    def held_back(self) -> list[tuple[Hashable, int, float]]:
        """Every key with lines held back since its last line passed: (key, count, since)."""
        return [(k, b.held, b.held_since) for k, b in self._buckets.items() if b.held]

    def __len__(self) -> int:
        return len(self._buckets)


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


class RepeatFilter(logging.Filter):
    """The logging side of `RepeatLimiter`: one per log handler."""

    def __init__(self, limiter: RepeatLimiter) -> None:
        super().__init__()
        self.limiter = limiter
        self._templates: dict[Hashable, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(USER_LOGGERS):
            return True  # the user's own lines, as the user wrote them
        key = (record.name, record.pathname, record.lineno)
        verdict = self.limiter.admit(key, record.created)
        if verdict is None:
            if key not in self._templates and len(self._templates) < self.limiter.max_keys:
                self._templates[key] = str(record.msg)[:200]
            return False
        held, since = verdict
        if held:
            record.msg = f"{record.getMessage()} [{held} more like this since {_clock(since)}]"
            record.args = None
        return True

    def summaries(self) -> list[str]:
        """One line per log statement with lines held back (what exit writes)."""
        out = []
        for key, count, since in self.limiter.held_back():
            template = self._templates.get(key, "")
            out.append(f"{count} log lines like {template!r} held back since {_clock(since)}")
        return out


__all__ = ["RepeatFilter", "RepeatLimiter"]
