"""Which tuples belong to which window, when a window fires, which tuples
are late, and when a tuple is no longer needed: the pure core of
heronpy_lite's windowed bolt (`heronpy_lite.api.bolt.windowed`) and of the
streamlet window operators.

Theory of operation
-------------------
A `WindowState` is built from a `Windowing` and fed ``add(item, now,
timestamp, key, source)`` for every tuple and ``advance(now)`` for the
passage of time (tick tuples). Each call returns None when nothing happened
(the usual case) or a `Step`: the windows that fire, in order, with their
items; the items no window needs any more (the bolt acks them); late items;
refused items. Nothing here reads a clock or does I/O.

Time is integer milliseconds inside (``now`` and timestamps come in as
seconds). The *watermark* says how far time has progressed:

- processing time: the watermark is ``now``; an item's time is its arrival.
- event time: an item's time is its timestamp; the watermark is, over the
  input sources (a bolt passes its input streams), the smallest of each
  source's largest timestamp, minus ``lag`` (bounded out-of-orderness).
  There is none until every source has delivered an item (Storm's rule).

Kinds of window:

- time: windows ``[j * slide, j * slide + length)`` for every integer j, so
  a tuple is in ``length / slide`` windows. Items are kept once, in panes of
  ``gcd(length, slide)``, each window being a run of panes. A window fires
  when the watermark reaches its end; with ``allowed_lateness`` its panes are
  kept until the watermark reaches ``end + allowed_lateness``, and an item
  arriving in that time fires the windows it joins again (``late=True``).
  An item whose every window is past ``end + allowed_lateness`` is late.
- count: per key, the last ``length`` items fire every ``slide`` items, in
  arrival order (no event time).
- session: per key, items closer than ``gap`` make one window
  ``[first, last + gap)``; an item bridging two sessions merges them. A
  session fires when the watermark reaches its end, with the same lateness
  rule as time windows.

A window's items are given in time order (arrival order among equal times).
Every window but the count kinds is per key only when a key is passed.

Memory: the state holds at most ``max_tuples`` items; ``add`` refuses the
next one (the bolt fails it) until windows fire and release some.

Fold mode (time windows only, ``fold=f``): items are ``(key, value)`` pairs
and each pane keeps one value per key, ``f`` applied to the values in
arrival order (incremental aggregation, as Flink's reduce). A window's items
are then ``(key, result)`` pairs, ``result`` being ``f`` applied over the
pane values of the window in time order, keys in the order they first
appear. This is the left fold of the window's values whenever ``f`` is
associative (sums, counts, min, max); when it is not, the result depends on
where the panes' bounds fall (a tumbling window is one pane: there it is
always the left fold). In event time, values are folded in arrival order
within a pane, so with out-of-order input ``f`` must also be commutative to
give the fold in time order. ``max_tuples`` counts the (key, pane) values:
memory is O(keys x panes), not O(items).

With ``hold=True`` (fold mode at least once) items are ``(key, value,
handle)``: values are folded as above, the handles (the received tuples,
which acking and anchoring need) are kept per key and pane and released when
the pane is, and a window's items are ``(key, result, handles)``. The
values themselves are not kept; ``max_tuples`` counts the handles.

A fold that raises leaves a `FoldError` as its key's value in that pane; it
stays the value (``f`` is not called with it), and every window combining
that pane gets it as the key's result. The core never lets a user
function's exception escape half-way through a step.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

TIME, COUNT, SESSION = "time", "count", "session"
DEFAULT_MAX_TUPLES = 100_000
_NEVER = math.inf
_MISSING = object()


class WindowInfo(NamedTuple):
    """The window handed to ``process_window``.

    ``start`` and ``end`` are seconds: multiples of the slide for time
    windows (ints when the length and slide are whole seconds, as heronpy's
    windows are), the first item's time and the end of the gap for sessions,
    the first and last item's arrival for count windows. ``key`` is the key
    of keyed windows, else None. ``late`` is True when a late tuple (within
    the allowed lateness) made an already fired window fire again.
    """

    start: float
    end: float
    key: Any = None
    late: bool = False


@dataclass
class Step:
    """What one call of `WindowState.add` or `WindowState.advance` produced."""

    #: windows that fire, in order, each with its items in time order
    fired: list[tuple[WindowInfo, list[Any]]] = field(default_factory=list)
    #: items no window will need again
    released: list[Any] = field(default_factory=list)
    #: items that arrived after every window they belong to was finished
    late: list[Any] = field(default_factory=list)
    #: items not kept because the state holds ``max_tuples`` already
    refused: list[Any] = field(default_factory=list)


def _seconds(value: Any, what: str) -> int:
    """A duration or a time in seconds, as integer milliseconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"{what} must be a number of seconds, got {value!r}")
    return math.floor(value * 1000 + 1e-6)


