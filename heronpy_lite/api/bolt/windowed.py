"""Windowed bolts with Storm's features: heronpy_lite's extension of heronpy.

heronpy has two processing-time window bolts (`window_bolt`); this module
adds one bolt class, `WindowedBolt`, configured by a `Windowing`:

- time windows, sliding or tumbling (seconds), and count windows (tuples);
- processing time (arrival), or event time from a tuple field with a
  watermark that stays ``lag`` behind the newest timestamp (bounded
  out-of-orderness) and ``allowed_lateness`` during which late tuples still
  update a window (it fires again with ``window.late`` set);
- tuples too late for every window go to a named late stream, or are
  dropped, counted (``window_late``) and logged;
- session windows by gap, per key;
- bounded memory: at most ``max_tuples`` held; beyond it a tuple is failed
  (replayed in ATLEAST_ONCE), counted (``window_refused``) and logged;
- ATLEAST_ONCE as Storm does it: emits inside ``process_window`` are
  anchored to the window's tuples (unless you pass ``anchors``), and each
  tuple is acked once the last window that needs it is finished, so a crash
  replays whatever was not yet in a fired window.

Example::

    from heronpy_lite.api.bolt.windowed import WindowedBolt, Windowing

    class ClicksPerUser(WindowedBolt):
        outputs = ["user", "clicks", "start", "end"]
        windowing = Windowing.sliding(60, 10, timestamp="ts", lag=5,
                                      late_stream="late")

        def process_window(self, window, tuples):
            counts = collections.Counter(t.values[0] for t in tuples)
            for user, n in counts.items():
                self.emit([user, n, window.start, window.end])

``timestamp`` and ``key`` may name fields when the bolt's inputs are given
as component specs (their declared outputs say where the field is), or be a
field index, or a function of the tuple. The window core itself, with its
exact rules, is `heronpy_lite.api.bolt._windows`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from heronpy_lite.api import api_constants
from heronpy_lite.api.bolt._windows import (
    DEFAULT_MAX_TUPLES,
    SESSION,
    TIME,
    FoldError,
    Step,
    WindowInfo,
    Windowing,
    WindowState,
    hashable,
)
from heronpy_lite.api.bolt.bolt import Bolt
from heronpy_lite.api.component.component_spec import GlobalStreamId, HeronComponentSpec
from heronpy_lite.api.metrics import CountMetric, IMetric
from heronpy_lite.api.state.stateful_component import StatefulComponent
from heronpy_lite.api.stream import Stream
from heronpy_lite.api.tuple import HeronTuple
from heronpy_lite.errors import TopologyError

__all__ = ["DEFAULT_MAX_TUPLES", "LATE_FIELDS", "WindowInfo", "WindowedBolt", "Windowing"]

#: the fields of the late stream: where the tuple came from, its values, its timestamp
LATE_FIELDS = ["component", "stream", "values", "timestamp"]

#: the longest and shortest tick period a processing-time window bolt uses
_TICK_MAX_SECS = 0.1
_TICK_MIN_SECS = 0.01
_FULL_LOGS = 5


class RateLimitedLog:
    """The first few occurrences of a problem in full, then every 1000th."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.counts: dict[str, int] = {}

    def __call__(
        self, what: str, message: str, *args: Any, exc: BaseException | None = None
    ) -> None:
        n = self.counts[what] = self.counts.get(what, 0) + 1
        if n <= _FULL_LOGS:
            self.logger.error(message, *args, exc_info=exc)
        elif n % 1000 == 0:
            self.logger.error(message + " (%d so far)", *args, n)


class HeldTuples(IMetric):
    """A gauge: how many tuples the windows of this task hold."""

    def __init__(self, held: Callable[[], int]) -> None:
        self._held = held

    def get_value_and_reset(self) -> int:
        return self._held()


class _FieldIndexes:
    """Where named fields sit in each input stream, resolved once the inputs'
    names are known (a `Topology` class names its specs after `spec()` ran)."""

    def __init__(self, inputs: Any, names: list[str], bolt: str) -> None:
        keys = list(inputs) if isinstance(inputs, (dict, list, tuple)) else []
        self._streams: list[tuple[HeronComponentSpec, str]] = []
        for key in keys:
            if isinstance(key, HeronComponentSpec):
                self._streams.append((key, Stream.DEFAULT_STREAM_ID))
            elif isinstance(key, GlobalStreamId) and isinstance(
                key._component_id, HeronComponentSpec
            ):
                self._streams.append((key._component_id, key.stream_id))
            else:
                raise TopologyError(
                    f"{bolt}: Windowing names the fields {names}, which needs the inputs "
                    f"given as component specs (got {key!r}); or give a field index or a "
                    "function of the tuple"
                )
        self._names = names
        for spec, stream in self._streams:
            fields = spec.output_fields().get(stream, [])
            missing = [n for n in names if n not in fields]
            if missing:
                raise TopologyError(
                    f"{bolt}: input {spec.name or spec.python_class_path}:{stream} has no "
                    f"field {missing[0]!r} (fields: {', '.join(fields) or 'none'})"
                )

    def resolve(self) -> dict[tuple[str, str], dict[str, int]]:
        result = {}
        for spec, stream in self._streams:
            fields = spec.output_fields()[stream]
            result[(str(spec.name), stream)] = {n: fields.index(n) for n in self._names}
        return result


