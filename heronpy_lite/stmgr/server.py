"""The stream manager process of one container.

It listens on one port for its local instances and for peer stream managers,
registers with the tmaster (found through the state manager), and forwards
DATA frames by their destination task without decoding their bodies:
local task -> that instance's outlet, remote task -> the peer's outlet.
Peers are reached over one outbound connection each (the inbound connection
from a peer only carries what it sends us).

A garbage frame closes that one connection with a logged error. A dead
instance's frames wait in its bounded outlet until the executor restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from typing import Any

from heronpy_lite.api.api_constants import (
    TOPOLOGY_BACKPRESSURE_STRATEGY,
)
from heronpy_lite.config import EngineConfig, message_timeout
from heronpy_lite.errors import RemoteProtocolError, StateManagerError
from heronpy_lite.process import (
    MetricsReporter,
    relax_gc,
    safe_write,
    tune_socket,
    write_atomically,
)
from heronpy_lite.statemgr import StateManager
from heronpy_lite.statemgr.base import PACKING_PLANS, TMASTERS
from heronpy_lite.stmgr.acking import make_tracker
from heronpy_lite.stmgr.backpressure import BackpressureController, Notice, Strategy
from heronpy_lite.stmgr.outlet import Outlet
from heronpy_lite.stmgr.routing import RoutingTable
from heronpy_lite.wire import messages as m
from heronpy_lite.wire import metric_names as names
from heronpy_lite.wire.frames import AckFrame, ControlFrame, DataFrame, FrameDecoder, encode_ack
from heronpy_lite.wire.plan import PackingPlan, PhysicalPlan

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024


class StreamManager:
    def __init__(
        self,
        *,
        topology: str,
        container: int,
        engine: EngineConfig,
        packing: PackingPlan,
        statemgr: StateManager,
        restarts: int,
        message_timeout_secs: float | None = None,
        strategy: Strategy = Strategy.SPOUT,
        components: dict[str, Any] | None = None,
    ) -> None:
        self.topology = topology
        self.container = container
        self.engine = engine
        self.statemgr = statemgr
        self.restarts = restarts
        self.routing = RoutingTable(packing, container)
        self.plan: PhysicalPlan | None = None
        self.port = 0
        high, low = engine.stmgr_buffer_high_bytes, engine.stmgr_buffer_low_bytes
        # tcp: readers block as soon as an outlet is congested; otherwise the strategy acts
        # at the high watermark and blocking readers is the backstop at the hard limit
        hard = high if strategy == Strategy.TCP else engine.stmgr_buffer_hard_bytes
        self.instance_outlets = {
            t: Outlet(f"task {t}", high, low, hard) for t in self.routing.local_tasks
        }
        self.peer_outlets = {c: Outlet(f"stmgr {c}", high, low, hard) for c in self.routing.peers}
        components = components or {}
        self.backpressure = BackpressureController(
            strategy,
            spouts=[n for n, c in components.items() if c.get("spout")],
            upstream={n: set(c.get("inputs", [])) for n, c in components.items()},
            task_component=self.routing.task_component,
        )
        #: component -> set while its local instances may be read from
        self._flowing: dict[str, asyncio.Event] = {}
        self.instance_status: dict[int, m.InstanceStatus] = {}
        self._tmaster_writer: asyncio.StreamWriter | None = None
        self._peer_tasks: dict[int, tuple[tuple[str, int], asyncio.Task[None]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.unroutable_frames = 0
        self.metrics_port = 0
        self.tracker = make_tracker(message_timeout_secs, time.monotonic())

    # -- lifecycle --

    async def serve(self, port: int, port_file: str) -> None:
        server = await asyncio.start_server(
            self._on_connection, self.engine.bind_host, port, reuse_address=True
        )
        self.port = server.sockets[0].getsockname()[1]
        if port_file:
            write_atomically(port_file, str(self.port))
        log.info(
            "stmgr of container %d listening on %s:%d",
            self.container,
            self.engine.bind_host,
            self.port,
        )
        relax_gc()
        async with server, asyncio.TaskGroup() as tg:
            self._tg = tg
            tg.create_task(self._tmaster_loop())
            tg.create_task(self._expiry_loop())
            if self.metrics_port:
                reporter = MetricsReporter(
                    self.engine.bind_host,
                    self.metrics_port,
                    "stmgr",
                    self.collect_metrics,
                    self.engine.metrics_interval_secs,
                )
                tg.create_task(reporter.run())
            await server.serve_forever()

    # -- inbound connections (instances and peers) --

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        decoder = FrameDecoder(self.engine.max_frame_bytes)
        task_id: int | None = None
        peer_container: int | None = None
        try:
            first = await self._first_message(reader, decoder)
            if isinstance(first[0], m.RegisterInstance):
                task_id = self._register_instance(first[0], writer)
                if task_id is None:
                    return
            elif isinstance(first[0], m.HelloStmgr):
                if first[0].topology != self.topology:
                    raise RemoteProtocolError(f"peer is of topology {first[0].topology!r}")
                peer_container = first[0].container
                log.info("peer stmgr %d connected from %s", peer_container, peer)
            else:
                raise RemoteProtocolError(f"unexpected first message {first[0].TYPE}")
            tune_socket(writer, self.engine.socket_buffer_bytes)
            await self._pump(reader, decoder, first[1], task_id)
        except RemoteProtocolError as exc:
            log.error("closing connection from %s: protocol error: %s", peer, exc)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("connection from %s closed: %s", peer, exc)
        finally:
            if task_id is not None:
                self._instance_gone(task_id, writer)
            if peer_container is not None:
                self.backpressure.peer_gone(peer_container, time.monotonic())
                self._apply_pauses()
            writer.close()

    async def _first_message(
        self, reader: asyncio.StreamReader, decoder: FrameDecoder
    ) -> tuple[m.Message, list[Any]]:
        frames: list[Any] = []
        while not frames:
            data = await asyncio.wait_for(reader.read(READ_CHUNK), timeout=30)
            if not data:
                raise ConnectionError("closed before registering")
            frames = decoder.feed(data)
        head = frames[0]
        if not isinstance(head, ControlFrame):
            raise RemoteProtocolError("first frame is not a registration")
        return m.decode(head.payload), frames[1:]

    def _register_instance(
        self, msg: m.RegisterInstance, writer: asyncio.StreamWriter
    ) -> int | None:
        outlet = self.instance_outlets.get(msg.task_id)
        if msg.topology != self.topology or outlet is None:
            log.error("rejecting instance registration %s", msg)
            writer.write(
                m.encode(
                    m.Rejected(
                        f"task {msg.task_id} of {msg.topology!r} does not run in container "
                        f"{self.container} of {self.topology!r}"
                    )
                )
            )
            return None
        if outlet.writer is not None and outlet.writer is not writer:
            log.warning("task %d registered again; replacing its old connection", msg.task_id)
            outlet.writer.close()
        log.info("instance task %d (%s) registered, pid %d", msg.task_id, msg.component, msg.pid)
        if self.plan is not None:
            writer.write(m.encode(m.PhysicalPlanUpdate(self.plan.to_dict())))
        old = self.instance_status.get(msg.task_id)
        if old is not None and old.pid != msg.pid:
            self.tracker.drop_task(msg.task_id)  # a new process: it knows none of those trees
        outlet.attach(writer)
        if msg.component in self.backpressure.paused and msg.component in self.backpressure.spouts:
            writer.write(m.encode(m.SpoutThrottle(True)))
        self._report(
            m.InstanceStatus(msg.task_id, msg.component, "starting", msg.pid, msg.restarts)
        )
        return msg.task_id

    def _instance_gone(self, task_id: int, writer: asyncio.StreamWriter) -> None:
        outlet = self.instance_outlets[task_id]
        if outlet.writer is writer:
            outlet.detach(writer)
            old = self.instance_status.get(task_id)
            if old is not None:
                self._report(
                    m.InstanceStatus(
                        task_id, old.component, "down", old.pid, old.restarts, old.error
                    )
                )
            log.warning("instance task %d disconnected", task_id)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        decoder: FrameDecoder,
        frames: list[Any],
        task_id: int | None,
    ) -> None:
        """Route every frame from one connection until it closes.

        Before each read: wait while an outlet written to is above its hard limit,
        and, for an instance, while the backpressure strategy pauses its component.
        """
        route = self._route
        local = self.routing.local_tasks
        congested = self.backpressure.congested
        gate = None if task_id is None else self._gate(self.routing.task_component[task_id])
        while True:
            blocked: list[Outlet] = []
            for frame in frames:
                if type(frame) is DataFrame:
                    dst = frame.dst_task
                    outlet = route(dst)
                    if outlet is not None:
                        outlet.write(frame.frame, frame.tuples)
                        if outlet.buffered > outlet.high:
                            if dst in local and dst not in congested:
                                self._task_congested(dst, outlet)
                            if not outlet.has_room():
                                blocked.append(outlet)
                elif type(frame) is AckFrame:
                    if frame.dst_task in self.routing.local_tasks:
                        self._track(frame.dst_task, frame.body)
                    else:
                        outlet = route(frame.dst_task)
                        if outlet is not None:
                            outlet.write(frame.frame)
                else:
                    self._on_control_from(task_id, m.decode(frame.payload))
            for outlet in blocked:
                await outlet.wait_for_room()
            if gate is not None and not gate.is_set():
                await gate.wait()
            data = await reader.read(READ_CHUNK)
            if not data:
                return
            frames = decoder.feed(data)

    # -- backpressure --

    def _gate(self, component: str) -> asyncio.Event:
        gate = self._flowing.get(component)
        if gate is None:
            gate = self._flowing[component] = asyncio.Event()
            if component not in self.backpressure.paused:
                gate.set()
        return gate

    def _apply_pauses(self) -> None:
        """Stop reading from paused components' instances; tell paused spouts to stop
        calling ``next_tuple`` (their buffers alone could take long to fill)."""
        paused = self.backpressure.paused
        for component, gate in self._flowing.items():
            if component in paused:
                if gate.is_set():
                    log.info("backpressure: pausing %s", component)
                    gate.clear()
                    self._throttle_spouts(component, True)
            elif not gate.is_set():
                log.info("backpressure: resuming %s", component)
                gate.set()
                self._throttle_spouts(component, False)

    def _throttle_spouts(self, component: str, throttled: bool) -> None:
        if component not in self.backpressure.spouts:
            return
        frame = m.encode(m.SpoutThrottle(throttled))
        for task, outlet in self.instance_outlets.items():
            if self.routing.task_component[task] == component and outlet.writer is not None:
                safe_write(outlet.writer, frame)

    def _task_congested(self, task: int, outlet: Outlet) -> None:
        log.info("backpressure: task %d congested (%d bytes buffered)", task, outlet.buffered)
        self._send_notices(self.backpressure.task_congested(task, time.monotonic()))
        self._apply_pauses()
        self._tg.create_task(self._watch_relief(task, outlet))

    async def _watch_relief(self, task: int, outlet: Outlet) -> None:
        await outlet.wait_relieved()
        log.info("backpressure: task %d relieved", task)
        self._send_notices(self.backpressure.task_relieved(task, time.monotonic()))
        self._apply_pauses()

    def _send_notices(self, notices: list[Notice]) -> None:
        for notice in notices:
            frame = m.encode(m.BackpressureNotice(self.container, notice.component, notice.start))
            for outlet in self.peer_outlets.values():
                if outlet.writer is not None:
                    outlet.write(frame)

    def stats(self) -> dict[str, Any]:
        """What ``status`` shows of this stream manager (sent with each heartbeat; only
        what changes under backpressure, as a change makes the tmaster persist the
        plan; queues and trees are in the metrics)."""
        bp = self.backpressure
        totals = bp.totals(time.monotonic())
        return {
            "backpressure": {
                "strategy": bp.strategy.value,
                "culprits": sorted(bp.local_culprits()),
                "paused": sorted(bp.paused),
                "culprit_seconds": {k: round(v, 3) for k, v in totals["culprit"].items()},
                "paused_seconds": {k: round(v, 3) for k, v in totals["paused"].items()},
            },
        }

    def collect_metrics(self) -> list[Any]:
        """This stream manager's samples for its metrics manager (wire/metric_names.py)."""
        out: list[Any] = []
        outlets = [(f"task {t}", o) for t, o in self.instance_outlets.items()]
        outlets += [(f"stmgr {c}", o) for c, o in self.peer_outlets.items()]
        for destination, outlet in outlets:
            labels = {"destination": destination}
            out += [
                [names.STMGR_TUPLES, "counter", labels, outlet.written_tuples],
                [names.STMGR_FRAMES, "counter", labels, outlet.written_frames],
                [names.STMGR_BYTES, "counter", labels, outlet.written_bytes],
                [names.STMGR_QUEUE, "gauge", labels, outlet.buffered],
                [names.STMGR_QUEUE_CAPACITY, "gauge", labels, outlet.hard],
            ]
        bp = self.backpressure
        totals = bp.totals(time.monotonic())
        for component, seconds in totals["paused"].items():
            out.append([names.BACKPRESSURE, "counter", {"component": component}, seconds])
        culprits = bp.local_culprits()
        for component, seconds in totals["culprit"].items():
            labels = {"component": component}
            out.append([names.BACKPRESSURE_CULPRIT, "counter", labels, seconds])
            out.append([names.BACKPRESSURE_ACTIVE, "gauge", labels, int(component in culprits)])
        out.append([names.XOR_TREES, "gauge", {}, len(self.tracker)])
        for task, n in self.tracker.timed_out_by_task.items():
            labels = {"component": self.routing.task_component[task], "instance_id": str(task)}
            out.append([names.TIMED_OUT, "counter", labels, n])
        return out

    def _track(self, spout_task: int, body: memoryview) -> None:
        verdict = self.tracker.apply_body(spout_task, body, time.monotonic())
        if verdict is not None:
            self.instance_outlets[spout_task].write(encode_ack(spout_task, 0, verdict))

    def _send_verdicts(self, verdicts: list[tuple[int, bytes]]) -> None:
        for spout_task, verdict in verdicts:
            self.instance_outlets[spout_task].write(encode_ack(spout_task, 0, verdict))

    async def _expiry_loop(self) -> None:
        """Fail timed-out trees (the tracker's buckets rotate on this clock)."""
        period = self.tracker.period
        if period is None:
            return
        while True:
            await asyncio.sleep(min(period / 4, 1.0))
            self._send_verdicts(self.tracker.expire_bodies(time.monotonic()))

    def _route(self, task: int) -> Outlet | None:
        container = self.routing.task_container.get(task)
        if container == self.container:
            return self.instance_outlets[task]
        if container is None:
            self.unroutable_frames += 1
            if self.unroutable_frames <= 5 or self.unroutable_frames % 1000 == 0:
                log.error(
                    "dropping frame for unknown task %d (%d so far)", task, self.unroutable_frames
                )
            return None
        return self.peer_outlets[container]

    def _on_control_from(self, task_id: int | None, msg: m.Message) -> None:
        if isinstance(msg, m.InstanceStatus) and task_id == msg.task_id:
            self._report(msg)
        elif isinstance(msg, m.BackpressureNotice) and task_id is None:
            notice = Notice(msg.component, msg.start)
            log.info("backpressure notice from stmgr %d: %s", msg.container, notice)
            self.backpressure.remote_notice(msg.container, notice, time.monotonic())
            self._apply_pauses()
        else:
            log.warning("ignoring control message %s on a data connection", msg.TYPE)

    def _report(self, status: m.InstanceStatus) -> None:
        self.instance_status[status.task_id] = status
        if self._tmaster_writer is not None:
            safe_write(self._tmaster_writer, m.encode(status))

    # -- the tmaster --

    async def _tmaster_loop(self) -> None:
        while True:
            try:
                location = await asyncio.to_thread(self.statemgr.get, TMASTERS, self.topology)
            except StateManagerError as exc:
                # ZooKeeper down: the data path goes on; look the tmaster up again later
                log.warning("cannot look up the tmaster: %s", exc)
                await asyncio.sleep(self.engine.reconnect_interval_secs)
                continue
            if location is None:
                await asyncio.sleep(self.engine.reconnect_interval_secs)
                continue
            try:
                reader, writer = await asyncio.open_connection(location["host"], location["port"])
            except OSError:
                await asyncio.sleep(self.engine.reconnect_interval_secs)
                continue
            log.info("connected to tmaster at %s:%s", location["host"], location["port"])
            writer.write(
                m.encode(
                    m.RegisterStmgr(
                        self.topology,
                        self.container,
                        self.engine.bind_host,
                        self.port,
                        os.getpid(),
                        self.restarts,
                        sorted(self.routing.local_tasks),
                    )
                )
            )
            for status in self.instance_status.values():
                writer.write(m.encode(status))
            self._tmaster_writer = writer
            heartbeat = asyncio.create_task(self._heartbeat(writer))
            try:
                decoder = FrameDecoder(self.engine.max_frame_bytes)
                while True:
                    data = await reader.read(READ_CHUNK)
                    if not data:
                        break
                    for frame in decoder.feed(data):
                        if isinstance(frame, ControlFrame):
                            self._on_tmaster_message(m.decode(frame.payload))
            except (ConnectionError, RemoteProtocolError) as exc:
                log.warning("tmaster connection lost: %s", exc)
            finally:
                heartbeat.cancel()
                self._tmaster_writer = None
                writer.close()
            log.warning("tmaster connection closed; looking it up again")
            await asyncio.sleep(self.engine.reconnect_interval_secs)

    async def _heartbeat(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await asyncio.sleep(self.engine.heartbeat_interval_secs)
            if not safe_write(writer, m.encode(m.Heartbeat(self.container, self.stats()))):
                return

    def _on_tmaster_message(self, msg: m.Message) -> None:
        if isinstance(msg, m.PhysicalPlanUpdate):
            plan = PhysicalPlan.from_dict(msg.plan)
            self.plan = plan
            log.info("physical plan received: state %s, %d stmgrs", plan.state, len(plan.stmgrs))
            self._connect_peers(plan)
            frame = m.encode(msg)
            for outlet in self.instance_outlets.values():
                if outlet.writer is not None:
                    safe_write(outlet.writer, frame)
        elif isinstance(msg, m.Rejected):
            log.error("tmaster rejected this stmgr: %s", msg.reason)
        else:
            log.warning("unexpected message from tmaster: %s", msg.TYPE)

    # -- peers --

    def _connect_peers(self, plan: PhysicalPlan) -> None:
        for container, location in plan.stmgrs.items():
            if container == self.container or container not in self.peer_outlets:
                continue
            address = (location.host, location.port)
            current = self._peer_tasks.get(container)
            if current is not None and current[0] == address and not current[1].done():
                continue
            if current is not None:
                current[1].cancel()
            task = self._tg.create_task(self._peer_loop(container, address))
            self._peer_tasks[container] = (address, task)

    async def _peer_loop(self, container: int, address: tuple[str, int]) -> None:
        outlet = self.peer_outlets[container]
        while True:
            try:
                reader, writer = await asyncio.open_connection(*address)
            except OSError:
                await asyncio.sleep(self.engine.reconnect_interval_secs)
                continue
            writer.write(m.encode(m.HelloStmgr(self.topology, self.container)))
            tune_socket(writer, self.engine.socket_buffer_bytes)
            for notice in self.backpressure.current_notices():
                writer.write(
                    m.encode(m.BackpressureNotice(self.container, notice.component, notice.start))
                )
            outlet.attach(writer)
            log.info("connected to peer stmgr %d at %s:%d", container, *address)
            try:
                while await reader.read(READ_CHUNK):
                    pass  # peers never send on our outbound connection
            except ConnectionError:
                pass
            finally:
                outlet.detach(writer)
                writer.close()
            log.warning("peer stmgr %d connection lost; reconnecting", container)
            await asyncio.sleep(self.engine.reconnect_interval_secs)


async def main_async(args: Any) -> int:
    from heronpy_lite.process import state_manager_from_args

    statemgr = state_manager_from_args(args)
    record = await asyncio.to_thread(statemgr.get_topology, args.topology)
    packing_raw = await asyncio.to_thread(statemgr.get, PACKING_PLANS, args.topology)
    if packing_raw is None:
        log.error("no packing plan for %s", args.topology)
        return 1
    stmgr = StreamManager(
        topology=args.topology,
        container=args.container,
        engine=EngineConfig.from_config(record["config"]),
        packing=PackingPlan.from_dict(packing_raw),
        statemgr=statemgr,
        restarts=args.restarts,
        message_timeout_secs=message_timeout(record["config"]),
        strategy=Strategy(record["config"].get(TOPOLOGY_BACKPRESSURE_STRATEGY, "spout")),
        components=record.get("components", {}),
    )
    stmgr.metrics_port = args.metrics_port
    try:
        await stmgr.serve(args.port, args.port_file)
    finally:
        with contextlib.suppress(Exception):
            statemgr.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    from heronpy_lite import process

    parser = argparse.ArgumentParser(prog="heronpy_lite.stmgr")
    process.add_common_args(parser)
    parser.add_argument("--container", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", default="")
    parser.add_argument("--restarts", type=int, default=0)
    args = parser.parse_args(argv)
    process.setup_process_logging(args)
    return process.run(lambda: main_async(args))


if __name__ == "__main__":
    sys.exit(main())
