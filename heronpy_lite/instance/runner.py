"""The instance process: one spout or bolt task, connected to its container's
stream manager over loopback TCP. The asyncio runner of `InstanceCore`.

The runner connects (again, whenever the link drops), reads, feeds the core,
writes what the core gives and waits; the core decides everything else. Two
kinds of wait bound the task's memory and pace it:

- local backpressure: while the link's write buffer is above
  ``heron.instance.out.buffer.high.bytes`` the runner awaits ``drain()`` and
  so neither reads (a bolt) nor runs a round (a spout);
- a spout whose ``next_tuple`` may not run (deactivated, throttled, at max
  spout pending) waits for the core's state to change.

One timer runs the core's deadlines (a partial batch's flush, ticks, user
metric samples, in-flight expiry). A watchdog thread (watchdog.py) sees a
call into user code that does not return and a process above its memory
limit; the runner tells it what it is calling, and reports and exits when it
asks for a restart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from typing import Any

from heronpy_lite.api._loader import load_topology
from heronpy_lite.checkpoint.store import CheckpointStore, store_root
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import RemoteProtocolError
from heronpy_lite.instance import tuplepath
from heronpy_lite.instance.core import InstanceCore
from heronpy_lite.instance.lifecycle import Phase
from heronpy_lite.instance.spout import Blocked, SpoutInstance
from heronpy_lite.instance.stateful import Job, PruneStates
from heronpy_lite.instance.time_account import Doing
from heronpy_lite.instance.watch import TaskRestart
from heronpy_lite.instance.watchdog import HungReporter, Watchdog
from heronpy_lite.process import MetricsReporter, relax_gc, safe_write, tune_socket
from heronpy_lite.scheduler.ray import code_location
from heronpy_lite.security import client_tls, process_secret
from heronpy_lite.statemgr import StateManager
from heronpy_lite.statemgr.base import PACKING_PLANS
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.frames import FrameDecoder
from heronpy_lite.wire.plan import PackingPlan

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024
#: what the watchdog is told while the loop is in the engine, not in user code
_ENGINE: tuple[str, float | None] = ("the engine", None)


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
        metrics_port: int = 0,
    ) -> None:
        self.topology = topology
        self.task_id = task_id
        self.stmgr_host = stmgr_host
        self.stmgr_port = stmgr_port
        self.restarts = restarts
        self.statemgr = statemgr
        self.metrics_port = metrics_port
        self.core: InstanceCore | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._started = asyncio.Event()  # the core is RUNNING or FAILED
        self._wake = asyncio.Event()  # the core's state changed: a waiting spout looks again
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        #: the user code the loop is in and when it began, one tuple (read by the
        #: watchdog's thread): a hang is timed from the call's start
        self._calling: tuple[str, float | None] = _ENGINE
        self._tg: asyncio.TaskGroup | None = None

    # -- start --

    async def run(self) -> int:
        record = await asyncio.to_thread(self.statemgr.get_topology, self.topology)
        packing_raw = await asyncio.to_thread(self.statemgr.get, PACKING_PLANS, self.topology)
        if packing_raw is None:
            log.error("no packing plan for %s", self.topology)
            return 1
        # everything else comes from the stmgr: free the state manager session
        # (with ZooKeeper, one session per task would load the ensemble for nothing)
        await asyncio.to_thread(self.statemgr.close)
        # under Ray, the code is where the runtime environment unpacked it on this node
        file, search_dir = code_location(record)
        definition = load_topology(
            file,
            record["attr"],
            self.topology,
            search_dir,
            argv=record.get("argv"),
            package_root=record.get("package_root"),
        )
        self.engine = engine = EngineConfig.from_config(record["config"])
        self.core = core = InstanceCore(
            topology=self.topology,
            task_id=self.task_id,
            restarts=self.restarts,
            definition=definition,
            packing=PackingPlan.from_dict(packing_raw),
            topology_config=record["config"],
            engine=engine,
            clock=time.monotonic,
            topology_file=record["file"],
            store=CheckpointStore(store_root(engine), self.topology),
            secret=process_secret(engine),
        )
        self._tls = client_tls(engine)
        log.info(
            "task %d (%s[%d]) of %s starting, restarts=%d, tuple path %s",
            self.task_id,
            core.component_name,
            core.component_index,
            self.topology,
            self.restarts,
            tuplepath.name_of(tuplepath.default()),
        )
        if tuplepath.NATIVE is None:
            log.warning(
                "the C tuple path was not built (no C compiler or Python headers at install): "
                "running the pure-Python one, several times slower"
            )
        watchdog = Watchdog(
            core.watch,
            calling=lambda: self._calling,
            restart=self._restart,
            reporter=HungReporter(
                self.stmgr_host, self.metrics_port, self._snapshot, core.secret, self._tls
            )
            if self.metrics_port
            else None,
            report_interval=engine.metrics_interval_secs,
        )
        watchdog.start(asyncio.get_running_loop())
        try:
            return await self._run_task(core, engine)
        finally:
            watchdog.stop()

    async def _run_task(self, core: InstanceCore, engine: EngineConfig) -> int:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            link = tg.create_task(self._link_loop())
            await self._started.wait()
            if core.phase is Phase.FAILED:
                link.cancel()
                return 1
            relax_gc()  # what initialize built is frozen with the rest of start-up
            if self.metrics_port:
                reporter = MetricsReporter(
                    self.stmgr_host,
                    self.metrics_port,
                    f"task-{self.task_id}",
                    self._collect,
                    engine.metrics_interval_secs,
                    exceptions=core.exceptions,
                    secret=core.secret,
                    tls=self._tls,
                    handshake_timeout=engine.handshake_timeout_secs,
                )
                tg.create_task(reporter.run())
            self._arm_timer()
            if isinstance(core.task, SpoutInstance):
                tg.create_task(self._exit_reported(self._spout_loop(core.task)))
        return 0

    def _collect(self) -> list[Any]:
        assert self.core is not None
        writer = self._writer
        queued = writer.transport.get_write_buffer_size() if writer is not None else 0
        return self.core.collect(queued)

    def _snapshot(self) -> bytes:
        """The task's metrics snapshot, sent by the watchdog while the loop is stuck."""
        assert self.core is not None
        snapshot = m.MetricsSnapshot(
            f"task-{self.task_id}", self._collect(), time.time(), self.core.exceptions()
        )
        return m.encode(snapshot)

    def _restart(self, reason: str) -> None:
        """From the watchdog, on the loop: report ``reason`` and exit (restarted)."""
        self._exit_soon(TaskRestart(reason))

    def _exit_soon(self, exc: SystemExit) -> None:
        """End the process with ``exc`` as `_exit_reported` does (status first)."""

        async def reraise() -> None:
            raise exc

        if self._tg is not None:
            self._tg.create_task(self._exit_reported(reraise()))
        else:
            raise exc

    # -- the link --

    async def _link_loop(self) -> None:
        core, engine = self.core, self.engine
        assert core is not None
        while True:
            try:
                reader, writer = await asyncio.open_connection(
                    self.stmgr_host, self.stmgr_port, ssl=self._tls
                )
            except OSError:
                await asyncio.sleep(engine.reconnect_interval_secs)
                continue
            writer.transport.set_write_buffer_limits(high=engine.instance_out_buffer_high_bytes)
            tune_socket(writer, engine.socket_buffer_bytes)
            safe_write(writer, core.connected())
            self._writer = writer
            self._wake.set()
            log.info("connected to stmgr at %s:%d", self.stmgr_host, self.stmgr_port)
            try:
                await self._exit_reported(self._read_loop(reader))
            except (ConnectionError, RemoteProtocolError) as exc:
                log.warning("stmgr connection lost: %s", exc)
            finally:
                self._writer = None
                writer.close()
                core.disconnected(time.monotonic())
            await asyncio.sleep(engine.reconnect_interval_secs)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        core = self.core
        assert core is not None
        decoder = FrameDecoder(self.engine.max_frame_bytes)
        started = self._started
        wake = self._wake
        monotonic = time.monotonic
        account = core.time_account
        while True:
            account.set("input", Doing.IDLE, monotonic())
            data = await reader.read(READ_CHUNK)
            account.set("input", Doing.BUSY, monotonic())
            if not data:
                raise ConnectionError("stmgr closed the connection")
            self._calling = (self._input_call(), monotonic())
            core.receive(decoder.feed(data), monotonic())
            self._calling = _ENGINE
            self._start_jobs()
            wake.set()
            await self._write_output(monotonic())
            if not started.is_set() and core.phase in (Phase.RUNNING, Phase.FAILED):
                writer = self._writer
                if writer is not None:
                    await self._drain(writer)  # a failed start's status reaches the stmgr
                started.set()

    def _input_call(self) -> str:
        core = self.core
        assert core is not None
        if core.task is None:
            return "initialize()"
        return "ack() or fail()" if core.is_spout else "process()"

    async def _write_output(self, now: float, force: bool = False) -> None:
        """Flush batches if due (or ``force``), write the core's frames, and wait while
        the link's buffer is above its high mark (local backpressure)."""
        core = self.core
        writer = self._writer
        assert core is not None
        if writer is None:
            return  # frames wait in the core until the link is back
        if force or core.flush_due(now):
            core.flush(now)
        else:
            self._arm_timer()
        frames = core.output()
        if not frames:
            return
        safe_write(writer, frames)
        if writer.transport.get_write_buffer_size() > self.engine.instance_out_buffer_high_bytes:
            await self._drain(writer)

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        """Wait for room (backpressured meanwhile); a dead connection is the link
        loop's to handle.

        Whatever was still unsent is gone with the socket: lost in ATMOST_ONCE,
        failed by timeout and replayed in ATLEAST_ONCE. Never let it kill the
        task: a restarted spout forgets its state.
        """
        account = self.core.time_account  # type: ignore[union-attr]
        account.set("output", Doing.BACKPRESSURED, time.monotonic())
        try:
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        finally:
            account.set("output", Doing.IDLE, time.monotonic())

    async def _exit_reported(self, coro: Any) -> None:
        """Run ``coro``; if user code in it calls ``sys.exit()``, tell the stmgr
        before the process exits as asked."""
        try:
            await coro
        except SystemExit as exc:
            assert self.core is not None
            if self._writer is not None:
                safe_write(self._writer, self.core.exited(exc))
                await self._drain(self._writer)
            raise

    # -- EFFECTIVELY_ONCE: storing state --

    def _start_jobs(self) -> None:
        core = self.core
        assert core is not None
        if core.stateful:
            for job in core.take_jobs():
                assert self._tg is not None
                self._tg.create_task(self._run_job(job))

    async def _run_job(self, job: Job) -> None:
        """Store (or prune) on a thread, so the task goes on meanwhile; then report."""
        core = self.core
        assert core is not None and core.task_state is not None
        state = core.task_state
        result: int | BaseException
        try:
            if isinstance(job, PruneStates):
                result = await asyncio.to_thread(state.prune, job.keep)
            else:
                result = await asyncio.to_thread(state.write, job)
        except Exception as exc:
            result = exc
        core.job_done(job, result, time.monotonic())
        if self._writer is not None:
            safe_write(self._writer, core.output())

    # -- the timer --

    def _arm_timer(self) -> None:
        """Run `_on_timer` at the core's next deadline (sooner than planned only)."""
        assert self.core is not None
        deadline = self.core.next_deadline()
        if deadline >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        delay = max(0.0, deadline - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        core = self.core
        assert core is not None
        self._timer = None
        self._timer_at = float("inf")
        self._calling = ("process_tick() or a metric", time.monotonic())
        try:
            core.on_timer(time.monotonic())
        except SystemExit as exc:  # sys.exit() in a tick, or the watchdog's TaskRestart
            self._exit_soon(exc)
            return
        finally:
            self._calling = _ENGINE
        if self._writer is not None:
            safe_write(self._writer, core.output())
        self._wake.set()  # expiry may have freed max-spout-pending room
        self._arm_timer()

    # -- spout --

    async def _spout_loop(self, spout: SpoutInstance) -> None:
        assert self.core is not None
        idle = self.engine.spout_idle_sleep_ms / 1000
        monotonic = time.monotonic
        wake = self._wake
        account = self.core.time_account
        account.set("spout", Doing.BUSY, monotonic())
        while True:
            blocked = spout.blocked()
            if blocked is not None or self._writer is None:
                await self._write_output(monotonic(), force=True)
                wake.clear()
                blocked = spout.blocked()
                if blocked is not None or self._writer is None:
                    # throttled or at max spout pending: waiting for room downstream
                    waiting_for_room = blocked in (Blocked.THROTTLED, Blocked.MAX_PENDING)
                    doing = Doing.BACKPRESSURED if waiting_for_room else Doing.IDLE
                    account.set("spout", doing, monotonic())
                    await wake.wait()
                    account.set("spout", Doing.BUSY, monotonic())
                continue
            self._calling = ("next_tuple()", monotonic())
            produced = spout.run_round()
            self._calling = _ENGINE
            if produced:
                await self._write_output(monotonic())
                await asyncio.sleep(0)
            else:
                await self._write_output(monotonic(), force=True)
                account.set("spout", Doing.IDLE, monotonic())
                await asyncio.sleep(idle)
                account.set("spout", Doing.BUSY, monotonic())


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
        metrics_port=args.metrics_port,
    )
    try:
        return await runner.run()
    finally:
        task = runner.core.task if runner.core is not None else None
        hooks = runner.core.hooks if runner.core is not None else None
        if hooks is not None:
            hooks.clean_up()
        if isinstance(task, SpoutInstance):
            task.call_user("close", task.component.close)
        statemgr.close()


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task-id", type=int, required=True)
    parser.add_argument("--stmgr-host", default="127.0.0.1")
    parser.add_argument("--stmgr-port", type=int, required=True)
    parser.add_argument("--restarts", type=int, default=0)


def main(argv: list[str] | None = None) -> int:
    from heronpy_lite import process

    return process.start("heronpy_lite.instance", main_async, argv, _arguments)


if __name__ == "__main__":
    sys.exit(main())
