"""The instance core: frames from the stream manager in, frames out, user code
called in between. No asyncio, no sockets; time is passed in.

Theory of operation
-------------------
`InstanceCore` is what an instance process *decides*; `runner.py` only
connects, reads, feeds it, writes what it gives and waits. Its inputs:

- `connected()` / `disconnected(now)`: the link to the stream manager;
  `connected` returns what to send first: the handshake's hello with a
  topology secret (the registration follows once the stream manager has
  proved it knows the secret), the registration otherwise.
- `receive(frames, now)`: decoded frames, checked against the lifecycle's
  table (`lifecycle.ALLOWED`). The first physical plan builds the task: the
  component is made as ``cls(delegate=task)``, ``initialize(config,
  context)`` runs, and the tick timer is armed from the config as
  ``initialize`` left it. DATA frames go to the bolt, ACK frames (verdicts)
  to the spout, throttle notices and plan updates to the spout's state.
- `on_timer(now)`: ticks, user-metric samples, a due flush, in-flight expiry;
  `next_deadline()` says when it is next due.
- `flush_due(now)` / `flush(now)`: the batching timer (a partial batch waits
  at most ``heron.instance.flush.interval.ms``).

Its outputs: `output()` (control frames first, then the task's frames, in
order) and `phase` (FAILED means exit).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from heronpy_lite.api.api_constants import (
    TOPOLOGY_MAX_SPOUT_PENDING,
    TOPOLOGY_RELIABILITY_MODE,
    TOPOLOGY_TICK_TUPLE_FREQ_SECS,
)
from heronpy_lite.api.bolt.bolt import BaseBolt
from heronpy_lite.api.spout.spout import BaseSpout
from heronpy_lite.api.topology import TopologyDefinition
from heronpy_lite.api.topology_context import StreamId, TopologyContext
from heronpy_lite.config import EngineConfig, component_config, message_timeout
from heronpy_lite.errors import RegistrationRejected, RemoteProtocolError
from heronpy_lite.instance import time_account, tuplepath
from heronpy_lite.instance.bolt import BoltInstance
from heronpy_lite.instance.exception_log import exit_message
from heronpy_lite.instance.lifecycle import Event, Lifecycle, Phase
from heronpy_lite.instance.routing import stream_specs
from heronpy_lite.instance.spout import RoundLimits, SpoutInstance
from heronpy_lite.instance.task import Batching, TaskInstance
from heronpy_lite.instance.time_account import TimeAccount
from heronpy_lite.wire import messages as m
from heronpy_lite.wire import metric_names as names
from heronpy_lite.wire.frames import AckFrame, ControlFrame, DataFrame, Frame
from heronpy_lite.wire.handshake import Handshake
from heronpy_lite.wire.plan import RUNNING, PackingPlan, PhysicalPlan

log = logging.getLogger(__name__)

_INF = float("inf")


class InstanceCore:
    def __init__(
        self,
        *,
        topology: str,
        task_id: int,
        restarts: int,
        definition: TopologyDefinition,
        packing: PackingPlan,
        topology_config: dict[str, Any],
        engine: EngineConfig,
        clock: Callable[[], float],
        path: tuplepath.TuplePath | None = None,
        pid: int | None = None,
        secret: bytes | None = None,
    ) -> None:
        self.topology = topology
        self.task_id = task_id
        self.restarts = restarts
        self.definition = definition
        self.packing = packing
        self.topology_config = topology_config
        self.engine = engine
        self.clock = clock
        self.path = path
        self.pid = os.getpid() if pid is None else pid
        placement = next(t for t in packing.tasks if t.task_id == task_id)
        self.component_name = placement.component
        self.component_index = placement.component_index
        self.is_spout = definition.components[self.component_name].is_spout
        self.secret = secret
        self._handshake: Handshake | None = None
        self.lifecycle = Lifecycle(self.is_spout, authenticated=secret is not None)
        self.task: SpoutInstance | BoltInstance | None = None
        self.plan: PhysicalPlan | None = None
        self.error = ""
        self.bad_batches = 0
        self._control: list[bytes] = []
        self._flush_interval = engine.flush_interval_ms / 1000
        self._last_flush = 0.0
        self._tick_period = 0.0
        self._next_tick = _INF
        #: busy / backpressured / idle time (docs/decisions/0024-saturation-metrics.md);
        #: the runner says what each of its parts is doing
        self.time_account = TimeAccount(clock())

    @property
    def phase(self) -> Phase:
        return self.lifecycle.phase

    # -- the link --

    def connected(self) -> list[bytes]:
        """The link is up: what to send first (the handshake's hello, or the
        registration and our state)."""
        self.lifecycle.advance(Event.CONNECTED)
        if isinstance(self.task, SpoutInstance):
            # a new stream manager says so again if it still wants it
            self.task.set_throttled(False, self.clock())
        if self.secret is not None:
            self._handshake = Handshake(self.secret, accepting=False)
            return [self._handshake.hello()]
        return self._registration()

    def _registration(self) -> list[bytes]:
        frames = [
            m.encode(
                m.RegisterInstance(
                    self.topology, self.task_id, self.component_name, self.pid, self.restarts
                )
            )
        ]
        if self.lifecycle.built:
            frames.append(m.encode(self._status("running")))
        return frames

    def disconnected(self, now: float) -> None:
        self._handshake = None
        if self.lifecycle.phase in (
            Phase.AWAITING_PLAN,
            Phase.RUNNING,
            Phase.AUTHENTICATING,
            Phase.REAUTHENTICATING,
        ):
            self.lifecycle.advance(Event.LOST)
        if isinstance(self.task, SpoutInstance):
            self.task.set_throttled(False, now)

    # -- input --

    def receive(self, frames: list[Frame], now: float) -> None:
        """Handle frames from the stream manager. `RemoteProtocolError` for one that
        is not allowed now (close the link); `RegistrationRejected` if refused."""
        lifecycle = self.lifecycle
        task = self.task
        for frame in frames:
            if lifecycle.phase is Phase.FAILED:
                # initialize raised: tuples that came with the plan are not looked at,
                # so the failed status (and its error) still reaches the stream manager
                return
            if type(frame) is DataFrame:
                lifecycle.check(DataFrame)
                assert isinstance(task, BoltInstance)
                try:
                    task.process_batch(frame.src_task, frame.stream, frame.body)
                except RemoteProtocolError as exc:
                    # the stream manager forwards bodies unread: a bad one costs that batch
                    self.bad_batches += 1
                    log.error("dropped a batch from task %d: %s", frame.src_task, exc)
            elif type(frame) is AckFrame:
                lifecycle.check(AckFrame)
                assert isinstance(task, SpoutInstance)
                task.on_verdicts(frame.body)
            else:
                assert isinstance(frame, ControlFrame)
                msg = m.decode(frame.payload)
                lifecycle.check(type(msg))
                self._on_control(msg, now)
                task = self.task

    def _on_control(self, msg: m.Message, now: float) -> None:
        if isinstance(msg, (m.AuthHello, m.AuthProof)):
            assert self._handshake is not None
            self._control += self._handshake.receive(msg)  # AuthenticationFailed: close
            if self._handshake.done:
                self._handshake = None
                self.lifecycle.advance(Event.AUTHENTICATED)
                self._control += self._registration()
        elif isinstance(msg, m.PhysicalPlanUpdate):
            self.plan = PhysicalPlan.from_dict(msg.plan)
            if self.lifecycle.phase == Phase.AWAITING_PLAN:
                self._start(now)
            elif isinstance(self.task, SpoutInstance):
                self.task.set_active(self.plan.state == RUNNING)
            log.info("topology state %s", self.plan.state)
        elif isinstance(msg, m.SpoutThrottle):
            if isinstance(self.task, SpoutInstance):
                self.task.set_throttled(msg.throttled, now)
        elif isinstance(msg, m.Rejected):
            raise RegistrationRejected(f"the stream manager rejected this instance: {msg.reason}")

    # -- start --

    def _start(self, now: float) -> None:
        """Build the task and its component, run ``initialize``; FAILED if it raises."""
        assert self.plan is not None
        try:
            task = self._build(now)
        except (Exception, SystemExit) as exc:
            log.exception("initialize() of %s failed", self.component_name)
            self.error = f"initialize() raised {type(exc).__name__}: {exc}"
            self.lifecycle.advance(Event.START_FAILED)
            self._control.append(m.encode(self._status("failed")))
            return
        self.task = task
        self.lifecycle.advance(Event.STARTED)
        self._control.append(m.encode(self._status("running")))
        if isinstance(task, SpoutInstance):
            task.set_active(self.plan.state == RUNNING, initial=True)
        log.info("task %d initialized; topology state %s", self.task_id, self.plan.state)

    def _build(self, now: float) -> SpoutInstance | BoltInstance:
        definition, engine = self.definition, self.engine
        me = definition.components[self.component_name]
        config = component_config(self.topology_config, me.config)
        component_tasks = {
            name: self.packing.component_tasks(name) for name in definition.components
        }
        sources = {
            c.name: {StreamId(i.stream, i.component): i.grouping for i in c.inputs}
            for c in definition.components.values()
        }
        task: SpoutInstance | BoltInstance | None = None

        def register_metric(name: str, metric: Any, bucket: int) -> None:
            assert task is not None
            task.register_metric(name, metric, bucket, self.clock())

        context = TopologyContext(
            self.topology,
            self.task_id,
            self.component_name,
            config,
            sources,
            component_tasks,
            register_metric,
        )
        reliable = self.topology_config.get(TOPOLOGY_RELIABILITY_MODE) == "ATLEAST_ONCE"
        arguments: dict[str, Any] = {
            "topology": self.topology,
            "task_id": self.task_id,
            "component": self.component_name,
            "streams": stream_specs(definition, self.component_name, component_tasks, context),
            "task_components": {t.task_id: t.component for t in self.packing.tasks},
            "logger": logging.getLogger(f"heronpy_lite.user.{self.component_name}"),
            "batching": Batching(
                engine.batch_max_tuples, engine.batch_max_bytes, engine.max_frame_bytes
            ),
            "reliable": reliable,
            "clock": self.clock,
            "path": self.path,
        }
        if me.is_spout:
            task = SpoutInstance(
                message_timeout_secs=message_timeout(self.topology_config),
                max_pending=int(self.topology_config[TOPOLOGY_MAX_SPOUT_PENDING]),
                rounds=RoundLimits(
                    engine.emit_batch_max_tuples,
                    engine.emit_batch_time_ms / 1000,
                    engine.instance_out_buffer_high_bytes,
                ),
                **arguments,
            )
        else:
            task = BoltInstance(**arguments)
        component = me.python_class(delegate=task)
        task.component = component
        install_forwarded(component, task)
        component.initialize(config=config, context=context)
        freq = config.get(TOPOLOGY_TICK_TUPLE_FREQ_SECS)
        if freq and not me.is_spout:
            self._tick_period = float(freq)
            self._next_tick = now + self._tick_period
        return task

    def exited(self, exc: SystemExit) -> bytes:
        """User code called ``sys.exit()``: the status to send before the process
        exits as asked (``status`` shows it as the last error; the executor restarts
        the instance)."""
        self.error = exit_message(exc)
        log.error("%s", self.error, exc_info=exc)
        return m.encode(self._status("failed"))

    def _status(self, state: str) -> m.InstanceStatus:
        return m.InstanceStatus(
            self.task_id,
            self.component_name,
            state,
            self.pid,
            self.restarts,
            self.error if state == "failed" else "",
        )

    # -- output and timers --

    def output(self) -> list[bytes]:
        """Frames to write, in order: control first, then the task's."""
        frames = self._control
        self._control = []
        if self.task is not None and self.task.emitter.outbox:
            frames += self.task.take_output()
        return frames

    @property
    def output_bytes(self) -> int:
        return self.task.outbox_bytes if self.task is not None else 0

    def flush(self, now: float) -> None:
        if self.task is not None and self.task.has_pending:
            self.task.flush()
            self._last_flush = now

    def flush_due(self, now: float) -> bool:
        """Whether open batches have waited a flush interval (then `flush` now)."""
        task = self.task
        return (
            task is not None and task.has_pending and now - self._last_flush >= self._flush_interval
        )

    def next_deadline(self) -> float:
        """When `on_timer` has work next (inf: nothing scheduled)."""
        task = self.task
        if task is None:
            return _INF
        due = min(self._next_tick, task.next_metric_sample())
        if task.has_pending:
            due = min(due, self._last_flush + self._flush_interval)
        if isinstance(task, SpoutInstance):
            due = min(due, task.next_expiry())
        return due

    def on_timer(self, now: float) -> None:
        task = self.task
        if task is None:
            return
        if now >= self._next_tick and isinstance(task, BoltInstance):
            self.time_account.set("tick", time_account.Doing.BUSY, now)
            task.process_tick()
            self.time_account.set("tick", time_account.Doing.IDLE, self.clock())
            self._next_tick = max(self._next_tick + self._tick_period, now)
            self.flush(now)
        if now >= task.next_metric_sample():
            task.sample_metrics(now)
        if isinstance(task, SpoutInstance):
            task.expire_in_flight(now)
        if self.flush_due(now):
            self.flush(now)

    # -- metrics --

    def collect(self, out_queue_bytes: int) -> list[Any]:
        """This task's samples for its metrics manager (see wire/metric_names.py)."""
        base = {"component": self.component_name, "instance_id": str(self.task_id)}
        out: list[Any] = [
            [names.RESTARTS, "counter", base, self.restarts],
            [names.OUT_QUEUE, "gauge", base, out_queue_bytes],
            [names.OUT_QUEUE_CAPACITY, "gauge", base, self.engine.instance_out_buffer_high_bytes],
        ]
        if self.task is not None:
            out += self.task.collect(base)
        out += time_account.samples(self.time_account, base, self.clock())
        return out

    def exceptions(self) -> list[Any]:
        """The task's recent user-code exceptions, for its metrics snapshots."""
        return self.task.exception_log.entries() if self.task is not None else []


def install_forwarded(component: Any, task: TaskInstance) -> None:
    """Give a component that keeps the base class's forwarding ``emit`` (and, on a
    bolt, ``ack``/``fail``) the task's own: one call less per tuple. Those take
    the component's positional order (Spout's or Bolt's)."""
    base: type[Any] = BaseSpout if task.is_spout else BaseBolt
    forwarded = ("emit",) if task.is_spout else ("emit", "ack", "fail")
    for name in forwarded:
        if getattr(type(component), name, None) is getattr(base, name):
            setattr(component, name, getattr(task, name))
