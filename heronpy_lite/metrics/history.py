"""The recent snapshots of each process in a container, for rates over a window.

Theory of operation
-------------------
Every process sends a snapshot of its totals once per export interval,
stamped with the time it took them. A rate is the increase of a counter
between two snapshots of one source divided by the difference of *their*
times: a reader that scrapes twice, one second apart, against a one-second
export interval sees zero or two new snapshots and reports 0 or twice the
rate (what ``status`` did before); the producers' own times never alias.

`SnapshotHistory` keeps, per source, the snapshots of the last
``history_secs`` (bounded in count as well), each as one array of numbers
aligned to the source's series (name, kind, labels; a summary takes two
slots, count and sum). Counters are stored *reset-adjusted*: when a value
goes down (the process restarted and counts from 0 again) the new value is
added, as Prometheus' ``increase()`` does, so the increase over any window
is one subtraction. Gauges are stored as they are.

`window(now, seconds)` answers, per source, the latest value of every series,
its increase over the window (from the last snapshot at or before
``now - seconds``, or the oldest one kept) and the two times. It is what the
metrics manager serves as ``/window`` (JSON) to ``status`` and the tracker.

Pure: times are passed in; nothing here reads a clock or a socket.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import deque
from typing import Any

_NAN = float("nan")

SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]


class _Source:
    __slots__ = ("adjusted", "exceptions", "keys", "latest", "points", "raw", "series", "times")

    def __init__(self, maxlen: int) -> None:
        self.keys: dict[SeriesKey, int] = {}
        #: per series: (name, kind, labels, first slot)
        self.series: list[tuple[str, str, dict[str, str], int]] = []
        self.times: deque[float] = deque(maxlen=maxlen)
        #: per snapshot, per slot: a counter's reset-adjusted total, a gauge's value
        self.points: deque[array[float]] = deque(maxlen=maxlen)
        #: per slot, the last value received (raw) and its adjusted total, whenever it was
        self.raw: array[float] = array("d")
        self.adjusted: array[float] = array("d")
        #: per slot, the raw value in the latest snapshot (NaN: not in it)
        self.latest: array[float] = array("d")
        self.exceptions: list[Any] = []


class SnapshotHistory:
    def __init__(self, history_secs: float, interval_secs: float) -> None:
        self.history_secs = history_secs
        self.maxlen = max(2, math.ceil(history_secs / max(interval_secs, 0.01)) + 2)
        self.sources: dict[str, _Source] = {}
        self.bad_samples = 0

    def add(
        self, source: str, when: float, samples: list[Any], exceptions: list[Any] | None = None
    ) -> None:
        """One snapshot of ``source`` taken at ``when``; one not newer than the last is
        ignored (it can only be a late duplicate)."""
        src = self.sources.get(source)
        if src is None:
            src = self.sources[source] = _Source(self.maxlen)
        if src.times and when <= src.times[-1]:
            return
        if exceptions is not None:
            src.exceptions = [e for e in exceptions if isinstance(e, dict)][:50]
        raw: dict[int, float] = {}
        stored: dict[int, float] = {}
        for sample in samples:
            parsed = self._parse(sample)
            if parsed is None:
                self.bad_samples += 1
                continue
            name, kind, labels, numbers = parsed
            key = (name, kind, tuple(sorted(labels.items())))
            slot = src.keys.get(key)
            if slot is None:
                slot = len(src.raw)
                src.keys[key] = slot
                src.series.append((name, kind, labels, slot))
                src.raw.extend([_NAN] * len(numbers))
                src.adjusted.extend([_NAN] * len(numbers))
            for i, v in enumerate(numbers, slot):
                raw[i] = v
                stored[i] = v if kind == "gauge" else self._count(src, i, v)
        width = len(src.raw)
        point = array("d", [_NAN]) * width
        src.latest = array("d", [_NAN]) * width
        for i, v in stored.items():
            point[i] = v
            src.latest[i] = raw[i]
        src.times.append(when)
        src.points.append(point)
        while len(src.times) > 2 and src.times[0] < when - self.history_secs:
            src.times.popleft()
            src.points.popleft()

    def remove(self, source: str) -> None:
        """Forget ``source`` (it stopped reporting)."""
        self.sources.pop(source, None)

    @staticmethod
    def _count(src: _Source, i: int, v: float) -> float:
        """The reset-adjusted total of counter slot ``i`` after it reads ``v``."""
        before, base = src.raw[i], src.adjusted[i]
        # first seen: its total so far; gone down: the process restarted and counts from 0
        total = v if math.isnan(before) else base + (v - before if v >= before else v)
        src.raw[i] = v
        src.adjusted[i] = total
        return total

    @staticmethod
    def _parse(sample: Any) -> tuple[str, str, dict[str, str], list[float]] | None:
        try:
            name, kind, labels, value = sample
            labels = {str(k): str(v) for k, v in labels.items()}
            if kind == "summary":
                count, total = value
                numbers = [float(count), float(total)]
            elif kind in ("counter", "gauge"):
                numbers = [float(value)]
            else:
                return None
        except (TypeError, ValueError, AttributeError):
            return None
        if not isinstance(name, str) or any(math.isnan(n) for n in numbers):
            return None
        return name, kind, labels, numbers

    def window(self, now: float, seconds: float) -> list[dict[str, Any]]:
        """Per source: ``source``, ``time`` (of its latest snapshot), ``since`` (of
        the one the window starts from), ``exceptions``, and ``series``: one
        ``[name, kind, labels, value, increase]`` per series in the latest
        snapshot, where a summary's value and increase are ``[count, sum]``, a
        gauge's increase is None, and so is an increase the window cannot tell
        (a series that appeared in the latest snapshot only)."""
        out = []
        for name, src in sorted(self.sources.items()):
            if not src.times:
                continue
            times = src.times
            first = max(0, bisect.bisect_right(times, now - seconds) - 1)
            series = []
            for metric, kind, labels, slot in src.series:
                width = 2 if kind == "summary" else 1
                value = [_number(src.latest, i) for i in range(slot, slot + width)]
                if None in value:
                    continue  # not in the latest snapshot: the process no longer has it
                increase: Any = None
                if kind != "gauge":
                    deltas = [_delta(src.points, first, i) for i in range(slot, slot + width)]
                    if None not in deltas:
                        increase = deltas if width == 2 else deltas[0]
                series.append([metric, kind, labels, value if width == 2 else value[0], increase])
            out.append(
                {
                    "source": name,
                    "time": times[-1],
                    "since": times[first],
                    "exceptions": src.exceptions,
                    "series": series,
                }
            )
        return out


def _number(values: array[float], i: int) -> float | None:
    if i >= len(values) or math.isnan(values[i]):
        return None
    return values[i]


def _delta(points: deque[array[float]], first: int, i: int) -> float | None:
    """The increase of slot ``i`` from point ``first`` (or the first later point that
    has the series) to the latest point; None unless two points have it."""
    last = _number(points[-1], i)
    if last is None:
        return None
    for k in range(first, len(points) - 1):
        start = _number(points[k], i)
        if start is not None:
            return last - start
    return None
