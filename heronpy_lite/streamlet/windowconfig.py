"""Windows of streamlet operations (``heronpy.streamlet.windowconfig``)."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from heronpy_lite.api.bolt._windows import DEFAULT_MAX_TUPLES, Windowing


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise RuntimeError(f"{what} has to be of type datetime.timedelta")


class WindowConfig:
    """The window of ``reduce_by_window``, ``reduce_by_key_and_window`` and joins.

    heronpy's windows are processing-time time windows:
    `create_tumbling_window` and `create_sliding_window` (seconds or
    timedeltas). Windows are aligned: a sliding window of length L every S
    seconds covers ``[k*S, k*S + L)``; its bounds are ints when L and S are
    whole seconds. heronpy_lite adds count windows, sessions (per key for
    keyed operations), event time (`with_event_time`) and the memory bound
    (`with_max_tuples`, default 100,000 elements per task).
    """

    def __init__(self, window_duration: Any, slide_interval: Any) -> None:
        self._window_duration = datetime.timedelta(
            seconds=_seconds(window_duration, "Window Duration")
        )
        self._slide_interval = datetime.timedelta(
            seconds=_seconds(slide_interval, "Slide Interval")
        )
        self._windowing = Windowing.sliding(
            self._window_duration.total_seconds(), self._slide_interval.total_seconds()
        )

    @staticmethod
    def create_tumbling_window(window_duration: Any) -> WindowConfig:
        return WindowConfig(window_duration, window_duration)

    @staticmethod
    def create_sliding_window(window_duration: Any, slide_interval: Any) -> WindowConfig:
        return WindowConfig(window_duration, slide_interval)

    # -- heronpy_lite's additions --

    @classmethod
    def _of(cls, windowing: Windowing) -> WindowConfig:
        config = cls.__new__(cls)
        config._windowing = windowing
        length = windowing.length if windowing.kind == "time" else 0
        slide = windowing.slide if windowing.kind == "time" else 0
        config._window_duration = datetime.timedelta(seconds=length)
        config._slide_interval = datetime.timedelta(seconds=slide)
        return config

    @staticmethod
    def create_tumbling_count_window(count: int) -> WindowConfig:
        """Every ``count`` elements (heronpy_lite)."""
        return WindowConfig._of(Windowing.tumbling_count(count))

    @staticmethod
    def create_sliding_count_window(count: int, slide: int) -> WindowConfig:
        """The last ``count`` elements, every ``slide`` elements (heronpy_lite)."""
        return WindowConfig._of(Windowing.sliding_count(count, slide))

    @staticmethod
    def create_session_window(gap: Any) -> WindowConfig:
        """Sessions ended by ``gap`` seconds of silence, per key in keyed
        operations (heronpy_lite)."""
        return WindowConfig._of(Windowing.session(_seconds(gap, "Session gap")))

    def with_event_time(
        self, timestamp: Any, lag: Any = 0, allowed_lateness: Any = 0
    ) -> WindowConfig:
        """Event time (heronpy_lite): ``timestamp(element)`` gives each element's
        time in seconds; the watermark stays ``lag`` behind the newest time
        of the slowest input; elements later than ``allowed_lateness`` after
        their window are dropped and counted (metric ``window_late``). For
        keyed operations the element is the (key, value) pair."""
        if not callable(timestamp):
            raise RuntimeError("timestamp has to be a function of the element")
        return WindowConfig._of(
            dataclasses.replace(
                self._windowing,
                timestamp=timestamp,
                lag=_seconds(lag, "lag"),
                allowed_lateness=_seconds(allowed_lateness, "allowed_lateness"),
            )
        )

    def with_max_tuples(self, max_tuples: int) -> WindowConfig:
        """At most ``max_tuples`` elements held per task (heronpy_lite; default
        100,000): beyond it elements are failed and counted (``window_refused``)."""
        return WindowConfig._of(dataclasses.replace(self._windowing, max_tuples=max_tuples))

    def __repr__(self) -> str:
        return f"WindowConfig({self._windowing})"


__all__ = ["DEFAULT_MAX_TUPLES", "WindowConfig"]
