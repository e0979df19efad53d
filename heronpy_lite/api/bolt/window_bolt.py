"""heronpy's window bolts (``heronpy.api.bolt.window_bolt``): processing time, ticks.

`SlidingWindowBolt` and `TumblingWindowBolt` read heronpy's config keys,
set the tick frequency inside ``initialize`` (the engine arms the timer from
the config as ``initialize`` leaves it), and call ``processWindow(window_info,
tuples)`` on every tick with a `WindowContext(start, end)` in whole seconds
(``int(time.time())``, as heronpy). Tuples are acked when they leave the
window (sliding) or after the window was processed (tumbling), as heronpy
does; emits in ``processWindow`` are not anchored unless you pass
``anchors``.

Where heronpy's code is broken, this does what its documentation says:

- ``pre_save`` stores the window's tuples in the state as plain values
  (component, stream, task, values, times), which a checkpoint can hold,
  and ``initialize`` takes them back after ``init_state`` (heronpy stores the
  deque of HeronTuples, which no checkpoint can serialize);
- a sliding window holds exactly the tuples of the last
  ``slidingwindowbolt_duration_secs`` seconds: expired tuples are dropped
  before the window is handed over (heronpy handed over tuples one slide
  too old when nothing arrived in between);
- a missing duration is an error at ``initialize`` (heronpy logged it and
  then failed on the first tuple).

heronpy_lite adds a memory bound: at most ``..._max_tuples`` (config, default
`DEFAULT_MAX_TUPLES`) tuples are held; the next ones are failed (replayed in
ATLEAST_ONCE), counted in the user metric ``window_refused`` and logged.
For event time, count and session windows see `windowed.WindowedBolt`.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections import deque, namedtuple
from collections.abc import Callable
from typing import Any

from heronpy_lite.api import api_constants
from heronpy_lite.api.bolt._windows import DEFAULT_MAX_TUPLES
from heronpy_lite.api.bolt.bolt import Bolt
from heronpy_lite.api.bolt.windowed import HeldTuples, RateLimitedLog
from heronpy_lite.api.metrics import CountMetric
from heronpy_lite.api.state.stateful_component import StatefulComponent
from heronpy_lite.api.tuple import HeronTuple

#: what ``processWindow`` receives as ``window_info`` (heronpy's namedtuple)
WindowContext = namedtuple("WindowContext", ("start", "end"))


class SlidingTuples:
    """heronpy's sliding window as a pure object: (tuple, arrival second) pairs in
    arrival order; a tuple is in every window whose start is at or before its
    arrival second. Time (whole seconds) is passed in."""

    def __init__(self, duration: int, max_tuples: int) -> None:
        self.duration = duration
        self.max_tuples = max_tuples
        self.entries: deque[tuple[Any, int]] = deque()

    def add(self, tup: Any, now: int) -> bool:
        """Keep ``tup``; False (not kept) when the window is full."""
        if len(self.entries) >= self.max_tuples:
            return False
        self.entries.append((tup, now))
        return True

    def expire(self, now: int) -> list[Any]:
        """Drop and return the tuples no window from ``now`` on contains."""
        expired = []
        entries = self.entries
        while entries and now - self.duration > entries[0][1]:
            expired.append(entries.popleft()[0])
        return expired

    def window(self, now: int) -> tuple[WindowContext, list[Any]]:
        """The window ending at ``now`` (call `expire` first)."""
        return WindowContext(now - self.duration, now), [t for t, _ in self.entries]


class TumblingTuples:
    """heronpy's tumbling window as a pure object: the tuples since the last window."""

    def __init__(self, duration: int, max_tuples: int) -> None:
        self.duration = duration
        self.max_tuples = max_tuples
        self.entries: list[tuple[Any, int]] = []

    def add(self, tup: Any, now: int) -> bool:
        if len(self.entries) >= self.max_tuples:
            return False
        self.entries.append((tup, now))
        return True

    def take(self, now: int) -> tuple[WindowContext, list[Any]]:
        """The window ending at ``now``; the next one starts empty."""
        tuples = [t for t, _ in self.entries]
        self.entries = []
        return WindowContext(now - self.duration, now), tuples


def _saved(entries: Any) -> list[list[Any]]:
    return [
        [t.component, t.stream, t.task, t.values, t.creation_time, arrived]
        for t, arrived in entries
    ]


def _restored(saved: Any) -> list[tuple[Any, int]]:
    return [
        (HeronTuple(None, component, stream, task, values, created, None), int(arrived))
        for component, stream, task, values, created, arrived in saved
    ]