def _check_key_spec(spec: Any, what: str) -> None:
    if spec is None or callable(spec):
        return
    items = spec if isinstance(spec, (list, tuple)) else [spec]
    if not items or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in items):
        raise ValueError(
            f"{what} must be a field name, a field index, a list of them or a function, "
            f"got {spec!r}"
        )


@dataclass(frozen=True)
class Windowing:
    """How a windowed bolt groups its tuples into windows (heronpy_lite's extension).

    Build one with `sliding`, `tumbling`, `sliding_count`, `tumbling_count`
    or `session`; every option is a keyword of those.

    Args:
        kind: ``"time"``, ``"count"`` or ``"session"``.
        length: the window length, seconds (time) or tuples (count).
        slide: how far consecutive windows are apart, same unit (<= length).
        gap: sessions: the silence that ends a session, seconds.
        timestamp: event time: a field name, a field index or a function
            ``tuple -> seconds`` giving each tuple's time; None (default) for
            processing time (the tuple's arrival).
        lag: event time: how far behind the newest timestamp the watermark
            stays, seconds (how out of order tuples may arrive).
        allowed_lateness: event time: how long after a window fired tuples
            may still join it (firing it again), seconds.
        late_stream: event time: tuples too late for every window are emitted
            on this stream (fields ``LATE_FIELDS``) instead of being dropped;
            dropped ones are counted and logged either way.
        key: per-key windows (sessions and count windows are usually keyed):
            a field name, a field index, a list of them, or a function
            ``tuple -> key``.
        max_tuples: the most tuples the bolt's windows hold at once; above it
            new tuples are failed (replayed in ATLEAST_ONCE) and counted.
    """

    kind: str
    length: float = 0.0
    slide: float = 0.0
    gap: float = 0.0
    timestamp: Any = None
    lag: float = 0.0
    allowed_lateness: float = 0.0
    late_stream: str | None = None
    key: Any = None
    max_tuples: int = DEFAULT_MAX_TUPLES

    def __post_init__(self) -> None:
        if self.kind == TIME:
            length = _seconds(self.length, "window length")
            slide = _seconds(self.slide, "slide interval")
            if length < 1 or slide < 1:
                raise ValueError(
                    f"window length and slide must be at least 1 ms, got {self.length!r} "
                    f"and {self.slide!r}"
                )
            if slide > length:
                raise ValueError(
                    f"slide interval ({self.slide}s) must not exceed the window length "
                    f"({self.length}s)"
                )
        elif self.kind == COUNT:
            for what, v in (("window length", self.length), ("slide", self.slide)):
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise ValueError(f"count window {what} must be an int >= 1, got {v!r}")
            if self.slide > self.length:
                raise ValueError(
                    f"slide ({self.slide}) must not exceed the window length ({self.length})"
                )
            if self.timestamp is not None:
                raise ValueError("count windows count tuples in arrival order: no timestamp")
        elif self.kind == SESSION:
            if _seconds(self.gap, "session gap") < 1:
                raise ValueError(f"session gap must be at least 1 ms, got {self.gap!r}")
        else:
            raise ValueError(f"window kind must be time, count or session, got {self.kind!r}")
        _check_key_spec(self.timestamp, "timestamp")
        if isinstance(self.timestamp, (list, tuple)):
            raise ValueError("timestamp names one field, not a list")
        _check_key_spec(self.key, "key")
        for what, v in (("lag", self.lag), ("allowed_lateness", self.allowed_lateness)):
            if _seconds(v, what) < 0:
                raise ValueError(f"{what} must be >= 0, got {v!r}")
        if self.timestamp is None and (self.lag or self.allowed_lateness or self.late_stream):
            raise ValueError(
                "lag, allowed_lateness and late_stream need event time (timestamp=...): "
                "in processing time no tuple is late"
            )
        if self.late_stream is not None and (
            not isinstance(self.late_stream, str) or not self.late_stream
        ):
            raise ValueError(f"late_stream must be a stream name, got {self.late_stream!r}")
        if (
            isinstance(self.max_tuples, bool)
            or not isinstance(self.max_tuples, int)
            or self.max_tuples < 1
        ):
            raise ValueError(f"max_tuples must be an int >= 1, got {self.max_tuples!r}")

    # -- constructors --

    @classmethod
    def sliding(cls, length: float, slide: float, **options: Any) -> Windowing:
        """Time windows of ``length`` seconds every ``slide`` seconds."""
        return cls(TIME, length, slide, **options)

    @classmethod
    def tumbling(cls, length: float, **options: Any) -> Windowing:
        """Back-to-back time windows of ``length`` seconds."""
        return cls(TIME, length, length, **options)

    @classmethod
    def sliding_count(cls, length: int, slide: int, **options: Any) -> Windowing:
        """The last ``length`` tuples, every ``slide`` tuples."""
        return cls(COUNT, length, slide, **options)

    @classmethod
    def tumbling_count(cls, length: int, **options: Any) -> Windowing:
        """Every ``length`` tuples, in arrival order."""
        return cls(COUNT, length, length, **options)

    @classmethod
    def session(cls, gap: float, **options: Any) -> Windowing:
        """Sessions: tuples less than ``gap`` seconds apart, per key when ``key`` is given."""
        return cls(SESSION, gap=gap, **options)

    @property
    def event_time(self) -> bool:
        return self.timestamp is not None

    @property
    def hold_secs(self) -> float | None:
        """The longest a processing-time window keeps a tuple, or None when unbounded."""
        if self.kind == TIME and not self.event_time:
            return float(self.length)
        return None


