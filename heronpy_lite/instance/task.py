"""What every task is: the delegate its component is built with.

Theory of operation
-------------------
heronpy's runtime builds a component as ``cls(delegate=task)``; the
component's ``emit``, ``ack``, ``fail``, ``log`` and ``logger`` forward to the
delegate. `TaskInstance` is that delegate, with what spouts and bolts share;
`SpoutInstance` (spout.py) and `BoltInstance` (bolt.py) add the rest, as
Heron's instance has ``spout_instance`` and ``bolt_instance``.

The per-tuple work is the tuple path's (`tuplepath`): ``emit`` *is* its
`Emitter`, which also frames batches into its outbox; ``ack``/``fail`` are its
`AckOut`'s. A task never touches a socket or a clock of its own: the caller
passes ``now``, takes finished frames with `take_output` and writes them.

User exceptions (``process``, ``next_tuple``, ``process_tick``, ``ack``...)
are caught at this boundary through `user_exception`: logged (the first few
of each type with a traceback, then every 1000th) and counted by type. The
task keeps running. Misuse the tuple path reports (an ack of something that
is not a received tuple, a tuple acked twice) is logged the same way,
rate-limited per message.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from heronpy_lite.api.metrics import CountMetric, IMetric, MultiCountMetric
from heronpy_lite.instance import tuplepath
from heronpy_lite.instance.exception_log import ExceptionLog
from heronpy_lite.instance.routing import StreamSpec
from heronpy_lite.wire import metric_names as names

_LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    None: logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
#: user exceptions of one type logged in full; after these, every 1000th
FULL_LOGS_PER_TYPE = 5


@dataclass(frozen=True, slots=True)
class Batching:
    """How a task turns tuples into frames (``heron.instance.batch.*``,
    ``heron.wire.max.frame.bytes``)."""

    max_tuples: int = 1024
    max_bytes: int = 1 << 20
    max_frame_bytes: int = 32 * 1024 * 1024


@dataclass(slots=True)
class _UserMetric:
    metric: IMetric
    bucket: float
    due: float
    counting: bool
    values: dict[str, float] = field(default_factory=dict)


class TaskInstance:
    """The delegate of one task. Build it, set ``component``, then feed it."""

    is_spout: ClassVar[bool]

    #: ``emit(tup, ...)`` with the component's own positional order (Spout.emit's
    #: or Bolt.emit's); both accept every keyword
    emit: Callable[..., list[int] | None]

    def __init__(
        self,
        *,
        topology: str,
        task_id: int,
        component: str,
        streams: dict[str, StreamSpec],
        task_components: dict[int, str],
        logger: logging.Logger,
        batching: Batching = Batching(),  # frozen
        reliable: bool = False,
        clock: Callable[[], float] = time.monotonic,
        path: tuplepath.TuplePath | None = None,
    ) -> None:
        self.topology = topology
        self.task_id = task_id
        self.component_name = component
        self.logger = logger
        self.path = path or tuplepath.default()
        self.task_components = task_components
        self.reliable = reliable
        self.clock = clock
        self.component: Any = None
        self.exceptions: Counter[str] = Counter()
        #: the recent ones, with tracebacks (status, the tracker, the UI)
        self.exception_log = ExceptionLog()
        self._warnings: Counter[str] = Counter()
        self._user_metrics: dict[str, _UserMetric] = {}
        self.in_flight: tuplepath.InFlight = self.path.InFlight()
        self.acks: tuplepath.AckOut = self.path.AckOut(self.warn)
        self.emitter: tuplepath.Emitter = self.path.Emitter(
            list(streams.values()),
            task_id=task_id,
            component=component,
            bolt=not self.is_spout,
            reliable=reliable,
            batch_max_tuples=batching.max_tuples,
            batch_max_bytes=batching.max_bytes,
            max_frame_bytes=batching.max_frame_bytes,
            in_flight=self.in_flight,
            acks=self.acks,
            warn=self.warn,
            clock=clock,
        )
        self.emit = self.emitter

    # -- the delegate interface (called by user code) --

    def log(self, message: str, level: str | None = None) -> None:
        if level not in _LOG_LEVELS:
            raise ValueError(f"{level!s} is not supported as logging level")
        self.logger.log(_LOG_LEVELS[level], message)

    def register_metric(self, name: str, metric: IMetric, bucket: float, now: float) -> None:
        """``context.register_metric``: sample ``metric`` every ``bucket`` seconds."""
        counting = isinstance(metric, (CountMetric, MultiCountMetric))
        self._user_metrics[name] = _UserMetric(metric, float(bucket), now + bucket, counting)

    # -- output --

    @property
    def has_pending(self) -> bool:
        """Whether open batches or acking traffic wait for a `flush`."""
        return self.emitter.has_pending

    @property
    def outbox_bytes(self) -> int:
        return self.emitter.outbox_bytes

    def flush(self) -> None:
        """Every open batch, and the acking traffic, into frames."""
        self.emitter.flush()

    def take_output(self) -> list[bytes]:
        """The finished frames, in order (acking frames before the data after them)."""
        return self.emitter.take()

    # -- timers --

    def next_metric_sample(self) -> float:
        """When `sample_metrics` has work next (inf: never)."""
        return min((m.due for m in self._user_metrics.values()), default=float("inf"))

    def sample_metrics(self, now: float) -> None:
        """Sample the user metrics whose bucket ended: counters accumulate, gauges
        keep the last bucket's value."""
        for entry in self._user_metrics.values():
            if now < entry.due:
                continue
            entry.due = now + entry.bucket
            value = self.call_user("get_value_and_reset", entry.metric.get_value_and_reset)
            values = value if isinstance(value, dict) else {"": value}
            current = entry.values
            for key, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    k = str(key)
                    current[k] = current.get(k, 0) + v if entry.counting else v

    # -- user code --

    def call_user(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            self.user_exception(what, exc)
            return None

    def user_exception(self, where: str, exc: BaseException, message: str = "") -> None:
        name = type(exc).__name__
        self.exceptions[name] += 1
        self.exception_log.record(where, exc, time.time())
        count = self.exceptions[name]
        text = message or f"{where}() raised {name}: {exc}"
        if count <= FULL_LOGS_PER_TYPE:
            self.logger.error("%s", text, exc_info=exc)
        elif count % 1000 == 0:
            self.logger.error("%s (%d so far)", text, count)

    def warn(self, message: str) -> None:
        """A misuse that costs only a message: logged the first few times, then
        every 1000th, with its count."""
        self._warnings[message] += 1
        count = self._warnings[message]
        if count <= FULL_LOGS_PER_TYPE:
            self.logger.warning("%s", message)
        elif count % 1000 == 0:
            self.logger.warning("%s (%d times so far)", message, count)

    # -- metrics --

    @property
    def emitted(self) -> dict[str, int]:
        """Tuples emitted, by stream (streams with none left out)."""
        return self.emitter.counts()

    @property
    def emit_count(self) -> int:
        return self.emitter.count

    @property
    def dropped(self) -> int:
        """Emits refused because their values cannot be packed or are too large."""
        return self.emitter.rejected

    def collect(self, base: dict[str, str]) -> list[Any]:
        """The samples every task reports (see wire/metric_names.py); ``base``: its labels."""
        out: list[Any] = [[names.DROPPED, "counter", base, self.dropped]]
        for stream, n in self.emitted.items():
            out.append([names.EMITTED, "counter", {**base, "stream": stream}, n])
        for exc_type, n in self.exceptions.items():
            out.append([names.EXCEPTIONS, "counter", {**base, "type": exc_type}, n])
        for name, entry in self._user_metrics.items():
            kind = "counter" if entry.counting else "gauge"
            metric = names.user_metric_name(name) + ("_total" if entry.counting else "")
            for key, v in entry.values.items():
                out.append([metric, kind, {**base, "key": key} if key else base, v])
        return out