class _HeronpyWindowBolt(Bolt, StatefulComponent):
    """What both of heronpy's window bolts share: config, state, metrics, the bound."""

    WINDOW_DURATION_SECS = ""
    WINDOW_MAX_TUPLES = ""
    _window: SlidingTuples | TumblingTuples
    _clock: Callable[[], float] = staticmethod(time.time)
    saved_state: Any = None

    def init_state(self, stateful_state: Any) -> None:
        self.saved_state = stateful_state

    def pre_save(self, checkpoint_id: Any) -> None:
        if self.saved_state is not None:
            self.saved_state["tuples"] = _saved(self._window.entries)

    @abstractmethod
    def processWindow(self, window_info: WindowContext, tuples: list[Any]) -> None:
        """Handle the tuples of one window (heronpy's interface)."""

    def _setup(self, config: dict[str, Any], context: Any) -> tuple[int, int]:
        key = self.WINDOW_DURATION_SECS
        if key not in config:
            raise ValueError(f"{type(self).__name__} needs {key!r} in its config")
        duration = int(config[key])
        if duration < 1:
            raise ValueError(f"{key} must be at least 1, got {config[key]!r}")
        max_tuples = int(config.get(self.WINDOW_MAX_TUPLES, DEFAULT_MAX_TUPLES))
        if max_tuples < 1:
            raise ValueError(f"{self.WINDOW_MAX_TUPLES} must be at least 1")
        self._refused = CountMetric()
        self._complain = RateLimitedLog(self.logger)
        if context is not None:
            context.register_metric("window_refused", self._refused, 1)
            context.register_metric("window_held", HeldTuples(lambda: len(self._window.entries)), 1)
        return duration, max_tuples

    def _warn_timeout(self, config: dict[str, Any], hold: int) -> None:
        """heronpy runs such a topology, so this only warns (WindowedBolt refuses it)."""
        reliable = config.get(api_constants.TOPOLOGY_RELIABILITY_MODE) == "ATLEAST_ONCE"
        timeout = float(config.get(api_constants.TOPOLOGY_MESSAGE_TIMEOUT_SECS, 30))
        timeouts = config.get(api_constants.TOPOLOGY_ENABLE_MESSAGE_TIMEOUTS, True)
        if reliable and timeouts and hold >= timeout:
            self.logger.warning(
                "%s holds tuples up to %ds, not less than %s (%gs): they will time out "
                "and be replayed",
                type(self).__name__,
                hold,
                api_constants.TOPOLOGY_MESSAGE_TIMEOUT_SECS,
                timeout,
            )

    def _restore(self) -> list[tuple[Any, int]]:
        if self.saved_state is not None and "tuples" in self.saved_state:
            return _restored(self.saved_state["tuples"])
        return []

    def _now(self) -> int:
        return int(self._clock())

    def process(self, tup: Any) -> None:
        if not self._window.add(tup, self._now()):
            self._refused.incr()
            self._complain(
                "refused",
                "%s holds %d tuples (%s); a tuple from %s:%s is failed",
                type(self).__name__,
                self._window.max_tuples,
                self.WINDOW_MAX_TUPLES,
                tup.component,
                tup.stream,
            )
            self.fail(tup)
        else:
            self._after_add()

    def _after_add(self) -> None:
        pass


class SlidingWindowBolt(_HeronpyWindowBolt):
    """A window of the last ``slidingwindowbolt_duration_secs`` seconds, handed to
    ``processWindow`` every ``slidingwindowbolt_slideinterval_secs`` (default:
    the duration)."""

    WINDOW_DURATION_SECS = "slidingwindowbolt_duration_secs"
    WINDOW_SLIDEINTERVAL_SECS = "slidingwindowbolt_slideinterval_secs"
    WINDOW_MAX_TUPLES = "slidingwindowbolt_max_tuples"
    _window: SlidingTuples

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        """Read the window's config and set the tick frequency to the slide interval."""
        self.window_duration, max_tuples = self._setup(config, context)
        self.slide_interval = int(config.get(self.WINDOW_SLIDEINTERVAL_SECS, self.window_duration))
        if not 1 <= self.slide_interval <= self.window_duration:
            raise ValueError(
                f"{self.WINDOW_SLIDEINTERVAL_SECS} must be between 1 and "
                f"{self.WINDOW_DURATION_SECS} ({self.window_duration}), got {self.slide_interval}"
            )
        config[api_constants.TOPOLOGY_TICK_TUPLE_FREQ_SECS] = str(self.slide_interval)
        self._warn_timeout(config, self.window_duration + self.slide_interval)
        self._window = SlidingTuples(self.window_duration, max_tuples)
        self._window.entries.extend(self._restore())

    def _after_add(self) -> None:
        for tup in self._window.expire(self._now()):
            self.ack(tup)

    def process_tick(self, tup: Any) -> None:
        """Hand over the window ending now; ack what no later window holds."""
        now = self._now()
        for old in self._window.expire(now):
            self.ack(old)
        window_info, tuples = self._window.window(now)
        self.processWindow(window_info, tuples)


class TumblingWindowBolt(_HeronpyWindowBolt):
    """Consecutive windows of ``tumblingwindowbolt_duration_secs`` seconds."""

    WINDOW_DURATION_SECS = "tumblingwindowbolt_duration_secs"
    WINDOW_MAX_TUPLES = "tumblingwindowbolt_max_tuples"
    _window: TumblingTuples

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        """Read the window's config and set the tick frequency to the duration."""
        self.window_duration, max_tuples = self._setup(config, context)
        config[api_constants.TOPOLOGY_TICK_TUPLE_FREQ_SECS] = str(self.window_duration)
        self._warn_timeout(config, self.window_duration)
        self._window = TumblingTuples(self.window_duration, max_tuples)
        self._window.entries.extend(self._restore())

    def process_tick(self, tup: Any) -> None:
        """Hand over the window ending now, then ack its tuples."""
        window_info, tuples = self._window.take(self._now())
        self.processWindow(window_info, tuples)
        for t in tuples:
            self.ack(t)