class FoldError:
    """Fold mode: what a fold that raised leaves as the value of its key and pane
    (``error`` is the exception); windows combining that pane get it as the result."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"FoldError({self.error!r})"


class _HeldPane(dict[Any, list[Any]]):
    """Fold mode with handles: ``key -> [folded value, the key's handles]``, and
    ``order``, every handle in arrival order (what is released, in the order the
    tuple mode releases it)."""

    __slots__ = ("order",)

    def __init__(self) -> None:
        super().__init__()
        self.order: list[Any] = []


class _Session:
    __slots__ = ("end", "entries", "start")

    def __init__(self, start: int, end: int, entries: list[Any]) -> None:
        self.start = start
        self.end = end
        self.entries = entries


def hashable(value: Any) -> Any:
    """``value`` usable as a dict key: lists (what msgpack makes of tuples) become tuples."""
    kind = type(value)
    if kind is str or kind is int:
        return value
    if kind is list or kind is tuple:
        return tuple(hashable(v) for v in value)
    return value


class WindowState:
    """The windows of one task (see the module docstring).

    Args:
        windowing: what windows to keep.
        sources: event time: the input sources (any hashable ids) whose
            timestamps make the watermark; None: one source.
    """

    def __init__(
        self,
        windowing: Windowing,
        sources: Iterable[Hashable] | None = None,
        fold: Callable[[Any, Any], Any] | None = None,
        hold: bool = False,
    ) -> None:
        w = windowing
        if fold is not None and w.kind != TIME:
            raise ValueError("only time windows can fold values as they arrive")
        if hold and fold is None:
            raise ValueError("hold=True is for fold mode (fold=...)")
        #: fold mode: items are (key, value) pairs, kept as one folded value per key
        #: and pane; a window fires with its (key, result) pairs (module docstring)
        self._fold = fold
        #: fold mode keeping the handles: items are (key, value, handle)
        self._hold = hold
        self._fold_into: Callable[[dict[Any, Any], Any, Step | None], Step | None] = (
            self._fold_held if hold else self._fold_value
        )
        self.windowing = w
        self.kind = w.kind
        self._event = w.event_time
        self._lag = _seconds(w.lag, "lag")
        self._lateness = _seconds(w.allowed_lateness, "allowed_lateness")
        self._max = w.max_tuples
        #: items held
        self.held = 0
        self._seq = 0
        #: the watermark (ms); None before the first one
        self.watermark: int | None = None
        #: the watermark of the last scan: windows ending at or before it have fired
        self._scanned: float = -_NEVER
        #: the smallest watermark at which a scan has something to do
        self._next_due: float = _NEVER
        self._sources = frozenset(sources) if sources else None
        self._source_max: dict[Any, int] = {}
        self._length = self._slide = self._pane = 0
        self._whole = False
        #: processing-time time windows take `add`'s fast path
        self._fast = self.kind == TIME and not self._event
        #: the pane the last item went to (the fast path appends to it)
        self._last_pane: Any = []
        self._last_pane_index: int | None = None
        self._last_key: Any = None
        self._panes: dict[Any, dict[int, Any]] = {}
        self._queues: dict[Any, deque[Any]] = {}
        self._counts: dict[Any, int] = {}
        self._sessions: dict[Any, list[_Session]] = {}
        self._gap = 0
        if self.kind == TIME:
            self._length = _seconds(w.length, "length")
            self._slide = _seconds(w.slide, "slide")
            self._pane = math.gcd(self._length, self._slide)
            self._whole = self._length % 1000 == 0 and self._slide % 1000 == 0
        elif self.kind == COUNT:
            self._length = int(w.length)
            self._slide = int(w.slide)
        else:
            self._gap = _seconds(w.gap, "gap")

    # -- input --

    def add(
        self,
        item: Any,
        now: float,
        timestamp: Any = None,
        key: Any = None,
        source: Hashable = None,
    ) -> Step | None:
        """One item, arrived at ``now`` (seconds); ``timestamp`` (seconds) in event time.

        Raises ValueError for an event-time item whose timestamp is not a number.
        """
        if self.kind == COUNT:
            return self._add_count(item, math.floor(now * 1000), key)
        step: Step | None = None
        wm: int | None
        if self._fast:
            # processing-time time windows, the common case: an item joins the pane
            # of the one before it unless time moved to another pane
            t = math.floor(now * 1000)
            if t >= self._next_due:
                step = self._advance_to(t)
            if t // self._pane == self._last_pane_index and key == self._last_key:
                if self._fold is not None:
                    return self._fold_into(self._last_pane, item, step)
                if self.held >= self._max:
                    step = step or Step()
                    step.refused.append(item)
                    return step
                self._last_pane.append((t, self._seq, item))
                self._seq += 1
                self.held += 1
                return step
            wm = t
        elif self._event:
            t = _timestamp(timestamp)
            wm = self.watermark
            if self.kind == TIME and wm is not None and self._last_end(t) + self._lateness <= wm:
                return Step(late=[item])
        else:
            t = math.floor(now * 1000)
            step = self._advance_to(t)
            wm = t
        if self._fold is not None:
            step = self._insert_time((t, self._seq, item), key, wm, step)
            return self._observe(t, source, step) if self._event else step
        if self.held >= self._max:
            step = step or Step()
            step.refused.append(item)
            return step
        entry = (t, self._seq, item)
        self._seq += 1
        self.held += 1
        if self.kind == TIME:
            step = self._insert_time(entry, key, wm, step)
        else:
            step = self._insert_session(entry, key, wm, step)
        if self._event:
            step = self._observe(t, source, step)
        return step

    def advance(self, now: float) -> Step | None:
        """Time passes: in processing time, fire and release what is due at ``now``."""
        if self._event or self.kind == COUNT:
            return None
        return self._advance_to(math.floor(now * 1000))

    # -- time windows --

    def _last_end(self, t: int) -> int:
        """The end of the last time window holding time ``t``."""
        return (t // self._slide) * self._slide + self._length

    def _insert_time(self, entry: Any, key: Any, wm: int | None, step: Step | None) -> Step | None:
        t = entry[0]
        g, slide, length = self._pane, self._slide, self._length
        p = t // g
        panes = self._panes.get(key)
        if panes is None:
            panes = self._panes[key] = {}
        pane: Any = panes.get(p)
        if pane is None:
            pane = panes[p] = [] if self._fold is None else _HeldPane() if self._hold else {}
        if self._fold is None:
            pane.append(entry)
        else:
            step = self._fold_into(pane, entry[2], step)
        self._last_pane, self._last_pane_index, self._last_key = pane, p, key
        ps = p * g
        j_last = ps // slide
        due = j_last * slide + length + self._lateness
        j = (ps - length) // slide + 1
        end = j * slide + length
        # Windows ending at or before the watermark are finished (``_scanned`` is the
        # watermark, see _observe): within the allowed lateness the item fires them
        # again, after it they are gone and the item is not in them.
        while j <= j_last and end <= self._scanned:
            if wm is not None and end + self._lateness > wm:
                fired = self._time_window(key, panes, j, late=True)
                if fired[1]:
                    step = step or Step()
                    step.fired.append(fired)
            j += 1
            end += slide
        if j <= j_last and end < due:
            due = end
        if due < self._next_due:
            self._next_due = due
        return step

    def _fold_value(self, pane: dict[Any, Any], item: Any, step: Step | None) -> Step | None:
        """Fold mode: ``item`` (key, value) into the pane's value for its key."""
        key, value = item
        old = pane.get(key, _MISSING)
        if old is _MISSING:
            if self.held >= self._max:
                step = step or Step()
                step.refused.append(item)
                return step
            pane[key] = value
            self.held += 1
        elif type(old) is not FoldError:
            try:
                pane[key] = self._fold(old, value)  # type: ignore[misc]
            except Exception as exc:
                pane[key] = FoldError(exc)
        return step

    def _fold_held(self, pane: Any, item: Any, step: Step | None) -> Step | None:
        """Fold mode with handles: ``item`` (key, value, handle) into a `_HeldPane`."""
        if self.held >= self._max:
            step = step or Step()
            step.refused.append(item)
            return step
        key, value, handle = item
        entry = pane.get(key)
        if entry is None:
            pane[key] = [value, [handle]]
        else:
            old = entry[0]
            if type(old) is not FoldError:
                try:
                    entry[0] = self._fold(old, value)  # type: ignore[misc]
                except Exception as exc:
                    entry[0] = FoldError(exc)
            entry[1].append(handle)
        pane.order.append(handle)
        self.held += 1
        return step

    def _folded(self, panes: dict[int, Any], first: int, last: int) -> list[Any]:
        """Fold mode: the (key, result) pairs, or (key, result, handles), of the
        panes ``first`` to ``last - 1``, panes combined in time order."""
        hold = self._hold
        found = [pane for pane in map(panes.get, range(first, last)) if pane]
        if len(found) == 1:  # tumbling windows, or one pane with items
            if hold:
                return [(k, e[0], list(e[1])) for k, e in found[0].items()]
            return list(found[0].items())
        fold = self._fold
        assert fold is not None
        results: dict[Any, list[Any]] = {}
        for pane in found:
            for k, e in pane.items():
                value = e[0] if hold else e
                acc = results.get(k)
                if acc is None:
                    results[k] = [value, list(e[1])] if hold else [value]
                    continue
                old = acc[0]
                if type(old) is not FoldError:
                    if type(value) is FoldError:
                        acc[0] = value
                    else:
                        try:
                            acc[0] = fold(old, value)
                        except Exception as exc:
                            acc[0] = FoldError(exc)
                if hold:
                    acc[1].extend(e[1])
        if hold:
            return [(k, acc[0], acc[1]) for k, acc in results.items()]
        return [(k, acc[0]) for k, acc in results.items()]

    def _time_window(
        self, key: Any, panes: dict[int, Any], j: int, late: bool = False
    ) -> tuple[WindowInfo, list[Any]]:
        start = j * self._slide
        end = start + self._length
        g = self._pane
        if self._fold is not None:
            items = self._folded(panes, start // g, end // g)
            return WindowInfo(self._secs(start), self._secs(end), key, late), items
        entries: list[Any] = []
        for p in range(start // g, end // g):
            pane = panes.get(p)
            if pane:
                entries.extend(pane)
        if self._event:
            entries.sort()  # in processing time, arrival order is time order
        return WindowInfo(self._secs(start), self._secs(end), key, late), [e[2] for e in entries]

    def _scan_time(self, wm: int, step: Step | None) -> Step | None:
        slide, length, g, lateness = self._slide, self._length, self._pane, self._lateness
        scanned = self._scanned
        due = _NEVER
        fires: list[tuple[int, int, Any, int]] = []  # (end, key order, key, j)
        dead: list[tuple[dict[int, Any], int]] = []
        for order, (key, panes) in enumerate(self._panes.items()):
            windows: set[int] = set()
            for p in panes:
                ps = p * g
                j_last = ps // slide
                last_end = j_last * slide + length
                j = (ps - length) // slide + 1
                end = j * slide + length
                while j <= j_last:
                    if end > wm:
                        due = min(due, end)
                        break
                    if end > scanned:
                        windows.add(j)
                    j += 1
                    end += slide
                if last_end + lateness <= wm:
                    dead.append((panes, p))
                else:
                    due = min(due, last_end + lateness)
            fires.extend((j * slide + length, order, key, j) for j in windows)
        if fires:
            step = step or Step()
            fires.sort(key=lambda f: (f[0], f[1], f[3]))
            for _, _, key, j in fires:
                fired = self._time_window(key, self._panes[key], j)
                if fired[1]:
                    step.fired.append(fired)
        if dead:
            step = step or Step()
            self._last_pane_index = None
            for panes, p in dead:
                entries = panes.pop(p)
                if self._fold is None:
                    self.held -= len(entries)
                    step.released.extend(e[2] for e in entries)
                elif self._hold:
                    self.held -= len(entries.order)
                    step.released.extend(entries.order)
                else:
                    self.held -= len(entries)
            for key in [k for k, panes in self._panes.items() if not panes]:
                del self._panes[key]
        self._next_due = due
        return step

    def _secs(self, ms: int) -> float:
        return ms // 1000 if self._whole else ms / 1000

    # -- sessions --

    def _insert_session(
        self, entry: Any, key: Any, wm: int | None, step: Step | None
    ) -> Step | None:
        t = entry[0]
        sessions = self._sessions.get(key)
        if sessions is None:
            sessions = self._sessions[key] = []
        start, end = t, t + self._gap
        merged: list[Any] = [entry]
        keep: list[_Session] = []
        for s in sessions:
            if s.start < end and start < s.end:
                start = min(start, s.start)
                end = max(end, s.end)
                merged.extend(s.entries)
            else:
                keep.append(s)
        if wm is not None and end + self._lateness <= wm:
            # too late for any open session: undo and report it late
            self.held -= 1
            if not sessions:
                del self._sessions[key]
            step = step or Step()
            step.late.append(entry[2])
            return step
        session = _Session(start, end, merged)
        keep.append(session)
        keep.sort(key=lambda s: s.start)
        self._sessions[key] = keep
        if end <= self._scanned and wm is not None:
            merged.sort()
            step = step or Step()
            step.fired.append(
                (WindowInfo(start / 1000, end / 1000, key, True), [e[2] for e in merged])
            )
        due = end if end > self._scanned else end + self._lateness
        if due < self._next_due:
            self._next_due = due
        return step

    def _scan_sessions(self, wm: int, step: Step | None) -> Step | None:
        scanned, lateness = self._scanned, self._lateness
        due = _NEVER
        fires: list[tuple[int, int, Any, _Session]] = []
        dead: list[_Session] = []
        for order, (key, sessions) in enumerate(list(self._sessions.items())):
            alive = []
            for s in sessions:
                if scanned < s.end <= wm:
                    fires.append((s.end, order, key, s))
                if s.end + lateness <= wm:
                    dead.append(s)
                else:
                    alive.append(s)
                    due = min(due, s.end if s.end > wm else s.end + lateness)
            if alive:
                self._sessions[key] = alive
            else:
                del self._sessions[key]
        if fires:
            step = step or Step()
            fires.sort(key=lambda f: (f[0], f[1], f[3].start))
            for _, _, key, s in fires:
                s.entries.sort()
                step.fired.append(
                    (WindowInfo(s.start / 1000, s.end / 1000, key), [e[2] for e in s.entries])
                )
        if dead:
            step = step or Step()
            for s in dead:
                s.entries.sort()
                self.held -= len(s.entries)
                step.released.extend(e[2] for e in s.entries)
        self._next_due = due
        return step

    # -- count windows --

    def _add_count(self, item: Any, now_ms: int, key: Any) -> Step | None:
        if self.held >= self._max:
            return Step(refused=[item])
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            self._counts[key] = 0
        queue.append((now_ms, self._seq, item))
        self._seq += 1
        self.held += 1
        n = self._counts[key] = self._counts[key] + 1
        if n % self._slide:
            return None
        window = list(queue)[-self._length :]
        step = Step(
            fired=[
                (WindowInfo(window[0][0] / 1000, window[-1][0] / 1000, key), [e[2] for e in window])
            ]
        )
        keep = max(0, self._length - self._slide)
        while len(queue) > keep:
            step.released.append(queue.popleft()[2])
            self.held -= 1
        if not queue:
            del self._queues[key]
            del self._counts[key]
        return step

    # -- the watermark --

    def _observe(self, t: int, source: Hashable, step: Step | None) -> Step | None:
        """Event time: ``t`` arrived from ``source``; move the watermark if it can."""
        old = self._source_max.get(source)
        if old is not None and t <= old:
            return step
        self._source_max[source] = t
        if self._sources is None:
            newest = t if old is None else max(t, old)
            wm = newest - self._lag
        else:
            if len(self._source_max) < len(self._sources) or not self._sources.issubset(
                self._source_max
            ):
                return step
            wm = min(self._source_max[s] for s in self._sources) - self._lag
        if self.watermark is not None and wm <= self.watermark:
            return step
        self.watermark = wm
        if wm >= self._next_due:
            return self._scan(wm, step)
        # nothing holds a window ending by wm: every window up to it counts as fired
        self._scanned = wm
        return step

    def _advance_to(self, wm: int) -> Step | None:
        """Processing time: the watermark is ``wm`` (now)."""
        if self.watermark is None or wm > self.watermark:
            self.watermark = wm
        if self.watermark < self._next_due:
            self._scanned = self.watermark
            return None
        return self._scan(self.watermark, None)

    def _scan(self, wm: int, step: Step | None) -> Step | None:
        scan = self._scan_time if self.kind == TIME else self._scan_sessions
        step = scan(wm, step)
        self._scanned = wm
        return step

    # -- checkpoints --

    def snapshot(self, to_wire: Callable[[Any], Any]) -> dict[str, Any]:
        """Everything held, msgpack-ready (items through ``to_wire``)."""

        def entries(es: Iterable[Any]) -> list[Any]:
            return [[t, seq, to_wire(item)] for t, seq, item in es]

        data: dict[str, Any] = {
            "kind": self.kind,
            "seq": self._seq,
            "watermark": self.watermark,
            "scanned": None if self._scanned == -_NEVER else self._scanned,
            "source_max": [[s, t] for s, t in self._source_max.items()],
        }
        if self._fold is not None:
            data["folded"] = [
                [key, [self._pane_to_wire(p, pane, to_wire) for p, pane in panes.items()]]
                for key, panes in self._panes.items()
            ]
        elif self.kind == TIME:
            data["groups"] = [
                [key, entries(e for pane in panes.values() for e in pane)]
                for key, panes in self._panes.items()
            ]
        elif self.kind == COUNT:
            data["groups"] = [
                [key, self._counts[key], entries(q)] for key, q in self._queues.items()
            ]
        else:
            data["groups"] = [
                [key, [[s.start, s.end, entries(s.entries)] for s in sessions]]
                for key, sessions in self._sessions.items()
            ]
        return data

    def restore(self, data: dict[str, Any], from_wire: Callable[[Any], Any]) -> None:
        """Take back what `snapshot` saved (items through ``from_wire``)."""
        if data.get("kind") != self.kind:
            raise ValueError(f"saved windows are {data.get('kind')!r}, this bolt's {self.kind!r}")

        def entries(es: Sequence[Any]) -> list[Any]:
            return [(t, seq, from_wire(item)) for t, seq, item in es]

        self._seq = int(data["seq"])
        self.watermark = data["watermark"]
        scanned = data["scanned"]
        self._scanned = -_NEVER if scanned is None else scanned
        self._source_max = {hashable(s): t for s, t in data["source_max"]}
        self.held = 0
        self._last_pane_index = None
        if self._fold is not None:
            self._panes = {}
            for key, panes in data["folded"]:
                restored = self._panes.setdefault(hashable(key), {})
                for saved in panes:
                    p, pane = self._pane_from_wire(saved, from_wire)
                    restored[p] = pane
                    self.held += len(pane.order) if self._hold else len(pane)
        elif self.kind == TIME:
            self._panes = {}
            for key, es in data["groups"]:
                panes = self._panes.setdefault(hashable(key), {})
                for e in entries(es):
                    panes.setdefault(e[0] // self._pane, []).append(e)
                    self.held += 1
        elif self.kind == COUNT:
            for key, count, es in data["groups"]:
                self._queues[hashable(key)] = deque(entries(es))
                self._counts[hashable(key)] = count
                self.held += len(es)
        else:
            for key, sessions in data["groups"]:
                self._sessions[hashable(key)] = [
                    _Session(start, end, entries(es)) for start, end, es in sessions
                ]
                self.held += sum(len(es) for _, _, es in sessions)
        self._next_due = -_NEVER  # the next scan recomputes what is due

    def _pane_to_wire(self, p: int, pane: Any, to_wire: Callable[[Any], Any]) -> list[Any]:
        """A fold-mode pane as ``[p, [[key, value, error or None], ...], handles]``;
        handles (hold mode, else None) are ``[key index, handle]`` in arrival order."""
        entries = []
        where = {}
        for i, (k, e) in enumerate(pane.items()):
            value = e[0] if self._hold else e
            where[k] = i
            if type(value) is FoldError:
                entries.append([k, None, f"{type(value.error).__name__}: {value.error}"])
            else:
                entries.append([k, value, None])
        if not self._hold:
            return [p, entries, None]
        key_of = {id(h): k for k, e in pane.items() for h in e[1]}
        return [p, entries, [[where[key_of[id(h)]], to_wire(h)] for h in pane.order]]

    def _pane_from_wire(self, saved: Sequence[Any], from_wire: Callable[[Any], Any]) -> Any:
        p, entries, handles = saved
        values = []
        for k, value, error in entries:
            values.append((hashable(k), value if error is None else FoldError(RuntimeError(error))))
        if not self._hold:
            return p, dict(values)
        pane = _HeldPane()
        for k, value in values:
            pane[k] = [value, []]
        for i, wire in handles or []:
            handle = from_wire(wire)
            pane[values[i][0]][1].append(handle)
            pane.order.append(handle)
        return p, pane


def _timestamp(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"an event-time timestamp must be a number of seconds, got {value!r}")
    return math.floor(value * 1000 + 1e-6)
