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

It holds the task's `watch.TaskWatch` (the hang timeout, whether a hang
restarts the instance, the memory limit: ``heron.instance.hang.*`` and
``heron.instance.memory.limit.mb``, from the component's config), which the
runner's watchdog drives; its figures are in `collect`, and `exited` reports
a restart's reason as the task's last error.

Its outputs: `output()` (control frames first, then the task's frames, in
order) and `phase` (FAILED means exit).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from heronpy_lite.api import global_metrics
from heronpy_lite.api.api_constants import (
    TOPOLOGY_MAX_SPOUT_PENDING,
    TOPOLOGY_RELIABILITY_MODE,
    TOPOLOGY_TICK_TUPLE_FREQ_SECS,
)
from heronpy_lite.api.bolt.bolt import BaseBolt
from heronpy_lite.api.spout.spout import BaseSpout
from heronpy_lite.api.topology import TopologyDefinition
from heronpy_lite.api.topology_context import StreamId, TopologyContext
from heronpy_lite.checkpoint.store import CheckpointStore
from heronpy_lite.config import EngineConfig, component_config, message_timeout
from heronpy_lite.errors import RegistrationRejected, RemoteProtocolError
from heronpy_lite.instance import time_account, tuplepath
from heronpy_lite.instance.bolt import BoltInstance
from heronpy_lite.instance.exception_log import exit_message
from heronpy_lite.instance.lifecycle import Event, Lifecycle, Phase
from heronpy_lite.instance.routing import stream_specs
from heronpy_lite.instance.spout import RoundLimits, SpoutInstance
from heronpy_lite.instance.stateful import (
    NONE,
    Job,
    PruneStates,
    Sources,
    TaskState,
    WriteState,
    is_stateful,
    sources,
)
from heronpy_lite.instance.task import Batching, TaskInstance
from heronpy_lite.instance.task_hooks import TaskHooks
from heronpy_lite.instance.time_account import TimeAccount
from heronpy_lite.instance.watch import MIB, TaskRestart, TaskStopped, TaskWatch
from heronpy_lite.keygroups import keygroups_for
from heronpy_lite.wire import messages as m
from heronpy_lite.wire import metric_names as names
from heronpy_lite.wire.frames import (
    AckFrame,
    ControlFrame,
    DataFrame,
    Frame,
    MarkerFrame,
    encode_marker,
)
from heronpy_lite.wire.handshake import Handshake
from heronpy_lite.wire.plan import RUNNING, PackingPlan, PhysicalPlan

log = logging.getLogger(__name__)