def _extractor(
    spec: Any, indexes: dict[tuple[str, str], dict[str, int]] | None
) -> Callable[[Any], Any]:
    """A function tuple -> value for a timestamp or key spec (see `Windowing`)."""
    if callable(spec):
        return spec  # type: ignore[no-any-return]
    if isinstance(spec, (list, tuple)):
        parts = [_extractor(s, indexes) for s in spec]
        return lambda tup: tuple(hashable(p(tup)) for p in parts)
    if isinstance(spec, int):
        i = spec
        return lambda tup: tup.values[i]
    assert indexes is not None
    by_source = {source: where[spec] for source, where in indexes.items()}

    def by_name(tup: Any) -> Any:
        return tup.values[by_source[(tup.component, tup.stream)]]

    return by_name


def tuple_to_wire(tup: Any) -> list[Any]:
    """A held tuple as a checkpoint stores it (its tree is not kept)."""
    return [tup.component, tup.stream, tup.task, tup.values, tup.creation_time]


def tuple_from_wire(wire: Any) -> HeronTuple:
    component, stream, task, values, created = wire
    return HeronTuple(None, component, stream, task, values, created, None)


class WindowedBolt(Bolt, StatefulComponent):
    """A bolt that sees its input as windows: override ``process_window``.

    Set the class attribute ``windowing`` (or the component config key
    ``WINDOWING``) to a `Windowing`. Do not override ``process`` or
    ``process_tick``: they feed the windows. ``initialize`` may be
    overridden if it calls ``super().initialize(config, context)`` first.
    """

    #: the windows of this bolt (a class attribute, or the config key WINDOWING)
    windowing: Windowing | None = None
    WINDOWING = "windowedbolt_windowing"
    _FIELDS = "windowedbolt_field_indexes"

    _clock: Callable[[], float] = staticmethod(time.time)
    _window_anchors: list[Any] | None = None
    _saved_state: Any = None

    @classmethod
    def spec(
        cls,
        name: str | None = None,
        inputs: Any = None,
        par: int = 1,
        config: dict[str, Any] | None = None,
        optional_outputs: list[str | Stream] | None = None,
    ) -> HeronComponentSpec:
        """Declare this bolt, as `Bolt.spec` does; the late stream is declared too."""
        config = dict(config or {})
        windowing = config.get(cls.WINDOWING, cls.windowing)
        where = name or cls.__name__
        if not isinstance(windowing, Windowing):
            raise TopologyError(
                f"{where}: a WindowedBolt needs a Windowing (class attribute 'windowing' "
                f"or config key {cls.WINDOWING!r}), got {windowing!r}"
            )
        outputs = list(optional_outputs or [])
        if windowing.late_stream is not None:
            outputs.append(Stream(LATE_FIELDS, windowing.late_stream))
        named = [
            s
            for spec in (windowing.timestamp, windowing.key)
            for s in (spec if isinstance(spec, (list, tuple)) else [spec])
            if isinstance(s, str)
        ]
        if named:
            config[cls._FIELDS] = _FieldIndexes(inputs, named, where)
        return super().spec(name, inputs, par, config, outputs)

    # -- lifecycle --

    def init_state(self, stateful_state: Any) -> None:
        """Keep the checkpointed state; ``initialize`` takes the windows back from it."""
        self._saved_state = stateful_state

    def pre_save(self, checkpoint_id: Any) -> None:
        """Store every held tuple and the window positions in the state."""
        if self._saved_state is not None:
            self._saved_state["windows"] = self._windows.snapshot(tuple_to_wire)

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        windowing = config.get(self.WINDOWING, self.windowing)
        if not isinstance(windowing, Windowing):
            raise ValueError(f"{type(self).__name__} has no Windowing")
        self._windowing = windowing
        self._reliable = (
            config.get(api_constants.TOPOLOGY_RELIABILITY_MODE)
            == api_constants.TopologyReliabilityMode.ATLEAST_ONCE
        )
        self._check_timeout(config)
        fields = config.get(self._FIELDS)
        indexes = fields.resolve() if isinstance(fields, _FieldIndexes) else None
        self._timestamp_of = (
            _extractor(windowing.timestamp, indexes) if windowing.event_time else None
        )
        self._key_of = _extractor(windowing.key, indexes) if windowing.key is not None else None
        sources = None
        if windowing.event_time and context is not None:
            sources = [(s.component_name, s.id) for s in (context.get_this_sources() or {})]
        fold = self._fold()
        #: fold mode (see `_fold`): the windows hold (key, folded value) pairs
        self._folding = fold is not None
        #: fold mode at least once: the windows also hold the tuples, to ack and anchor
        self._holding = self._folding and self._reliable
        self._windows = WindowState(windowing, sources, fold, hold=self._holding)
        saved = self._saved_state
        if saved is not None and "windows" in saved:
            self._windows.restore(saved["windows"], tuple_from_wire)
        if windowing.kind in (TIME, SESSION) and not windowing.event_time:
            # processing time: ticks move the windows (the engine arms them from the
            # config as initialize leaves it, as heronpy's window bolts rely on)
            period = windowing.gap if windowing.kind == SESSION else windowing.slide
            tick = min(_TICK_MAX_SECS, max(_TICK_MIN_SECS, float(period) / 10))
            config[api_constants.TOPOLOGY_TICK_TUPLE_FREQ_SECS] = tick
        self._late_count = CountMetric()
        self._refused_count = CountMetric()
        self._error_count = CountMetric()
        self._complain = RateLimitedLog(self.logger)
        if context is not None:
            context.register_metric("window_late", self._late_count, 1)
            context.register_metric("window_refused", self._refused_count, 1)
            context.register_metric("window_errors", self._error_count, 1)
            context.register_metric("window_held", HeldTuples(lambda: self._windows.held), 1)

    def _check_timeout(self, config: dict[str, Any]) -> None:
        hold = self._windowing.hold_secs
        if not self._reliable or hold is None:
            return
        if not config.get(api_constants.TOPOLOGY_ENABLE_MESSAGE_TIMEOUTS, True):
            return
        timeout = float(config.get(api_constants.TOPOLOGY_MESSAGE_TIMEOUT_SECS, 30))
        needed = hold + float(self._windowing.slide)
        if needed >= timeout:
            raise ValueError(
                f"window length + slide ({needed:g}s) must be shorter than "
                f"{api_constants.TOPOLOGY_MESSAGE_TIMEOUT_SECS} ({timeout:g}s) in ATLEAST_ONCE: "
                "tuples held longer would time out and be replayed"
            )

    # -- what users write --

    def process_window(self, window: WindowInfo, tuples: list[Any]) -> None:
        """Called once per window, with its tuples in time order (arrival order in
        processing time). Emits here are anchored to ``tuples`` in ATLEAST_ONCE."""
        raise NotImplementedError("WindowedBolt.process_window is not implemented")

    def emit(
        self,
        tup: list[Any] | tuple[Any, ...],
        stream: str = Stream.DEFAULT_STREAM_ID,
        anchors: list[Any] | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        """`Bolt.emit`; inside ``process_window`` in ATLEAST_ONCE, ``anchors``
        defaults to the window's tuples (pass ``anchors=[]`` for none)."""
        if anchors is None:
            anchors = self._window_anchors
        task_ids: list[int] | None = self.delegate.emit(
            tup,
            stream=stream,
            anchors=anchors,
            direct_task=direct_task,
            need_task_ids=need_task_ids,
        )
        return task_ids

    # -- feeding the windows --

    def _fold(self) -> Callable[[Any, Any], Any] | None:
        """For subclasses that need only one folded value per key and window, not
        the values of every tuple (time windows): the fold function, which must be
        associative (see `_windows`). The windows then fold `_item` (key, value)
        pairs per pane as they arrive, and ``process_window`` gets (key, result)
        pairs; at most once the tuples are acked at once, at least once they are
        held per key and pane (not their values) and ``process_window`` gets (key,
        result, the key's tuples in the window), to anchor to."""
        return None

    def _item(self, tup: Any) -> Any:
        """What the windows keep of a tuple: the tuple, or in fold mode (key, value)."""
        return tup

    def process(self, tup: Any) -> None:
        key = self._key_of(tup) if self._key_of is not None else None
        if self._folding:
            item = self._item(tup)
            if self._holding:
                item = (item[0], item[1], tup)
        else:
            item = tup
        if self._timestamp_of is None:
            step = self._windows.add(item, self._clock(), None, key)
        else:
            try:
                timestamp = self._timestamp_of(tup)
                step = self._windows.add(
                    item, self._clock(), timestamp, key, (tup.component, tup.stream)
                )
            except (ValueError, TypeError, LookupError) as exc:
                # no window can ever take it: replaying it would not help
                self._error_count.incr()
                self._complain(
                    "timestamp",
                    "%s: a tuple from %s:%s has no usable timestamp (%s); dropped",
                    self._name(),
                    tup.component,
                    tup.stream,
                    exc,
                )
                self.ack(tup)
                return
        if self._folding and not self._holding:
            self.ack(tup)  # nothing will need it again
        if step is not None:
            self._run(step)

    def process_tick(self, tup: Any) -> None:
        step = self._windows.advance(self._clock())
        if step is not None:
            self._run(step)

    def _name(self) -> str:
        return type(self).__name__

    def _without_errors(self, window: WindowInfo, items: list[Any], failed: set[int]) -> list[Any]:
        """Fold mode: the window's (key, result, ...) items without those whose fold
        raised (a `FoldError`): each is counted (``window_errors``) and logged, and
        at least once its tuples are failed when they are released."""
        if not any(type(item[1]) is FoldError for item in items):
            return items
        kept = []
        for item in items:
            error = item[1]
            if type(error) is not FoldError:
                kept.append(item)
                continue
            self._error_count.incr()
            self._complain(
                "fold",
                "%s: the reduce function raised %s: %s for key %r in window %s; no result "
                "for that key in the windows holding the value%s",
                self._name(),
                type(error.error).__name__,
                error.error,
                item[0],
                window,
                ", its tuples are failed" if self._holding else "",
                exc=error.error,
            )
            if self._holding:
                failed.update(id(t) for t in item[2])
        return kept

    def _run_folded(self, step: Step) -> None:
        """Fold mode: what is late or refused (released tuples are done)."""
        if step.late:
            self._late_count.incr(len(step.late))
            self._complain(
                "late",
                "%s: an element came after every window it belongs to was finished "
                "(watermark %s); dropped",
                self._name(),
                self._windows.watermark,
            )
            if self._holding:
                for item in step.late:
                    self.ack(item[2])
        if step.refused:
            self._refused_count.incr(len(step.refused))
            self._complain(
                "refused",
                "%s: the windows hold max_tuples (%d) %s; an element is %s (raise "
                "max_tuples or shorten the windows)",
                self._name(),
                self._windowing.max_tuples,
                "tuples" if self._holding else "values (a key in a pane)",
                "failed" if self._holding else "dropped",
            )
            if self._holding:
                for item in step.refused:
                    self.fail(item[2])

    def _run(self, step: Step) -> None:
        failed: set[int] = set()
        folding, holding = self._folding, self._holding
        for window, tuples in step.fired:
            if folding:
                tuples = self._without_errors(window, tuples, failed)
                if not tuples:
                    continue
                self._window_anchors = None  # the subclass anchors to each key's tuples
            else:
                self._window_anchors = tuples if self._reliable else None
            try:
                self.process_window(window, tuples)
            except Exception as exc:
                self._error_count.incr()
                self._complain(
                    "process_window",
                    "process_window(%s) of %s raised %s: %s; its tuples are failed",
                    window,
                    self._name(),
                    type(exc).__name__,
                    exc,
                    exc=exc,
                )
                if holding:
                    failed.update(id(t) for _, _, held in tuples for t in held)
                elif not folding:
                    failed.update(id(t) for t in tuples)
            finally:
                self._window_anchors = None
        for tup in step.released:
            if id(tup) in failed:
                self.fail(tup)
            else:
                self.ack(tup)
        if folding:
            self._run_folded(step)
            return
        for tup in step.late:
            self._late_count.incr()
            late_stream = self._windowing.late_stream
            if late_stream is not None:
                ts = self._timestamp_of(tup) if self._timestamp_of is not None else None
                self.delegate.emit(
                    [tup.component, tup.stream, tup.values, ts],
                    stream=late_stream,
                    anchors=[tup] if self._reliable else None,
                )
            else:
                self._complain(
                    "late",
                    "%s: a tuple from %s:%s came after every window it belongs to was "
                    "finished (watermark %s); dropped (set Windowing late_stream to keep it)",
                    self._name(),
                    tup.component,
                    tup.stream,
                    self._windows.watermark,
                )
            self.ack(tup)
        for tup in step.refused:
            self._refused_count.incr()
            self._complain(
                "refused",
                "%s: the windows hold %d tuples (max_tuples); a tuple from %s:%s is failed "
                "(raise max_tuples or shorten the windows)",
                self._name(),
                self._windows.held,
                tup.component,
                tup.stream,
            )
            self.fail(tup)
