"""The instance process: one spout or bolt task, connected to its container's
stream manager over loopback TCP.

Start: load the topology file (user classes are never pickled), connect and
register with the stmgr, wait for the physical plan, build the component as
``cls(delegate=host)``, call ``initialize``, arm the tick timer from the
config as ``initialize`` left it, report ``running``.

Run: a bolt processes each received batch, then flushes and writes; while
the connection's write buffer is above ``heron.instance.out.buffer.high.bytes``
it awaits ``drain()`` and so stops reading (local backpressure). A spout calls
``next_tuple`` in rounds bounded by time and count while the topology is
RUNNING and its buffer has room; a round that emits nothing is followed by a
short idle sleep. If the stmgr connection drops, the instance reconnects and
registers again; the component is not rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from typing import Any

from heronpy_lite.api._loader import load_topology
from heronpy_lite.api.api_constants import (
    TOPOLOGY_MAX_SPOUT_PENDING,
    TOPOLOGY_RELIABILITY_MODE,
    TOPOLOGY_TICK_TUPLE_FREQ_SECS,
)
from heronpy_lite.api.bolt.bolt import BaseBolt
from heronpy_lite.api.metrics import CountMetric, MultiCountMetric
from heronpy_lite.api.spout.spout import BaseSpout
from heronpy_lite.api.topology import TopologyDefinition
from heronpy_lite.api.topology_context import StreamId, TopologyContext
from heronpy_lite.config import EngineConfig, component_config, message_timeout
from heronpy_lite.errors import RemoteProtocolError
from heronpy_lite.instance import time_account, tuplepath
from heronpy_lite.instance.exception_log import exit_message
from heronpy_lite.instance.host import TaskHost
from heronpy_lite.instance.routing import OutputRouter
from heronpy_lite.instance.time_account import Doing, TimeAccount
from heronpy_lite.process import MetricsReporter, relax_gc, safe_write, tune_socket
from heronpy_lite.statemgr import StateManager
from heronpy_lite.statemgr.base import PACKING_PLANS
from heronpy_lite.wire import messages as m
from heronpy_lite.wire import metric_names as names
from heronpy_lite.wire.frames import AckFrame, ControlFrame, DataFrame, FrameDecoder
from heronpy_lite.wire.plan import RUNNING, PackingPlan, PhysicalPlan

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024
#: A spout whose first next_tuple of a round is quick is then called this many times
#: (by the tuple path's call_repeatedly) between checks of the round's limits (time
#: budget, emit_batch_max_tuples, unsent bytes, something emitted). Max spout pending
#: is checked after every call.
_SPOUT_CHUNK = 32


class InstanceRunner:
    def __init__(
        self,
        *,
        topology: str,
        task_id: int,
        stmgr_host: str,
        stmgr_port: int,
        restarts: int,
        statemgr: StateManager,
    ) -> None:
        self.topology = topology
        self.task_id = task_id
        self.stmgr_host = stmgr_host
        self.stmgr_port = stmgr_port
        self.restarts = restarts
        self.statemgr = statemgr
        self.host: TaskHost | None = None
        self.definition: TopologyDefinition | None = None
        self.component_name = ""
        self.is_spout = False
        self.engine: EngineConfig | None = None
        self.plan: PhysicalPlan | None = None
        self.active = asyncio.Event()
        self._plan_ready = asyncio.Event()
        self._ready = asyncio.Event()
        self._unthrottled = asyncio.Event()  # cleared while the stmgr applies backpressure
        self._unthrottled.set()
        self.throttled_seconds = 0.0
        self._throttled_since: float | None = None
        self.next_tuple_calls = 0
        self.metrics_port = 0
        #: user metrics: name -> (kind, {key: value}); counters accumulate, gauges replace
        self.user_values: dict[str, tuple[str, dict[str, float]]] = {}
        self._room = asyncio.Event()  # set when acks may have freed max-spout-pending room
        self.reliable = False
        self.message_timeout: float | None = None
        self.max_pending = 0
        self.bad_batches = 0
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._last_flush = 0.0
        self._flush_timer: asyncio.TimerHandle | None = None
        #: busy / backpressured / idle time (docs/decisions/0024-saturation-metrics.md)
        self.time_account = TimeAccount(time.monotonic())

    # -- start --

    async def run(self) -> int:
        record = await asyncio.to_thread(self.statemgr.get_topology, self.topology)
        packing_raw = await asyncio.to_thread(self.statemgr.get, PACKING_PLANS, self.topology)
        if packing_raw is None:
            log.error("no packing plan for %s", self.topology)
            return 1
        packing = PackingPlan.from_dict(packing_raw)
        # everything else comes from the stmgr: free the state manager session
        # (with ZooKeeper, one session per task would load the ensemble for nothing)
        await asyncio.to_thread(self.statemgr.close)
        placement = next(t for t in packing.tasks if t.task_id == self.task_id)
        self.component_name = placement.component
        self.engine = EngineConfig.from_config(record["config"])
        topology_config = record["config"]
        self.reliable = topology_config.get(TOPOLOGY_RELIABILITY_MODE) == "ATLEAST_ONCE"
        self.message_timeout = message_timeout(topology_config)
        self.max_pending = int(topology_config[TOPOLOGY_MAX_SPOUT_PENDING])
        self.definition = load_topology(
            record["file"], record["attr"], self.topology, record.get("search_dir")
        )
        me = self.definition.components[self.component_name]
        self.is_spout = me.is_spout
        log.info(
            "task %d (%s[%d]) of %s starting, restarts=%d, tuple path %s",
            self.task_id,
            self.component_name,
            placement.component_index,
            self.topology,
            self.restarts,
            tuplepath.name_of(tuplepath.default()),
        )
        if tuplepath.NATIVE is None:
            log.warning(
                "the C tuple path was not built (no C compiler or Python headers at install): "
                "running the pure-Python one, several times slower"
            )

        async with asyncio.TaskGroup() as tg:
            connection = tg.create_task(self._connection_loop())
            await self._plan_ready.wait()
            assert self.plan is not None
            try:
                self._start_component(record["config"], packing)
            except (Exception, SystemExit) as exc:
                log.exception("initialize() of %s failed", self.component_name)
                await self._send(
                    m.InstanceStatus(
                        self.task_id,
                        self.component_name,
                        "failed",
                        os.getpid(),
                        self.restarts,
                        f"initialize() raised {type(exc).__name__}: {exc}",
                    )
                )
                connection.cancel()
                return 1
            self._ready.set()
            assert self.host is not None
            if self.metrics_port:
                reporter = MetricsReporter(
                    self.stmgr_host,
                    self.metrics_port,
                    f"task-{self.task_id}",
                    self._collect,
                    self.engine.metrics_interval_secs,
                    exceptions=self.host.exception_log.entries,
                )
                tg.create_task(reporter.run())
            await self._send(self._status("running"))
            self._apply_state(self.plan.state, initial=True)
            if self.is_spout:
                tg.create_task(self._exit_reported(self._spout_loop()))
        return 0

    def _status(self, state: str) -> m.InstanceStatus:
        return m.InstanceStatus(
            self.task_id, self.component_name, state, os.getpid(), self.restarts
        )

    def _start_component(self, topology_config: dict[str, Any], packing: PackingPlan) -> None:
        assert self.definition is not None and self.engine is not None
        me = self.definition.components[self.component_name]
        config = component_config(topology_config, me.config)
        component_tasks = {
            name: packing.component_tasks(name) for name in self.definition.components
        }
        sources = {
            c.name: {StreamId(i.stream, i.component): i.grouping for i in c.inputs}
            for c in self.definition.components.values()
        }
        task_components = {t.task_id: t.component for t in packing.tasks}
        context = TopologyContext(
            self.topology,
            self.task_id,
            self.component_name,
            config,
            sources,
            component_tasks,
            self._register_user_metric,
        )
        router = OutputRouter(self.definition, self.component_name, component_tasks, context)
        user_logger = logging.getLogger(f"heronpy_lite.user.{self.component_name}")
        self.host = TaskHost(
            topology=self.topology,
            task_id=self.task_id,
            component=self.component_name,
            is_spout=self.is_spout,
            router=router,
            task_components=task_components,
            batch_max_tuples=self.engine.batch_max_tuples,
            batch_max_bytes=self.engine.batch_max_bytes,
            max_frame_bytes=self.engine.max_frame_bytes,
            logger=user_logger,
            reliable=self.reliable,
            message_timeout_secs=self.message_timeout,
        )
        component = me.python_class(delegate=self.host)
        self.host.component = component
        # The host's emit takes the positional order of the component's own emit
        # (Spout's or Bolt's), as do its ack and fail: a component that keeps the
        # base class's forwarding methods gets the host's, one call less per tuple.
        base: type[Any] = BaseSpout if self.is_spout else BaseBolt
        forwarded = ("emit",) if self.is_spout else ("emit", "ack", "fail")
        for name in forwarded:
            if getattr(type(component), name, None) is getattr(base, name):
                setattr(component, name, getattr(self.host, name))
        component.initialize(config=config, context=context)
        freq = config.get(TOPOLOGY_TICK_TUPLE_FREQ_SECS)
        if freq and not self.is_spout:
            asyncio.get_running_loop().call_later(float(freq), self._tick, float(freq))
        log.info("task %d initialized", self.task_id)
        relax_gc()  # what initialize built is frozen with the rest of start-up

    # -- metrics --

    def _end_throttle(self) -> None:
        if self._throttled_since is not None:
            self.throttled_seconds += time.monotonic() - self._throttled_since
            self._throttled_since = None

    def _register_user_metric(self, name: str, metric: Any, bucket: int) -> None:
        """``context.register_metric``: sample ``metric`` every ``bucket`` seconds."""
        loop = asyncio.get_running_loop()
        counting = isinstance(metric, (CountMetric, MultiCountMetric))

        def sample() -> None:
            assert self.host is not None
            value = self.host.call_user("get_value_and_reset", metric.get_value_and_reset)
            values = value if isinstance(value, dict) else {"": value}
            _, current = self.user_values.setdefault(name, ("counter" if counting else "gauge", {}))
            for key, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    current[str(key)] = current.get(str(key), 0) + v if counting else v
            loop.call_later(bucket, sample)

        loop.call_later(bucket, sample)

    def _collect(self) -> list[Any]:
        """This task's samples for its metrics manager (see wire/metric_names.py)."""
        host = self.host
        if host is None:
            return []
        base = {"component": self.component_name, "instance_id": str(self.task_id)}
        out: list[Any] = [
            [names.RESTARTS, "counter", base, self.restarts],
            [names.DROPPED, "counter", base, host.dropped_unserializable],
        ]
        for stream, n in host.emitted.items():
            out.append([names.EMITTED, "counter", {**base, "stream": stream}, n])
        for exc_type, n in host.exceptions.items():
            out.append([names.EXCEPTIONS, "counter", {**base, "type": exc_type}, n])
        writer = self._writer
        queued = writer.transport.get_write_buffer_size() if writer is not None else 0
        out.append([names.OUT_QUEUE, "gauge", base, queued])
        out.append(
            [
                names.OUT_QUEUE_CAPACITY,
                "gauge",
                base,
                self.engine.instance_out_buffer_high_bytes if self.engine else 0,
            ]
        )
        if self.is_spout:
            throttled = self.throttled_seconds
            if self._throttled_since is not None:  # throttled right now
                throttled += time.monotonic() - self._throttled_since
            out += [
                [names.ACKED, "counter", base, host.spout_acked],
                [names.FAILED, "counter", base, host.spout_failed],
                [names.SPOUT_EXPIRED, "counter", base, host.timed_out],
                [names.NEXT_TUPLE, "counter", base, self.next_tuple_calls],
                [names.PENDING, "gauge", base, len(host.in_flight)],
                [names.SPOUT_THROTTLED, "counter", base, throttled],
                [
                    names.COMPLETE_LATENCY,
                    "summary",
                    base,
                    [host.completed, host.complete_latency_sum],
                ],
            ]
        else:
            executed_total = 0
            for (source, stream), n in host.executed.items():
                executed_total += n
                labels = {**base, "source_component": source, "stream": stream}
                out.append([names.EXECUTED, "counter", labels, n])
            out += [
                [names.ACKED, "counter", base, host.acked],
                [names.FAILED, "counter", base, host.failed],
                [names.EXECUTE_LATENCY, "summary", base, [executed_total, host.execute_seconds]],
                [
                    names.PROCESS_LATENCY,
                    "summary",
                    base,
                    [host.process_latency_count, host.process_latency_sum],
                ],
            ]
        out += time_account.samples(self.time_account, base, time.monotonic())
        for name, (kind, values) in self.user_values.items():
            metric = names.user_metric_name(name) + ("_total" if kind == "counter" else "")
            for key, v in values.items():
                out.append([metric, kind, {**base, "key": key} if key else base, v])
        return out

    # -- connection to the stmgr --

    async def _connection_loop(self) -> None:
        assert self.engine is not None
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.stmgr_host, self.stmgr_port)
            except OSError:
                await asyncio.sleep(self.engine.reconnect_interval_secs)
                continue
            self._writer = writer
            writer.transport.set_write_buffer_limits(
                high=self.engine.instance_out_buffer_high_bytes
            )
            tune_socket(writer, self.engine.socket_buffer_bytes)
            writer.write(
                m.encode(
                    m.RegisterInstance(
                        self.topology, self.task_id, self.component_name, os.getpid(), self.restarts
                    )
                )
            )
            if self.host is not None:
                writer.write(m.encode(self._status("running")))
            self._unthrottled.set()  # a new stmgr says so again if it still wants it
            self._end_throttle()
            self._connected.set()
            log.info("connected to stmgr at %s:%d", self.stmgr_host, self.stmgr_port)
            try:
                await self._read_loop(reader, writer)
            except (ConnectionError, RemoteProtocolError) as exc:
                log.warning("stmgr connection lost: %s", exc)
            except SystemExit as exc:  # user code called sys.exit(): say so, then exit
                self._report_exit(exc)
                raise
            finally:
                self._connected.clear()
                self._writer = None
                writer.close()
            await asyncio.sleep(self.engine.reconnect_interval_secs)

    async def _read_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.engine is not None
        decoder = FrameDecoder(self.engine.max_frame_bytes)
        account = self.time_account
        while True:
            account.set("input", Doing.IDLE, time.monotonic())
            data = await reader.read(READ_CHUNK)
            account.set("input", Doing.BUSY, time.monotonic())
            if not data:
                raise ConnectionError("stmgr closed the connection")
            for frame in decoder.feed(data):
                if type(frame) is DataFrame:
                    if self.host is None:
                        # Tuples can arrive between the plan and the end of initialize():
                        # stop reading (they wait in the socket) until the bolt is ready.
                        await self._ready.wait()
                    assert self.host is not None
                    if self.is_spout:
                        log.warning("data frame for spout task %d dropped", self.task_id)
                        continue
                    try:
                        tuples = self.host.path.unpack(frame.body)
                        self.host.process_batch(frame.src_task, frame.stream, tuples)
                    except RemoteProtocolError as exc:
                        # The stmgr forwards bodies unread: a bad one costs that batch only.
                        self.bad_batches += 1
                        log.error("dropped a batch from task %d: %s", frame.src_task, exc)
                elif type(frame) is AckFrame:
                    if self.host is None or not self.is_spout:
                        log.warning("acking frame for a task that is not a running spout")
                        continue
                    self.host.on_verdicts(frame.body)
                    self._room.set()
                else:
                    assert isinstance(frame, ControlFrame)
                    self._on_control(m.decode(frame.payload))
            host = self.host
            if host is not None and (host.outbox or host.has_pending):
                await self._flush_and_write(time.monotonic())

    def _on_control(self, msg: m.Message) -> None:
        if isinstance(msg, m.PhysicalPlanUpdate):
            plan = PhysicalPlan.from_dict(msg.plan)
            self.plan = plan
            if not self._plan_ready.is_set():
                self._plan_ready.set()
            elif self.host is not None:
                self._apply_state(plan.state)
        elif isinstance(msg, m.SpoutThrottle):
            # time under backpressure: from the stmgr's "stop" to its "go", wherever the
            # spout loop is meanwhile (often blocked writing, as the stmgr stopped reading)
            if msg.throttled:
                self._unthrottled.clear()
                if self._throttled_since is None:
                    self._throttled_since = time.monotonic()
            else:
                self._unthrottled.set()
                self._end_throttle()
        elif isinstance(msg, m.Rejected):
            raise RuntimeError(f"stmgr rejected this instance: {msg.reason}")
        else:
            log.warning("unexpected control message %s", msg.TYPE)

    def _apply_state(self, state: str, initial: bool = False) -> None:
        assert self.host is not None
        running = state == RUNNING
        if running == self.active.is_set() and not initial:
            return
        if running:
            self.active.set()
            if self.is_spout and not initial:
                self.host.call_user("activate", self.host.component.activate)
        else:
            was_active = self.active.is_set()
            self.active.clear()
            if self.is_spout and (was_active or not initial):
                self.host.call_user("deactivate", self.host.component.deactivate)
        log.info("topology state %s", state)

    async def _send(self, msg: m.Message) -> None:
        await self._connected.wait()
        writer = self._writer
        assert writer is not None
        if safe_write(writer, m.encode(msg)):
            await self._drain(writer)

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        """Wait for room; a dead connection is the connection loop's to handle.

        Whatever was still unsent is gone with the socket: lost in ATMOST_ONCE,
        failed by timeout and replayed in ATLEAST_ONCE. Never let it kill the
        task: a restarted spout forgets its state.
        """
        self.time_account.set("output", Doing.BACKPRESSURED, time.monotonic())
        try:
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        finally:
            self.time_account.set("output", Doing.IDLE, time.monotonic())

    async def _waiting(self, doing: Doing, awaitable: Any) -> None:
        """The spout loop awaits ``awaitable``, ``doing`` meanwhile (idle or backpressured)."""
        self.time_account.set("spout", doing, time.monotonic())
        try:
            await awaitable
        finally:
            self.time_account.set("spout", Doing.BUSY, time.monotonic())

    def _report_exit(self, exc: SystemExit) -> None:
        """User code called sys.exit(): tell the stmgr (status shows it as the last
        error) before the process exits as asked; its executor restarts it."""
        error = exit_message(exc)
        log.error("%s", error, exc_info=exc)
        status = m.InstanceStatus(
            self.task_id, self.component_name, "failed", os.getpid(), self.restarts, error
        )
        safe_write(self._writer, m.encode(status))

    async def _exit_reported(self, coro: Any) -> None:
        try:
            await coro
        except SystemExit as exc:
            self._report_exit(exc)
            raise

    # -- output --

    async def _flush_and_write(self, now: float, force: bool = False) -> None:
        """Flush batches if due, write finished frames, wait if the buffer is full."""
        host = self.host
        assert host is not None and self.engine is not None
        if host.has_pending:
            if force or now - self._last_flush >= self.engine.flush_interval_ms / 1000:
                host.flush()
                self._last_flush = now
            elif self._flush_timer is None:
                self._flush_timer = asyncio.get_running_loop().call_later(
                    self.engine.flush_interval_ms / 1000, self._timer_flush
                )
        if host.outbox:
            writer = self._writer
            if writer is None:
                await self._connected.wait()
                writer = self._writer
                assert writer is not None
            safe_write(writer, host.take_outbox())
            high = self.engine.instance_out_buffer_high_bytes
            if writer.transport.get_write_buffer_size() > high:
                await self._drain(writer)

    def _timer_flush(self) -> None:
        self._flush_timer = None
        host = self.host
        if host is None or not host.has_pending:
            return
        host.flush()
        self._last_flush = time.monotonic()
        if self._writer is not None and host.outbox:
            safe_write(self._writer, host.take_outbox())

    def _tick(self, freq: float) -> None:
        assert self.host is not None
        self.time_account.set("tick", Doing.BUSY, time.monotonic())
        self.host.process_tick()
        self.time_account.set("tick", Doing.IDLE, time.monotonic())
        if self.host.has_pending:
            self._timer_flush()
        asyncio.get_running_loop().call_later(freq, self._tick, freq)

    # -- spout --

    async def _spout_loop(self) -> None:
        host = self.host
        engine = self.engine
        assert host is not None and engine is not None
        next_tuple = host.component.next_tuple
        max_calls = engine.emit_batch_max_tuples
        budget = engine.emit_batch_time_ms / 1000
        idle = engine.spout_idle_sleep_ms / 1000
        out_limit = engine.instance_out_buffer_high_bytes
        monotonic = time.monotonic
        chunk_below = budget / (4 * _SPOUT_CHUNK)  # a first call this quick: chunks
        # max spout pending applies in ATLEAST_ONCE only (heronpy's rule)
        max_pending = self.max_pending if self.reliable else 0
        in_flight = host.in_flight
        pending = in_flight if max_pending else None  # what call_repeatedly watches
        call_repeatedly = host.path.call_repeatedly
        self.time_account.set("spout", Doing.BUSY, monotonic())
        while True:
            if not self.active.is_set():
                host.flush()
                await self._flush_and_write(monotonic(), force=True)
                await self._waiting(Doing.IDLE, self.active.wait())
                continue
            if not self._unthrottled.is_set():
                await self._flush_and_write(monotonic(), force=True)
                await self._waiting(Doing.BACKPRESSURED, self._unthrottled.wait())
                continue
            host.expire_in_flight()
            if max_pending and len(in_flight) >= max_pending:
                await self._flush_and_write(monotonic(), force=True)
                self._room.clear()
                # verdicts set _room; the timeout lets expire_in_flight run if none come
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await self._waiting(Doing.BACKPRESSURED, self._room.wait())
                continue
            start = monotonic()
            emitted_before = host.emit_count
            calls = 0
            step = 1  # calls between checks of the round's other limits
            while calls < max_calls:
                before = host.emit_count
                done, exc = call_repeatedly(next_tuple, step, pending, max_pending)
                calls += done
                if exc is not None:
                    host.user_exception("next_tuple", exc)
                if max_pending and len(in_flight) >= max_pending:
                    break  # checked after every call (heronpy's rule)
                if host.emit_count == before:
                    break  # nothing to emit right now
                if host.outbox_bytes > out_limit:
                    break  # large tuples: write before emitting more
                elapsed = monotonic() - start
                if elapsed > budget:
                    break
                if step == 1 and elapsed < chunk_below:
                    step = _SPOUT_CHUNK  # a quick spout
            host.ack_immediately()
            now = monotonic()
            self.next_tuple_calls += calls
            produced = host.emit_count != emitted_before
            if produced:
                await self._flush_and_write(now)
                await asyncio.sleep(0)
            else:
                await self._flush_and_write(now, force=True)
                await self._waiting(Doing.IDLE, asyncio.sleep(idle))


async def main_async(args: Any) -> int:
    from heronpy_lite.process import state_manager_from_args

    statemgr = state_manager_from_args(args)
    runner = InstanceRunner(
        topology=args.topology,
        task_id=args.task_id,
        stmgr_host=args.stmgr_host,
        stmgr_port=args.stmgr_port,
        restarts=args.restarts,
        statemgr=statemgr,
    )
    runner.metrics_port = args.metrics_port
    try:
        return await runner.run()
    finally:
        host = runner.host
        if host is not None and runner.is_spout and host.component is not None:
            host.call_user("close", host.component.close)
        statemgr.close()


def main(argv: list[str] | None = None) -> int:
    import argparse

    from heronpy_lite import process

    parser = argparse.ArgumentParser(prog="heronpy_lite.instance")
    process.add_common_args(parser)
    parser.add_argument("--task-id", type=int, required=True)
    parser.add_argument("--stmgr-host", default="127.0.0.1")
    parser.add_argument("--stmgr-port", type=int, required=True)
    parser.add_argument("--restarts", type=int, default=0)
    args = parser.parse_args(argv)
    process.setup_process_logging(args)
    return process.run(lambda: main_async(args))


if __name__ == "__main__":
    sys.exit(main())