_INF = float("inf")
HANG_TIMEOUT = "heron.instance.hang.timeout.secs"
HANG_RESTART = "heron.instance.hang.restart"
MEMORY_LIMIT = "heron.instance.memory.limit.mb"


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
        topology_file: str = "",
        store: CheckpointStore | None = None,
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
        #: the file the topology was submitted as (context.get_topology_pex_path())
        self.topology_file = topology_file
        #: the task's hooks (context.add_task_hook), once it is built
        self.hooks: TaskHooks | None = None
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
        #: EFFECTIVELY_ONCE (docs/decisions/0029-effectively-once.md): the epoch the
        #: task is in, its state, the store jobs for the runner
        self.stateful = topology_config.get(TOPOLOGY_RELIABILITY_MODE) == "EFFECTIVELY_ONCE"
        self.epoch = -1
        self.task_state = (
            TaskState(store, task_id, engine.full_snapshot_every)
            if self.stateful and store is not None
            else None
        )
        self._jobs: list[Job] = []
        self._downstream: list[int] = []
        self._config: dict[str, Any] = {}
        self._context: Any = None
        self.checkpoints_taken = 0
        self.restores = 0
        self.stored_bytes = 0
        self.last_save_seconds = 0.0
        #: busy / backpressured / idle time (docs/decisions/0024-saturation-metrics.md);
        #: the runner says what each of its parts is doing
        self.time_account = TimeAccount(clock())
        mine = component_config(topology_config, definition.components[self.component_name].config)
        self.watch = TaskWatch(
            hang_timeout=float(mine.get(HANG_TIMEOUT, engine.hang_timeout_secs)),
            restart_on_hang=bool(mine.get(HANG_RESTART, engine.hang_restart)),
            memory_limit_bytes=int(float(mine.get(MEMORY_LIMIT, engine.memory_limit_mb)) * MIB),
            now=clock(),
        )

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
            if self.stateful:
                frames.append(m.encode(m.Restored(self.epoch, self.task_id)))
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
            elif type(frame) is MarkerFrame:
                lifecycle.check(MarkerFrame)
                if self.stateful:
                    self._checkpoint(frame.checkpoint, now)
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
        elif not self.stateful:
            log.warning("ignoring %s: this topology is not EFFECTIVELY_ONCE", msg.TYPE)
        elif isinstance(msg, m.StartCheckpoint):
            self._checkpoint(msg.checkpoint, now)
        elif isinstance(msg, m.Restore):
            self._restore(msg, now)
        elif isinstance(msg, m.Resume):
            if isinstance(self.task, SpoutInstance) and msg.epoch == self.epoch:
                self.task.restoring = False
        elif isinstance(msg, m.CheckpointComplete):
            self._completed(msg)

    # -- start --

    def _start(self, now: float) -> None:
        """Build the task and its component, run ``initialize``; FAILED if it raises."""
        assert self.plan is not None
        restore = int(self.plan.stateful.get("restore", -1))
        try:
            task = self._make_task()
            error = self._make_component(task, now, restore, self.plan.stateful.get("layout"))
        except TaskStopped:
            raise
        except (Exception, SystemExit) as exc:
            log.exception("initialize() of %s failed", self.component_name)
            if isinstance(exc, TaskRestart):
                self.error = f"{exc.reason} (in initialize)"
            else:
                self.error = f"initialize() raised {type(exc).__name__}: {exc}"
            self.lifecycle.advance(Event.START_FAILED)
            self._control.append(m.encode(self._status("failed")))
            return
        self.task = task
        self.lifecycle.advance(Event.STARTED)
        self._control.append(m.encode(self._status("running")))
        if isinstance(task, SpoutInstance):
            task.set_active(self.plan.state == RUNNING, initial=True)
        if self.stateful:
            if isinstance(task, SpoutInstance):
                # until its stream manager says Resume: a restore may be under way, and
                # what it emitted now would reach bolts that have not restored yet
                task.restoring = True
            self._entered(int(self.plan.stateful.get("epoch", 0)), error)
        log.info("task %d initialized; topology state %s", self.task_id, self.plan.state)

    def _make_task(self) -> SpoutInstance | BoltInstance:
        definition, engine = self.definition, self.engine
        me = definition.components[self.component_name]
        self._config = config = component_config(self.topology_config, me.config)
        component_tasks = {
            name: self.packing.component_tasks(name) for name in definition.components
        }
        sources = {
            c.name: {StreamId(i.stream, i.component): i.grouping for i in c.inputs}
            for c in definition.components.values()
        }
        task: SpoutInstance | BoltInstance | None = None

        def register_metric(name: str, metric: Any, bucket: float) -> None:
            assert task is not None
            task.register_metric(name, metric, bucket, self.clock())

        self._context = context = TopologyContext(
            self.topology,
            self.task_id,
            self.component_name,
            config,
            sources,
            component_tasks,
            register_metric,
            topology_pex_path=self.topology_file,
        )
        streams = stream_specs(definition, self.component_name, component_tasks, context)
        #: every task this one sends to: where its checkpoint markers go
        self._downstream = sorted(
            {t for spec in streams.values() for r in spec.routes for t in r.tasks}
        )
        mode = self.topology_config.get(TOPOLOGY_RELIABILITY_MODE)
        arguments: dict[str, Any] = {
            "topology": self.topology,
            "task_id": self.task_id,
            "component": self.component_name,
            "streams": streams,
            "task_components": {t.task_id: t.component for t in self.packing.tasks},
            "logger": logging.getLogger(f"heronpy_lite.user.{self.component_name}"),
            "batching": Batching(
                engine.batch_max_tuples, engine.batch_max_bytes, engine.max_frame_bytes
            ),
            "reliable": mode == "ATLEAST_ONCE",
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
        return task

    def _make_component(
        self,
        task: SpoutInstance | BoltInstance,
        now: float,
        restore: int,
        layout: dict[str, list[int]] | None = None,
    ) -> str:
        """Build the component on ``task`` as ``cls(delegate=task)``: ``init_state``
        (a stateful component, EFFECTIVELY_ONCE, with its state at ``restore``, a
        checkpoint taken in ``layout``), ``initialize``, hooks, ticks.
        Returns why the state at ``restore`` could not be loaded, or ""."""
        me = self.definition.components[self.component_name]
        config, context = self._config, self._context
        task.emit = task.emitter  # a rebuilt component's hooks wrap it afresh
        if isinstance(task, BoltInstance):
            task.ack, task.fail = task.acks.ack, task.acks.fail
        component = me.python_class(delegate=task)
        task.component = component
        install_forwarded(component, task)
        error = ""
        if self.task_state is not None and is_stateful(component):
            state, error = self.task_state.load(restore, self._state_sources(layout))
            if error:
                log.error("cannot restore checkpoint %d: %s", restore, error)
            component.init_state(state)
        hooks = self.hooks = TaskHooks(task, context, config)
        component.initialize(config=config, context=context)
        hooks.start(component, config, me.is_spout)
        global_metrics.init(context, self.engine.metrics_interval_secs)
        freq = config.get(TOPOLOGY_TICK_TUPLE_FREQ_SECS)
        if freq and not me.is_spout:
            self._tick_period = float(freq)
            self._next_tick = now + self._tick_period
        return error

    # -- EFFECTIVELY_ONCE --

    def _state_sources(self, layout: dict[str, list[int]] | None) -> Sources:
        """Where this task's state at a checkpoint taken in ``layout`` (None or
        empty: this one) is (instance/stateful.py)."""
        me = self.definition.components[self.component_name]
        return sources(
            self.task_id,
            self.component_name,
            self.component_index,
            self.packing.component_tasks(self.component_name),
            layout or None,
            me.key_fields,
            keygroups_for(me.config, self.topology_config),
        )

    def _entered(self, epoch: int, error: str) -> None:
        """The task is in ``epoch``: tell the stream manager, which counts what it
        sends from now on (and nothing before)."""
        self.epoch = epoch
        self._control.append(m.encode(m.Restored(epoch, self.task_id, error)))

    def _checkpoint(self, checkpoint: int, now: float) -> None:
        """Take this task's part of ``checkpoint``: what it emitted before goes out
        first, then its state is taken, then its markers follow."""
        task = self.task
        assert task is not None and self.task_state is not None
        task.flush()
        try:
            kind, payload = self.task_state.take(task.component, checkpoint)
        except Exception as exc:
            task.user_exception("pre_save", exc)
            reason = f"task {self.task_id}: {type(exc).__name__}: {exc}"
            self._control.append(
                m.encode(m.CheckpointFailed(checkpoint, f"task {self.task_id}", reason))
            )
            kind, payload = NONE, b""
        else:
            if kind == NONE:
                self._control.append(
                    m.encode(m.StateStored(checkpoint, self.task_id, 0, NONE, 0.0))
                )
            else:
                self._jobs.append(WriteState(checkpoint, kind, payload, now))
        outbox = task.emitter.outbox
        for dst in self._downstream:
            outbox.append(encode_marker(dst, self.task_id, checkpoint))
        self.checkpoints_taken += 1

    def _restore(self, msg: m.Restore, now: float) -> None:
        """Roll back to ``msg.checkpoint`` and enter ``msg.epoch``: what was not sent
        yet is dropped, a stateful component is built again from that state."""
        task = self.task
        assert task is not None
        task.flush()
        task.take_output()  # of the old epoch: never sent
        error = ""
        if is_stateful(task.component):
            if self.hooks is not None:
                self.hooks.clean_up()
            error = self._make_component(task, now, msg.checkpoint, msg.layout)
        if isinstance(task, SpoutInstance):
            task.restoring = True  # until every instance is in the new epoch
        self.restores += 1
        log.info("restored checkpoint %d; epoch %d", msg.checkpoint, msg.epoch)
        self._entered(msg.epoch, error)

    def _completed(self, msg: m.CheckpointComplete) -> None:
        """Checkpoint ``msg.checkpoint`` is complete everywhere: ``post_save`` (a
        two-phase sink commits), and files no kept checkpoint needs may go."""
        task = self.task
        assert task is not None
        post_save = getattr(task.component, "post_save", None)
        if callable(post_save):
            task.call_user("post_save", post_save, msg.checkpoint)
        if self.task_state is not None and self.task_state.state is not None:
            self._jobs.append(PruneStates(tuple(msg.kept)))

    def take_jobs(self) -> list[Job]:
        """Store and prune jobs for the runner's threads (`job_done` after each)."""
        jobs, self._jobs = self._jobs, []
        return jobs

    def job_done(self, job: Job, result: int | BaseException, now: float) -> None:
        """A job finished: ``result`` is the bytes written or removed, or its error."""
        if isinstance(job, PruneStates):
            if isinstance(result, BaseException):
                log.warning("cannot remove old state files: %s", result)
            return
        if isinstance(result, BaseException):
            log.error("cannot store checkpoint %d: %s", job.checkpoint, result)
            reason = f"task {self.task_id}: storing failed: {result}"
            self._control.append(
                m.encode(m.CheckpointFailed(job.checkpoint, f"task {self.task_id}", reason))
            )
            return
        self.stored_bytes += result
        seconds = now - job.started
        self.last_save_seconds = seconds
        self._control.append(
            m.encode(m.StateStored(job.checkpoint, self.task_id, result, job.kind, seconds))
        )

    def exited(self, exc: SystemExit) -> bytes:
        """User code called ``sys.exit()``, or the watchdog ends the process
        (`TaskRestart`: a hang, the memory limit): the status to send before the
        process exits (``status`` shows it as the last error; the executor restarts
        the instance). Nothing for `TaskStopped` (SIGTERM: the process just stops)."""
        if isinstance(exc, TaskStopped):
            return b""
        if isinstance(exc, TaskRestart):
            self.error = exc.reason
            log.error("%s", self.error)
        else:
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
        """Frames to write, in order: control first, then the task's. The task's wait
        while the link is not yet registered (a handshake in progress): the stream
        manager admits nothing else on it then."""
        frames = self._control
        self._control = []
        task = self.task
        if task is not None and task.emitter.outbox and self.lifecycle.phase is Phase.RUNNING:
            frames += task.take_output()
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
        if self.stateful:
            out += [
                [names.CHECKPOINTS_TAKEN, "counter", base, self.checkpoints_taken],
                [names.CHECKPOINT_STORED_BYTES, "counter", base, self.stored_bytes],
                [names.CHECKPOINT_SAVE_SECONDS, "gauge", base, self.last_save_seconds],
                [names.RESTORES, "counter", base, self.restores],
            ]
        now = self.clock()
        out += time_account.samples(self.time_account, base, now)
        watch = self.watch
        call = {**base, "call": watch.hung_call or ""}
        out += [
            [names.HUNG, "gauge", call, watch.hung_seconds(now)],
            [names.HANGS, "counter", base, watch.hangs],
            [names.RSS, "gauge", base, watch.rss],
        ]
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
