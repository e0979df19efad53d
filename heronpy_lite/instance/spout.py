"""A spout task: rounds of ``next_tuple``, its trees' verdicts, its topology state.

Theory of operation
-------------------
The runner calls `SpoutInstance.run_round` while `blocked` says nothing
stands in the way: the topology is RUNNING (else the spout is deactivated),
the stream manager has not throttled it (backpressure), and in ATLEAST_ONCE
fewer than ``topology.max.spout.pending`` trees are pending (heronpy's rule:
at most once it does not apply). A round calls ``next_tuple`` repeatedly,
within a time and call budget (``heron.instance.emit.batch.*``), stopping
early once a call emits nothing, once the unsent output passes
``heron.instance.out.buffer.high.bytes``, or at max spout pending, which is
checked after every call. A quick spout is called 32 times between checks
of the other limits (``call_repeatedly``).

After a round, ids emitted at most once (or with no consumer) are acked at
once, as heronpy does. At least once the stream manager's verdicts arrive
as acking bodies (`on_verdicts`): ``ack``/``fail`` per tree. Trees the stream
manager never answers for (it died and forgot them) fail here after
``2 * topology.message.timeout.secs + 1``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from heronpy_lite.api.spout.spout import Spout
from heronpy_lite.instance.task import TaskInstance
from heronpy_lite.wire import metric_names as names

#: a spout whose first next_tuple of a round is quick is then called this many
#: times between checks of the round's limits; max spout pending is checked
#: after every call
SPOUT_CHUNK = 32


class Blocked(enum.Enum):
    """Why a spout's ``next_tuple`` is not called right now."""

    INACTIVE = "deactivated"
    THROTTLED = "throttled by backpressure"
    MAX_PENDING = "at max spout pending"
    RESTORING = "waiting for every task to restore a checkpoint"


@dataclass(frozen=True, slots=True)
class RoundLimits:
    """One round of ``next_tuple`` calls (``heron.instance.emit.batch.*``)."""

    max_calls: int = 2048
    budget_secs: float = 0.010
    out_limit_bytes: int = 2 * 1024 * 1024


