"""The topology master process (container 0).

Becomes active by holding ``tmasters/<name>`` (its address) in the state
manager, as a standby until then (`leadership`). Active, it accepts stream
manager registrations and CLI control requests on one port, broadcasts the
physical plan to every stmgr when it is complete and whenever it changes,
drops stmgrs that stop heartbeating, and keeps ``pplans/<name>`` and
``executionstate/<name>`` current. The state manager being unreachable
(ZooKeeper down) never stops it: writes are retried, the data path never
touches it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import logging
import os
import socket
import sys
import time
from typing import Any

from heronpy_lite.api.api_constants import (
    TOPOLOGY_RELIABILITY_MODE,
    TOPOLOGY_STATEFUL_CHECKPOINT_INTERVAL_SECONDS,
)
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import (
    AuthenticationFailed,
    InvalidTransition,
    LeadershipLost,
    RegistrationConflict,
    RemoteProtocolError,
    StateManagerError,
)
from heronpy_lite.network import advertised_host
from heronpy_lite.process import connection_handler, safe_write
from heronpy_lite.security import check_bind, process_secret, server_options
from heronpy_lite.statemgr import StateManager
from heronpy_lite.statemgr.base import (
    EXECUTION_STATE,
    PACKING_PLANS,
    PPLANS,
    STATEFUL_CHECKPOINTS,
)
from heronpy_lite.tmaster import autoscaling
from heronpy_lite.tmaster.autoscale import AutoscaleConfig, Autoscaler
from heronpy_lite.tmaster.checkpoints import CheckpointCoordinator
from heronpy_lite.tmaster.leadership import Leadership
from heronpy_lite.tmaster.state import TopologyMasterState, TopologyState
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.frames import ControlFrame, FrameDecoder
from heronpy_lite.wire.handshake import Handshake
from heronpy_lite.wire.plan import PackingPlan

log = logging.getLogger(__name__)


class LinkState(enum.Enum):
    UNAUTHENTICATED = "unauthenticated"  # the handshake is not done (with a secret)
    OPEN = "open"  # authenticated, or authentication is off; not registered
    REGISTERED = "registered"  # the stream manager of a container


#: what a connection may send the tmaster in each state: the handshake first
#: (with a secret); the CLI's control requests need no registration
ALLOWED: dict[LinkState, frozenset[type[m.Message]]] = {
    LinkState.UNAUTHENTICATED: frozenset({m.AuthHello, m.AuthProof}),
    LinkState.OPEN: frozenset({m.ControlRequest, m.RegisterStmgr}),
    LinkState.REGISTERED: frozenset(
        {
            m.ControlRequest,
            m.RegisterStmgr,
            m.InstanceStatus,
            m.Heartbeat,
            # EFFECTIVELY_ONCE
            m.StateStored,
            m.CheckpointFailed,
            m.RestoreDone,
        }
    ),
}


class TopologyMaster:
    def __init__(
        self,
        *,
        topology: str,
        engine: EngineConfig,
        packing: PackingPlan,
        statemgr: StateManager,
        execution: dict[str, Any],
        checkpoints: CheckpointCoordinator | None = None,
        secret: bytes | None = None,
        record: dict[str, Any] | None = None,
    ) -> None:
        self.topology = topology
        #: the topology's node (what submit recorded), and its autoscale config
        self.record = record or {}
        self.autoscale = autoscaling.config_of(self.record) if self.record else None
        self.secret = secret
        self.connections = 0
        self.refused_connections = 0
        #: a registered stream manager that heartbeat within this is alive: nobody
        #: else registers for its container meanwhile
        self.live_within = min(
            engine.stmgr_heartbeat_timeout_secs, 3 * engine.heartbeat_interval_secs
        )
        self.engine = engine
        self.statemgr = statemgr
        self.execution = dict(execution)
        state = TopologyState(self.execution.get("state", "RUNNING"))
        self.state = TopologyMasterState(packing, state)
        self.stmgr_writers: dict[int, asyncio.StreamWriter] = {}
        self._persist_needed = asyncio.Event()
        #: EFFECTIVELY_ONCE: the checkpoint coordinator (tmaster/checkpoints.py)
        self.checkpoints = checkpoints
        if checkpoints is not None:
            self.state.stateful = {
                **checkpoints.plan_info(),
                "checkpoints": checkpoints.status(time.time()),
            }
        self._coordinating = asyncio.Lock()

    async def serve(self, sock: socket.socket) -> None:
        """Serve on ``sock`` (bound, listening, already published) until cancelled."""
        server = await asyncio.start_server(
            connection_handler(self._on_connection),
            sock=sock,
            **server_options(self.engine),
        )
        host, port = sock.getsockname()[:2]
        log.info("tmaster of %s active on %s:%d", self.topology, host, port)
        async with server, asyncio.TaskGroup() as tg:
            tg.create_task(self._persist_loop())
            tg.create_task(self._failure_detector())
            if self.checkpoints is not None:
                tg.create_task(self._checkpoint_loop())
            if self.autoscale is not None:
                tg.create_task(self._autoscale_loop(self.autoscale))
            await server.serve_forever()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        engine = self.engine
        if self.connections >= engine.max_connections:
            self.refused_connections += 1
            if self.refused_connections <= 5 or self.refused_connections % 1000 == 0:
                log.warning(
                    "refusing a connection from %s: %d open (%d refused so far)",
                    peer,
                    self.connections,
                    self.refused_connections,
                )
            writer.close()
            return
        self.connections += 1
        decoder = FrameDecoder(engine.unauthenticated_max_frame_bytes)
        handshake = Handshake(self.secret, accepting=True) if self.secret else None
        state = LinkState.UNAUTHENTICATED if handshake else LinkState.OPEN
        if handshake is not None:
            writer.write(handshake.hello())
        # until it has authenticated and said who it is (a registration or a request)
        deadline: float | None = asyncio.get_running_loop().time() + engine.handshake_timeout_secs
        container: int | None = None
        try:
            while True:
                async with asyncio.timeout_at(deadline):
                    data = await reader.read(65536)
                if not data:
                    return
                frames = decoder.feed(data)
                while True:
                    for frame in frames:
                        if not isinstance(frame, ControlFrame):
                            raise RemoteProtocolError("tmaster accepts control frames only")
                        msg = m.decode(frame.payload)
                        if type(msg) not in ALLOWED[state]:
                            raise RemoteProtocolError(f"unexpected {msg.TYPE} message")
                        if isinstance(msg, (m.AuthHello, m.AuthProof)):
                            assert handshake is not None
                            writer.writelines(handshake.receive(msg))
                            if handshake.done:
                                state = LinkState.OPEN
                        elif isinstance(msg, m.ControlRequest):
                            deadline = None
                            writer.write(m.encode(await self._control(msg)))
                            await writer.drain()
                        elif isinstance(msg, m.RegisterStmgr):
                            container = self._register(msg, writer)
                            if container is None:
                                await writer.drain()  # the Rejected, then close
                                return
                            state, deadline = LinkState.REGISTERED, None
                        elif isinstance(msg, m.InstanceStatus):
                            known = self.state.instances.get(msg.task_id, {}).get("pid")
                            self.state.instance_status(
                                msg.task_id, msg.state, msg.pid, msg.restarts, msg.error
                            )
                            if known and known != msg.pid:
                                await self._replaced(
                                    f"task {msg.task_id} restarted (pid {msg.pid})"
                                )
                            if msg.error:
                                log.error("task %d (%s): %s", msg.task_id, msg.component, msg.error)
                            self._persist_needed.set()
                        elif isinstance(msg, m.Heartbeat) and container is not None:
                            if self.stmgr_writers.get(container) is not writer:
                                continue  # a replaced registration's late heartbeat
                            self.state.heartbeat(container, time.monotonic())
                            if self.state.update_stats(container, msg.stats):
                                self._persist_needed.set()
                        elif self.checkpoints is not None:
                            await self._checkpoint_message(msg)
                    if state is not LinkState.UNAUTHENTICATED:
                        decoder.max_frame_bytes = engine.max_frame_bytes
                    if not decoder.held:
                        break
                    frames = decoder.feed(b"")
        except AuthenticationFailed as exc:
            log.warning("closing connection from %s: %s", peer, exc)
        except RemoteProtocolError as exc:
            log.error("closing connection from %s: %s", peer, exc)
        except TimeoutError:
            log.warning("closing connection from %s: it did not say who it is in time", peer)
        except ConnectionError as exc:
            log.info("connection from %s lost: %s", peer, exc)
        finally:
            self.connections -= 1
            if container is not None and self.stmgr_writers.get(container) is writer:
                del self.stmgr_writers[container]
                log.warning("stmgr of container %d disconnected", container)
            writer.close()

    def _register(self, msg: m.RegisterStmgr, writer: asyncio.StreamWriter) -> int | None:
        if msg.topology != self.topology:
            writer.write(m.encode(m.Rejected(f"this tmaster runs {self.topology!r}")))
            return None
        replacement = ""
        if self.checkpoints is not None:
            known = self.state.stmgrs.get(msg.container)
            if known is not None and known.pid != msg.pid:
                replacement = f"stmgr {msg.container} restarted (pid {msg.pid})"
            elif (
                known is None
                and self.checkpoints.started_before
                and (msg.epoch < 0 or msg.epoch != self.checkpoints.epoch)
            ):
                # this tmaster has not seen it: a new process (-1) or one of another epoch
                replacement = f"stmgr {msg.container} is in epoch {msg.epoch}"
        old = self.stmgr_writers.get(msg.container)
        try:
            changed = self.state.register_stmgr(
                msg.container,
                msg.host,
                msg.port,
                msg.pid,
                time.monotonic(),
                connected=old is not None and old is not writer and not old.is_closing(),
                live_within=self.live_within,
            )
        except (ValueError, RegistrationConflict) as exc:
            log.warning("refusing a registration for container %d: %s", msg.container, exc)
            writer.write(m.encode(m.Rejected(str(exc))))
            return None
        if replacement:
            self._replacement = replacement  # every task goes back to the last checkpoint
        if old is not None and old is not writer:
            old.close()
        self.stmgr_writers[msg.container] = writer
        log.info(
            "stmgr of container %d registered at %s:%d (pid %d, restarts %d)",
            msg.container,
            msg.host,
            msg.port,
            msg.pid,
            msg.restarts,
        )
        plan = self.state.plan()
        if plan is not None:
            if changed:
                self._broadcast()
            else:
                safe_write(writer, m.encode(m.PhysicalPlanUpdate(plan.to_dict())))
        self._persist_needed.set()
        return msg.container

    # -- EFFECTIVELY_ONCE --

    _replacement = ""

    async def _replaced(self, why: str) -> None:
        assert self.checkpoints is not None
        await self._coordinate(self.checkpoints.replaced(why, time.monotonic()))

    async def _checkpoint_message(self, msg: m.Message) -> None:
        coordinator = self.checkpoints
        assert coordinator is not None
        now = time.monotonic()
        if isinstance(msg, m.StateStored):
            await self._coordinate(coordinator.stored(msg, now, time.time()))
        elif isinstance(msg, m.CheckpointFailed):
            coordinator.failed(msg)
            self._persist_needed.set()
        elif isinstance(msg, m.RestoreDone):
            await self._coordinate(coordinator.restore_done(msg, now))

    async def _coordinate(self, messages: list[m.Message]) -> None:
        """Record the coordinator's state if it changed, then tell every stmgr (an
        epoch or checkpoint id is recorded before anyone hears of it)."""
        coordinator = self.checkpoints
        assert coordinator is not None
        async with self._coordinating:
            self.state.stateful = {
                **coordinator.plan_info(),
                "checkpoints": coordinator.status(time.time()),
            }
            if coordinator.dirty:
                record = coordinator.record()
                try:
                    await asyncio.to_thread(
                        self.statemgr.set, STATEFUL_CHECKPOINTS, self.topology, record
                    )
                except StateManagerError as exc:
                    coordinator.dirty = True  # written again with the next change
                    log.warning("cannot record the checkpoints: %s", exc)
            for msg in messages:
                frame = m.encode(msg)
                for writer in self.stmgr_writers.values():
                    safe_write(writer, frame)
        if messages:
            self._persist_needed.set()

    async def _checkpoint_loop(self) -> None:
        """Start checkpoints when due, restore when a process was replaced."""
        coordinator = self.checkpoints
        assert coordinator is not None
        period = min(max(coordinator.interval / 4, 0.05), 0.5)
        while True:
            await asyncio.sleep(period)
            connected = (
                self.state.complete and len(self.stmgr_writers) == self.state.packing.num_containers
            )
            if connected and not coordinator.started_before:
                coordinator.started()
            # checkpoints while the topology runs (deactivated, nothing changes) and
            # every task is up: a spout still starting could not take its part
            ready = (
                connected and self.state.state == TopologyState.RUNNING and self.state.all_running
            )
            if self._replacement:
                why, self._replacement = self._replacement, ""
                await self._replaced(why)
            await self._coordinate(coordinator.tick(time.monotonic(), ready))

    async def _autoscale_loop(self, config: AutoscaleConfig) -> None:
        """Sample every bolt while the topology runs; carry out the first decision
        (tmaster/autoscaling.py). A failure to sample is logged and retried."""
        parallelism = {c: len(self.state.packing.component_tasks(c)) for c in config.components}
        scaler = Autoscaler(config, parallelism, started=time.monotonic())
        period = autoscaling.sample_period(config)
        log.info(
            "autoscaling %s (window %gs, cooldown %gs)", parallelism, config.window, config.cooldown
        )
        while True:
            await asyncio.sleep(period)
            if self.state.state != TopologyState.RUNNING or not self.state.all_running:
                continue
            if self.checkpoints is not None and self.checkpoints.restoring is not None:
                continue
            try:
                samples = await asyncio.to_thread(
                    autoscaling.sample,
                    self.statemgr,
                    self.topology,
                    max(2 * period, 3 * self.engine.metrics_interval_secs),
                )
            except Exception as exc:
                log.warning("autoscale: cannot sample the metrics: %s", exc)
                continue
            decision = scaler.observe(time.monotonic(), samples)
            if decision is None:
                continue
            log.warning(
                "autoscale: %s %d -> %d: %s (%s)",
                decision.component,
                decision.old,
                decision.new,
                decision.reason,
                ", ".join(f"{k} {v:g}" for k, v in decision.metrics.items()),
            )
            try:
                await asyncio.to_thread(
                    autoscaling.record_decision, self.statemgr, self.topology, decision
                )
                pid = autoscaling.launch_update(self.engine, self.record, decision)
            except Exception as exc:
                log.error("autoscale: cannot start the update: %s", exc)
                continue
            # the update replaces this tmaster; should it fail, the cooldown runs from
            # this decision before the next one
            log.info("autoscale: update started (pid %d)", pid)

    def _broadcast(self) -> None:
        plan = self.state.plan()
        if plan is None:
            return
        frame = m.encode(m.PhysicalPlanUpdate(plan.to_dict()))
        for writer in self.stmgr_writers.values():
            safe_write(writer, frame)
        log.info("physical plan broadcast: state %s", plan.state)

    async def _control(self, req: m.ControlRequest) -> m.ControlResponse:
        targets = {"activate": TopologyState.RUNNING, "deactivate": TopologyState.PAUSED}
        if req.command in targets:
            previous = self.state.state
            try:
                changed = self.state.transition(targets[req.command])
            except InvalidTransition as exc:
                return m.ControlResponse(False, str(exc))
            if changed:
                execution = {**self.execution, "state": self.state.state.value}
                try:
                    await asyncio.to_thread(
                        self.statemgr.set, EXECUTION_STATE, self.topology, execution
                    )
                except StateManagerError as exc:
                    with contextlib.suppress(InvalidTransition):
                        self.state.transition(previous)
                    log.error("%s not recorded, so not done: %s", req.command, exc)
                    return m.ControlResponse(False, f"cannot record the new state: {exc}")
                self.execution = execution
                self._broadcast()
                self._persist_needed.set()
                return m.ControlResponse(True, f"{self.topology} {req.command}d")
            return m.ControlResponse(
                True, f"{self.topology} was already {self.state.state.value.lower()}"
            )
        if req.command == "status":
            return m.ControlResponse(True, "", {"plan": self.state.status_plan().to_dict()})
        return m.ControlResponse(False, f"unknown command {req.command!r}")

    async def _persist_loop(self) -> None:
        """Write the plan to the state manager after changes, at most every 100 ms;
        while it is unreachable, retry every second (the latest plan wins)."""
        failing = False
        while True:
            await self._persist_needed.wait()
            self._persist_needed.clear()
            plan = self.state.status_plan()
            try:
                await asyncio.to_thread(self.statemgr.set, PPLANS, self.topology, plan.to_dict())
            except StateManagerError as exc:
                if not failing:
                    log.warning("cannot write the physical plan, retrying: %s", exc)
                failing = True
                self._persist_needed.set()
                await asyncio.sleep(1.0)
                continue
            if failing:
                log.info("physical plan written again")
                failing = False
            await asyncio.sleep(0.1)

    async def _failure_detector(self) -> None:
        """Drop stmgrs that stopped heartbeating (a hung process, a dead host
        whose connection never closed); they come back by registering again."""
        timeout = self.engine.stmgr_heartbeat_timeout_secs
        while True:
            await asyncio.sleep(min(timeout / 4, 1.0))
            for container in self.state.expired(time.monotonic(), timeout):
                log.warning(
                    "stmgr of container %d sent no heartbeat for %gs; dropped from the plan "
                    "until it registers again",
                    container,
                    timeout,
                )
                self.state.remove_stmgr(container)
                writer = self.stmgr_writers.pop(container, None)
                if writer is not None:
                    writer.close()
                self._persist_needed.set()


async def main_async(args: Any) -> int:
    from heronpy_lite.process import state_manager_from_args

    statemgr = await asyncio.to_thread(state_manager_from_args, args)
    try:
        return await _run(args, statemgr)
    finally:
        # closing the session removes our ephemeral node at once: a standby
        # takes over without waiting for the session timeout
        with contextlib.suppress(Exception):
            await asyncio.to_thread(statemgr.close)


async def _run(args: Any, statemgr: StateManager) -> int:
    record = await asyncio.to_thread(statemgr.get_topology, args.topology)
    engine = EngineConfig.from_config(record["config"])
    check_bind(engine)
    secret = process_secret(engine)
    sock = socket.create_server((engine.bind_host, args.port))
    port = sock.getsockname()[1]
    host = advertised_host(
        engine.bind_host, engine.advertised_host, engine.statemgr_connection_string
    )
    location = {"host": host, "port": port, "pid": os.getpid(), "hostname": socket.gethostname()}
    leadership = Leadership(statemgr, args.topology)
    waited = time.monotonic()
    await leadership.acquire(location)
    waited = time.monotonic() - waited
    log.info("tmaster of %s is active (pid %d, after %.2fs)", args.topology, os.getpid(), waited)
    # read after winning: a standby may have waited while these changed
    packing_raw = await asyncio.to_thread(statemgr.get, PACKING_PLANS, args.topology)
    execution = await asyncio.to_thread(statemgr.get, EXECUTION_STATE, args.topology) or {}
    if packing_raw is None:
        log.error("no packing plan for %s", args.topology)
        return 1
    packing = PackingPlan.from_dict(packing_raw)
    config = record["config"]
    checkpoints = None
    if config.get(TOPOLOGY_RELIABILITY_MODE) == "EFFECTIVELY_ONCE":
        previous = await asyncio.to_thread(statemgr.get, STATEFUL_CHECKPOINTS, args.topology)
        checkpoints = CheckpointCoordinator(
            tasks=[t.task_id for t in packing.tasks],
            containers=list(range(1, packing.num_containers + 1)),
            interval=float(config[TOPOLOGY_STATEFUL_CHECKPOINT_INTERVAL_SECONDS]),
            timeout=engine.checkpoint_timeout_secs,
            kept=engine.checkpoints_kept,
            record=previous,
            now=time.monotonic(),
            layout=packing.layout(),
        )
    tmaster = TopologyMaster(
        topology=args.topology,
        engine=engine,
        packing=packing,
        statemgr=statemgr,
        execution=execution,
        checkpoints=checkpoints,
        secret=secret,
        record=record,
    )
    lost: BaseException | None = None
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(tmaster.serve(sock))
            if statemgr.supports_standby:
                tg.create_task(leadership.keep(location))
    except* LeadershipLost as group:
        lost = group.exceptions[0]
    if lost is not None:
        log.error("%s; exiting to restart as a standby", lost)
        return 1
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0)


def main(argv: list[str] | None = None) -> int:
    from heronpy_lite import process

    return process.start("heronpy_lite.tmaster", main_async, argv, _arguments)


if __name__ == "__main__":
    sys.exit(main())