class SpoutInstance(TaskInstance):
    is_spout = True

    def __init__(
        self,
        *,
        message_timeout_secs: float | None = None,
        max_pending: int = 0,
        rounds: RoundLimits = RoundLimits(),  # frozen
        **task: Any,
    ) -> None:
        super().__init__(**task)
        self.rounds = rounds
        #: max spout pending applies at least once only (heronpy's rule)
        self.max_pending = max_pending if self.reliable else 0
        self.instance_timeout = 2 * message_timeout_secs + 1 if message_timeout_secs else None
        self._next_expiry = self.clock() + (self.instance_timeout or 0) / 2
        self.active = False
        self.throttled = False
        #: EFFECTIVELY_ONCE: restored, waiting for every task to be (Resume)
        self.restoring = False
        self._throttled_since: float | None = None
        self.throttled_seconds = 0.0
        # counters
        self.next_tuple_calls = 0
        self.completed = 0
        self.spout_acked = 0
        self.spout_failed = 0
        self.complete_latency_sum = 0.0
        self.timed_out = 0

    # -- state --

    def set_active(self, active: bool, initial: bool = False) -> None:
        """The topology's state: ``activate``/``deactivate`` on changes (neither at
        the start: a spout starts active, or deactivated without a call)."""
        if active == self.active and not initial:
            return
        was_active = self.active
        self.active = active
        if active:
            if not initial:
                self.call_user("activate", self.component.activate)
        elif was_active or not initial:
            self.call_user("deactivate", self.component.deactivate)

    def set_throttled(self, throttled: bool, now: float) -> None:
        """The stream manager's backpressure; the time from its "stop" to its "go"
        is counted, wherever the spout loop is meanwhile."""
        self.throttled = throttled
        if throttled:
            if self._throttled_since is None:
                self._throttled_since = now
        elif self._throttled_since is not None:
            self.throttled_seconds += now - self._throttled_since
            self._throttled_since = None

    def blocked(self) -> Blocked | None:
        if not self.active:
            return Blocked.INACTIVE
        if self.restoring:
            return Blocked.RESTORING
        if self.throttled:
            return Blocked.THROTTLED
        if self.max_pending and len(self.in_flight) >= self.max_pending:
            return Blocked.MAX_PENDING
        return None

    # -- the round --

    def run_round(self) -> bool:
        """Call ``next_tuple`` as the round's limits allow; True if it emitted."""
        limits = self.rounds
        clock = self.clock
        in_flight = self.in_flight
        max_pending = self.max_pending
        pending = in_flight if max_pending else None  # what call_repeatedly watches
        call_repeatedly = self.path.call_repeatedly
        next_tuple = self.component.next_tuple
        emitter = self.emitter
        chunk_below = limits.budget_secs / (4 * SPOUT_CHUNK)  # a first call this quick
        start = clock()
        emitted_before = emitter.count
        calls = 0
        step = 1
        while calls < limits.max_calls:
            before = emitter.count
            done, exc = call_repeatedly(next_tuple, step, pending, max_pending)
            calls += done
            if exc is not None:
                self.user_exception("next_tuple", exc)
            if max_pending and len(in_flight) >= max_pending:
                break
            if emitter.count == before:
                break  # nothing to emit right now
            if emitter.outbox_bytes > limits.out_limit_bytes:
                break  # large tuples: write before emitting more
            elapsed = clock() - start
            if elapsed > limits.budget_secs:
                break
            if step == 1 and elapsed < chunk_below:
                step = SPOUT_CHUNK
        self.next_tuple_calls += calls
        self.ack_immediately()
        return emitter.count != emitted_before

    def ack_immediately(self) -> None:
        """The spout's ``ack`` for the ids emitted since the last call that need no
        tree: every id at most once (heronpy's rule), an emit without consumers."""
        immediate = self.emitter.immediate
        if not immediate:
            return
        ids = immediate[:]
        immediate.clear()  # the emitter keeps this list
        self.spout_acked += len(ids)
        self._ack_spout(ids)

    # -- verdicts --

    def on_verdicts(self, body: bytes | memoryview) -> None:
        """The stream manager's verdicts on this spout's trees (an acking body):
        ``ack``/``fail``. A malformed body raises `RemoteProtocolError`."""
        acked, latency, failed = self.in_flight.resolve(body, self.clock())
        self.completed += len(acked)
        self.spout_acked += len(acked)
        self.complete_latency_sum += latency
        self._ack_spout(acked)
        for tup_id in failed:
            self.spout_failed += 1
            self.call_user("fail", self.component.fail, tup_id)

    def _ack_spout(self, tup_ids: list[Any]) -> None:
        """The spout's ``ack`` for each id; not called while the component's ``ack`` is
        heronpy's no-op ``Spout.ack`` (a task hook wraps it: see task_hooks). An
        exception is reported and the other ids still go."""
        if not tup_ids or getattr(self.component.ack, "__func__", None) is Spout.ack:
            return
        ack = self.component.ack
        for tup_id in tup_ids:
            try:
                ack(tup_id)
            except Exception as exc:
                self.user_exception("ack", exc)

    def next_expiry(self) -> float:
        """When `expire_in_flight` has work next (inf: never)."""
        if self.instance_timeout is None or not len(self.in_flight):
            return float("inf")
        return self._next_expiry

    def expire_in_flight(self, now: float) -> None:
        """Fail trees the stream manager never answered for (it died and forgot them)."""
        if self.instance_timeout is None or not len(self.in_flight) or now < self._next_expiry:
            return
        self._next_expiry = now + self.instance_timeout / 2
        for tup_id in self.in_flight.expire(now - self.instance_timeout):
            self.timed_out += 1
            self.spout_failed += 1
            self.call_user("fail", self.component.fail, tup_id)

    # -- metrics --

    def collect(self, base: dict[str, str]) -> list[Any]:
        throttled = self.throttled_seconds
        if self._throttled_since is not None:  # throttled right now
            throttled += self.clock() - self._throttled_since
        return [
            *super().collect(base),
            [names.ACKED, "counter", base, self.spout_acked],
            [names.FAILED, "counter", base, self.spout_failed],
            [names.SPOUT_EXPIRED, "counter", base, self.timed_out],
            [names.NEXT_TUPLE, "counter", base, self.next_tuple_calls],
            [names.PENDING, "gauge", base, len(self.in_flight)],
            [names.SPOUT_THROTTLED, "counter", base, throttled],
            [names.COMPLETE_LATENCY, "summary", base, [self.completed, self.complete_latency_sum]],
        ]
