"""The instance core without processes, sockets or a loop: its lifecycle, the
protocol table, the task it builds, its timers, on both tuple paths."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from heronpy_lite import config
from heronpy_lite.api import Bolt, Spout, TopologyBuilder
from heronpy_lite.api.state.stateful_component import StatefulComponent
from heronpy_lite.api.topology import definition_of
from heronpy_lite.checkpoint.store import CheckpointStore
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import AuthenticationFailed, RegistrationRejected, RemoteProtocolError
from heronpy_lite.instance.core import InstanceCore
from heronpy_lite.instance.lifecycle import ALLOWED, Phase
from heronpy_lite.instance.spout import Blocked, SpoutInstance
from heronpy_lite.instance.stateful import PruneStates, WriteState
from heronpy_lite.instance.watch import TaskRestart, TaskStopped
from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.acking import AckBatch
from heronpy_lite.wire.frames import (
    AckFrame,
    ControlFrame,
    DataFrame,
    FrameDecoder,
    MarkerFrame,
    encode_ack,
    encode_data,
    encode_marker,
)
from heronpy_lite.wire.handshake import Handshake
from heronpy_lite.wire.plan import PhysicalPlan, StmgrLocation

pytestmark = pytest.mark.usefixtures("tuple_path")


class Words(Spout):
    outputs = ["word"]

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        self.words = iter(["a", "b", "c"])
        self.events: list[str] = []

    def next_tuple(self) -> None:
        word = next(self.words, None)
        if word is not None:
            self.emit([word], tup_id=word)

    def activate(self) -> None:
        self.events.append("activate")

    def deactivate(self) -> None:
        self.events.append("deactivate")

    def ack(self, tup_id: Any) -> None:
        self.events.append(f"ack {tup_id}")

    def fail(self, tup_id: Any) -> None:
        self.events.append(f"fail {tup_id}")


class Counter(Bolt):
    outputs = ["word", "n"]

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        if config.get("test.raise"):
            raise ValueError("no")
        self.counts: dict[str, int] = {}
        self.ticks = 0
        config["topology.tick.tuple.freq.secs"] = 5  # set in initialize, as window bolts do

    def process(self, tup: Any) -> None:
        word = tup.values[0]
        self.counts[word] = self.counts.get(word, 0) + 1
        self.emit([word, self.counts[word]])

    def process_tick(self, tup: Any) -> None:
        self.ticks += 1


class Sink(Bolt):
    def process(self, tup: Any) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def topology() -> TopologyBuilder:
    b = TopologyBuilder("T")
    words = b.add_spout("words", Words, par=1)  # task 1
    count = b.add_bolt("count", Counter, par=1, inputs=[words])  # task 2
    b.add_bolt("sink", Sink, par=1, inputs=[count])  # task 3
    return b


SECRET = b"q" * 32


def make_core(
    task: int,
    clock: Clock,
    builder: TopologyBuilder | None = None,
    store: CheckpointStore | None = None,
    secret: bytes | None = None,
    **properties: Any,
) -> InstanceCore:
    definition = definition_of(builder or topology())
    packing = pack_round_robin("T", [(c.name, c.par) for c in definition.components.values()], 1)
    resolved = config.resolve("local", None, properties)
    return InstanceCore(
        topology="T",
        task_id=task,
        restarts=0,
        definition=definition,
        packing=packing,
        topology_config=resolved,
        engine=EngineConfig.from_config(resolved),
        clock=clock,
        pid=500 + task,
        store=store,
        secret=secret,
    )


def plan_frame(
    state: str = "RUNNING",
    builder: TopologyBuilder | None = None,
    stateful: dict[str, int] | None = None,
) -> list[Any]:
    definition = definition_of(builder or topology())
    packing = pack_round_robin("T", [(c.name, c.par) for c in definition.components.values()], 1)
    physical = PhysicalPlan(
        packing, {1: StmgrLocation(1, "127.0.0.1", 1, 1)}, state, stateful=stateful or {}
    )
    return FrameDecoder().feed(m.encode(m.PhysicalPlanUpdate(physical.to_dict())))


def decoded(frames: list[bytes]) -> list[Any]:
    return FrameDecoder().feed(b"".join(frames))


def control_messages(frames: list[bytes]) -> list[m.Message]:
    return [m.decode(f.payload) for f in decoded(frames) if isinstance(f, ControlFrame)]


def started(task: int, clock: Clock, **properties: Any) -> InstanceCore:
    core = make_core(task, clock, **properties)
    core.connected()
    core.receive(plan_frame(), clock())
    assert core.phase is Phase.RUNNING
    return core


# ------------------------------------------------------------------ lifecycle


def test_the_first_plan_builds_the_task_and_reports_it_running() -> None:
    clock = Clock()
    core = make_core(2, clock)
    (register,) = control_messages(core.connected())
    assert register == m.RegisterInstance("T", 2, "count", 502, 0)
    assert core.phase is Phase.AWAITING_PLAN and core.task is None
    core.receive(plan_frame(), 0.0)
    assert core.phase is Phase.RUNNING
    assert core.task is not None and isinstance(core.task.component, Counter)
    assert control_messages(core.output()) == [m.InstanceStatus(2, "count", "running", 502, 0)]


def test_initialize_raising_fails_the_start_with_its_error() -> None:
    core = make_core(2, Clock(), **{"test.raise": "true"})
    core.connected()
    core.receive(plan_frame(), 0.0)
    assert core.phase is Phase.FAILED
    (status,) = control_messages(core.output())
    assert status == m.InstanceStatus(
        2, "count", "failed", 502, 0, "initialize() raised ValueError: no"
    )


def test_tuples_that_come_with_the_plan_of_a_failed_start_are_not_looked_at() -> None:
    core = make_core(2, Clock(), **{"test.raise": "true"})
    core.connected()
    queued = FrameDecoder().feed(SAMPLES[DataFrame])  # waited in the outlet for the plan
    core.receive(plan_frame() + queued, 0.0)
    assert core.phase is Phase.FAILED
    (status,) = control_messages(core.output())
    assert status.state == "failed" and "ValueError: no" in status.error  # type: ignore[attr-defined]


def test_with_a_secret_the_registration_waits_for_the_stream_manager_s_proof() -> None:
    clock = Clock()
    core = make_core(2, clock, secret=SECRET)
    hello = core.connected()
    assert [type(msg) for msg in control_messages(hello)] == [m.AuthHello]
    assert core.phase is Phase.AUTHENTICATING
    after = authenticate(core, hello)
    assert control_messages(after)[-1] == m.RegisterInstance("T", 2, "count", 502, 0)
    assert core.phase is Phase.AWAITING_PLAN
    core.receive(plan_frame(), 0.0)
    core.output()
    core.disconnected(1.0)
    again = authenticate(core, core.connected())  # a new stream manager: again, first
    assert [type(msg) for msg in control_messages(again)][-2:] == [
        m.RegisterInstance,
        m.InstanceStatus,
    ]
    assert core.phase is Phase.RUNNING


def test_with_a_secret_tuples_wait_for_the_new_stream_manager_s_proof() -> None:
    """A spout's output that waited while its link was down goes out after the
    handshake and the registration, never before (the stream manager would close
    an unauthenticated link that sends data)."""
    core = make_core(1, Clock(), secret=SECRET)
    authenticate(core, core.connected())
    core.receive(plan_frame(), 0.0)
    core.output()
    spout = core.task
    assert isinstance(spout, SpoutInstance)
    core.disconnected(1.0)
    spout.run_round()
    core.flush(1.0)
    hello = core.connected()
    assert [type(f) for f in decoded(hello)] == [ControlFrame]  # the hello, nothing else
    assert core.output() == []
    after = decoded(authenticate(core, hello))
    kinds = [type(f) for f in after]
    assert DataFrame in kinds
    register = next(i for i, f in enumerate(after) if isinstance(f, ControlFrame)
                    and isinstance(m.decode(f.payload), m.RegisterInstance))  # fmt: skip
    assert register < kinds.index(DataFrame)


def test_a_stream_manager_without_the_secret_is_refused() -> None:
    core = make_core(2, Clock(), secret=SECRET)
    (hello,) = control_messages(core.connected())
    impostor = Handshake(b"x" * 32, accepting=True)
    core.receive(FrameDecoder().feed(impostor.hello()), 0.0)
    core.output()
    (proof,) = impostor.receive(hello)
    with pytest.raises(AuthenticationFailed, match="wrong secret"):
        core.receive(FrameDecoder().feed(proof), 0.0)
    assert core.task is None and core.phase is Phase.AUTHENTICATING


def test_a_lost_link_keeps_the_component_and_registers_again() -> None:
    clock = Clock()
    core = started(2, clock)
    component = core.task.component  # type: ignore[union-attr]
    core.disconnected(1.0)
    assert core.phase is Phase.RECONNECTING
    again = control_messages(core.connected())
    assert again == [
        m.RegisterInstance("T", 2, "count", 502, 0),
        m.InstanceStatus(2, "count", "running", 502, 0),
    ]
    core.receive(plan_frame(), 2.0)  # a new stream manager sends the plan again
    assert core.phase is Phase.RUNNING and core.task.component is component  # type: ignore[union-attr]


def test_a_rejected_registration_is_an_error() -> None:
    core = make_core(2, Clock())
    core.connected()
    with pytest.raises(RegistrationRejected, match="wrong container"):
        core.receive(FrameDecoder().feed(m.encode(m.Rejected("wrong container"))), 0.0)


# ------------------------------------------------------ the protocol as a table

SAMPLES: dict[type, bytes] = {
    DataFrame: encode_data(2, 1, "default", msgpack.packb([["a"]])),
    AckFrame: encode_ack(1, 0, AckBatch().encode()),
    m.PhysicalPlanUpdate: b"".join(m.encode(m.decode(f.payload)) for f in plan_frame()),
    m.Rejected: m.encode(m.Rejected("no")),
    m.SpoutThrottle: m.encode(m.SpoutThrottle(True)),
    m.RegisterInstance: m.encode(m.RegisterInstance("T", 2, "count", 1, 0)),
    m.Heartbeat: m.encode(m.Heartbeat(1)),
    m.InstanceStatus: m.encode(m.InstanceStatus(2, "count", "running", 1, 0)),
    # EFFECTIVELY_ONCE (ignored by these tasks: the topology is not)
    MarkerFrame: encode_marker(2, 1, 1),
    m.StartCheckpoint: m.encode(m.StartCheckpoint(1)),
    m.CheckpointComplete: m.encode(m.CheckpointComplete(1, [1])),
    m.Restore: m.encode(m.Restore(-1, 1)),
    m.Resume: m.encode(m.Resume(1)),
    m.StateStored: m.encode(m.StateStored(1, 2, 1, "full", 0.0)),
    m.AuthHello: m.encode(m.AuthHello(b"h" * 16)),
}


def authenticate(core: InstanceCore, hello: list[bytes]) -> list[bytes]:
    """Play the stream manager's end of the handshake; what the core sends after."""
    stmgr = Handshake(SECRET, accepting=True)
    core.receive(FrameDecoder().feed(stmgr.hello()), 0.0)
    (proof,) = control_messages(core.output())
    for msg in control_messages(hello):
        for reply in stmgr.receive(msg):
            core.receive(FrameDecoder().feed(reply), 0.0)
    stmgr.receive(proof)
    return core.output()


PHASES = [Phase.AUTHENTICATING, Phase.AWAITING_PLAN, Phase.RUNNING, Phase.REAUTHENTICATING]


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.name)
@pytest.mark.parametrize("task", [1, 2], ids=["spout", "bolt"])
@pytest.mark.parametrize("kind", list(SAMPLES), ids=lambda k: k.__name__)
def test_the_stream_manager_may_send_exactly_what_the_table_allows(
    phase: Phase, task: int, kind: type
) -> None:
    clock = Clock()
    authenticated = phase in (Phase.AUTHENTICATING, Phase.REAUTHENTICATING)
    core = make_core(task, clock, secret=SECRET if authenticated else None)
    hello = core.connected()
    if phase is Phase.REAUTHENTICATING:
        authenticate(core, hello)
        core.receive(plan_frame(), 0.0)
        core.disconnected(1.0)
        core.connected()
    if phase is Phase.RUNNING:
        core.receive(plan_frame(), 0.0)
    assert core.phase is phase
    frames = FrameDecoder().feed(SAMPLES[kind])
    if kind in ALLOWED[(phase, task == 1)]:
        try:
            core.receive(frames, 1.0)
        except RegistrationRejected:
            assert kind is m.Rejected
    else:
        with pytest.raises(RemoteProtocolError, match="is not allowed"):
            core.receive(frames, 1.0)


def test_a_batch_that_is_not_msgpack_costs_that_batch_only() -> None:
    core = started(2, Clock())
    core.receive(FrameDecoder().feed(encode_data(2, 1, "default", b"\xc1")), 0.0)
    core.receive(FrameDecoder().feed(SAMPLES[DataFrame]), 0.0)
    assert core.bad_batches == 1
    assert core.task.component.counts == {"a": 1}  # type: ignore[union-attr]


# ------------------------------------------------------------- bolt and timers


def test_a_bolt_processes_batches_and_flushes_when_the_interval_passed() -> None:
    clock = Clock()
    core = started(2, clock)
    core.output()
    core.receive(FrameDecoder().feed(SAMPLES[DataFrame]), 0.0)
    assert core.task.has_pending  # type: ignore[union-attr]
    interval = core.engine.flush_interval_ms / 1000
    assert not core.flush_due(interval / 2)
    assert core.next_deadline() == pytest.approx(interval)
    assert core.flush_due(interval)
    core.on_timer(interval)
    (frame,) = decoded(core.output())
    assert (frame.dst_task, msgpack.unpackb(frame.body)) == (3, [["a", 1]])


def test_the_tick_period_set_in_initialize_drives_process_tick() -> None:
    clock = Clock()
    core = started(2, clock)
    assert core.next_deadline() == 5.0
    core.on_timer(4.9)
    assert core.task.component.ticks == 0  # type: ignore[union-attr]
    core.on_timer(5.0)
    core.on_timer(10.0)
    assert core.task.component.ticks == 2  # type: ignore[union-attr]


# ------------------------------------------------------------------- spout


def test_a_spout_runs_while_active_and_unthrottled_and_acks_at_most_once() -> None:
    clock = Clock()
    core = make_core(1, clock)
    core.connected()
    core.receive(plan_frame("PAUSED"), 0.0)
    spout = core.task
    assert isinstance(spout, SpoutInstance)
    assert spout.blocked() is Blocked.INACTIVE
    assert spout.component.events == []  # deployed deactivated: no call
    core.receive(plan_frame("RUNNING"), 0.0)
    assert spout.blocked() is None and spout.component.events == ["activate"]
    core.receive(FrameDecoder().feed(SAMPLES[m.SpoutThrottle]), 1.0)
    assert spout.blocked() is Blocked.THROTTLED
    core.receive(FrameDecoder().feed(m.encode(m.SpoutThrottle(False))), 3.0)
    assert spout.blocked() is None and spout.throttled_seconds == 2.0
    assert spout.run_round()
    assert spout.component.events[-3:] == ["ack a", "ack b", "ack c"]  # at most once: at once
    core.flush(3.0)
    (frame,) = decoded(core.output()[1:])  # after the running status
    assert msgpack.unpackb(frame.body) == [["a"], ["b"], ["c"]]


def test_at_least_once_a_spout_hears_its_verdicts_and_stops_at_max_pending() -> None:
    clock = Clock()
    core = started(1, clock, **{"topology.reliability.mode": "ATLEAST_ONCE",
                                "topology.max.spout.pending": 2})  # fmt: skip
    spout = core.task
    assert isinstance(spout, SpoutInstance)
    spout.run_round()
    assert spout.blocked() is Blocked.MAX_PENDING and len(spout.in_flight) == 2
    core.flush(0.0)
    out = decoded(core.output())
    (init,) = [f for f in out if isinstance(f, AckFrame)]
    roots = AckBatch.decode(init.body).init[::2]
    verdict = AckBatch(acked=[roots[0]], failed=[roots[1]]).encode()
    clock.now = 0.5
    core.receive(FrameDecoder().feed(encode_ack(1, 0, verdict)), clock.now)
    assert spout.component.events == ["ack a", "fail b"]
    assert spout.blocked() is None and spout.completed == 1


# ---------------------------------------------------------- EFFECTIVELY_ONCE


class Offsets(Spout, StatefulComponent):
    """Emits 0, 1, 2, ... up to test.limit; the next one is its state."""

    outputs = ["n"]

    def init_state(self, stateful_state: Any) -> None:
        self.state = stateful_state

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        self.limit = int(config.get("test.limit", 3))
        self.next = self.state.get("next", 0)
        self.saved: list[int] = []
        self.committed: list[int] = []

    def next_tuple(self) -> None:
        if self.next < self.limit:
            self.emit([self.next])
            self.next += 1

    def pre_save(self, checkpoint_id: Any) -> None:
        if self.state.get("raise"):
            raise RuntimeError("cannot save")
        self.state["next"] = self.next
        self.saved.append(checkpoint_id)

    def post_save(self, checkpoint_id: Any) -> None:
        self.committed.append(checkpoint_id)


def stateful_topology() -> TopologyBuilder:
    b = TopologyBuilder("T")
    offsets = b.add_spout("offsets", Offsets, par=1)  # task 1
    b.add_bolt("sink", Sink, par=1, inputs=[offsets])  # task 2
    return b


EO = {"topology.reliability.mode": "EFFECTIVELY_ONCE"}


def stateful_started(task: int, store: CheckpointStore, epoch: int = 0, restore: int = -1,
                     **properties: Any) -> InstanceCore:  # fmt: skip
    builder = stateful_topology()
    core = make_core(task, Clock(), builder, store, **EO, **properties)
    core.connected()
    core.receive(plan_frame(builder=builder, stateful={"epoch": epoch, "restore": restore}), 0.0)
    assert core.phase is Phase.RUNNING
    return core


def run_jobs(core: InstanceCore, now: float = 1.0) -> list[Any]:
    """Do the runner's part: run each job as its thread would, report it done."""
    jobs = core.take_jobs()
    assert core.task_state is not None
    for job in jobs:
        if isinstance(job, WriteState):
            core.job_done(job, core.task_state.write(job), now)
        else:
            core.job_done(job, core.task_state.prune(job.keep), now)
    return jobs


def test_a_stateful_task_gets_its_state_before_initialize_and_enters_the_epoch(
    tmp_path: Any,
) -> None:
    core = stateful_started(1, CheckpointStore(tmp_path, "T"))
    assert core.task.component.next == 0  # type: ignore[union-attr]
    assert control_messages(core.output()) == [
        m.InstanceStatus(1, "offsets", "running", 501, 0),
        m.Restored(0, 1, ""),
    ]


def test_a_stateful_spout_emits_only_once_its_stream_manager_says_resume(
    tmp_path: Any,
) -> None:
    """Its first build may come while a restore is under way elsewhere: what it
    emitted then would reach bolts still to restore, and be lost with their state."""
    core = stateful_started(1, CheckpointStore(tmp_path, "T"), epoch=2, restore=-1)
    spout = core.task
    assert isinstance(spout, SpoutInstance)
    assert spout.blocked() is Blocked.RESTORING
    core.receive(FrameDecoder().feed(m.encode(m.Resume(1))), 1.0)
    assert spout.blocked() is Blocked.RESTORING  # another epoch's
    core.receive(FrameDecoder().feed(m.encode(m.Resume(2))), 1.1)
    assert spout.blocked() is None


def test_a_checkpoint_sends_what_was_emitted_then_stores_then_sends_markers(
    tmp_path: Any,
) -> None:
    core = stateful_started(1, CheckpointStore(tmp_path, "T"))
    core.output()
    spout = core.task
    assert isinstance(spout, SpoutInstance)
    spout.run_round()
    core.receive(FrameDecoder().feed(m.encode(m.StartCheckpoint(1))), 1.0)
    data, marker = decoded(core.output())
    assert msgpack.unpackb(data.body) == [[0], [1], [2]]  # emitted before the cut, first
    assert isinstance(marker, MarkerFrame) and (marker.dst_task, marker.checkpoint) == (2, 1)
    (job,) = run_jobs(core)
    assert isinstance(job, WriteState) and job.kind == "full"
    (stored,) = control_messages(core.output())
    assert isinstance(stored, m.StateStored) and (stored.checkpoint, stored.task_id) == (1, 1)
    assert stored.size > 0 and spout.component.saved == [1]
    figures = {s[0]: s[3] for s in core.collect(0)}
    assert figures["heron_checkpoints_taken_total"] == 1
    assert figures["heron_checkpoint_stored_bytes_total"] == stored.size
    assert figures["heron_restores_total"] == 0


def test_a_stateless_task_reports_an_empty_part_for_the_checkpoint(tmp_path: Any) -> None:
    core = stateful_started(2, CheckpointStore(tmp_path, "T"))
    core.output()
    core.receive(FrameDecoder().feed(encode_marker(2, 0, 4)), 1.0)
    assert control_messages(core.output()) == [m.StateStored(4, 2, 0, "none", 0.0)]
    assert core.take_jobs() == []


def test_a_complete_checkpoint_commits_and_prunes_the_files_no_one_needs(
    tmp_path: Any,
) -> None:
    store = CheckpointStore(tmp_path, "T")
    core = stateful_started(1, store)
    for checkpoint in (1, 2, 3):
        core.receive(FrameDecoder().feed(m.encode(m.StartCheckpoint(checkpoint))), 1.0)
        run_jobs(core)
    core.receive(FrameDecoder().feed(m.encode(m.CheckpointComplete(3, [2, 3]))), 2.0)
    assert core.task.component.committed == [3]  # type: ignore[union-attr]
    (prune,) = run_jobs(core)
    assert prune == PruneStates((2, 3))
    # a state this small is stored whole each time (more than half of it changed)
    files = sorted(p.name for p in store.task_dir(1).iterdir())
    assert files == ["000000000002.full", "000000000003.full"]


def test_a_restore_drops_unsent_output_and_builds_the_component_from_the_checkpoint(
    tmp_path: Any,
) -> None:
    store = CheckpointStore(tmp_path, "T")
    core = stateful_started(1, store, **{"test.limit": 10})
    spout = core.task
    assert isinstance(spout, SpoutInstance)
    core.receive(FrameDecoder().feed(m.encode(m.StartCheckpoint(1))), 1.0)
    run_jobs(core)  # state: next = 0
    old = spout.component
    spout.run_round()  # emitted 0..9 after the cut, not sent yet
    core.output()
    core.receive(FrameDecoder().feed(m.encode(m.Restore(1, 1))), 2.0)
    assert spout.component is not old and spout.component.next == 0
    out = decoded(core.output())
    assert not [f for f in out if isinstance(f, DataFrame)]  # of the old epoch: never sent
    assert [m.decode(f.payload) for f in out if isinstance(f, ControlFrame)] == [
        m.Restored(1, 1, "")
    ]
    assert spout.blocked() is Blocked.RESTORING  # until every task is in epoch 1
    core.receive(FrameDecoder().feed(m.encode(m.Resume(0))), 2.1)
    assert spout.blocked() is Blocked.RESTORING  # another epoch's
    core.receive(FrameDecoder().feed(m.encode(m.Resume(1))), 2.2)
    assert spout.blocked() is None


def test_a_checkpoint_that_cannot_be_loaded_is_reported_and_the_state_is_empty(
    tmp_path: Any,
) -> None:
    store = CheckpointStore(tmp_path, "T")
    core = stateful_started(1, store, **{"test.limit": 10})
    core.task.run_round()  # type: ignore[union-attr]
    core.receive(FrameDecoder().feed(m.encode(m.StartCheckpoint(1))), 1.0)
    run_jobs(core)
    (path,) = store.task_dir(1).iterdir()
    path.write_bytes(path.read_bytes()[:-2] + b"!!")
    core.output()
    core.receive(FrameDecoder().feed(m.encode(m.Restore(1, 1))), 2.0)
    (restored,) = control_messages(core.output())
    assert isinstance(restored, m.Restored) and "checksum" in restored.error
    assert core.task.component.next == 0  # type: ignore[union-attr]


def test_a_pre_save_that_raises_fails_the_checkpoint_but_markers_still_flow(
    tmp_path: Any,
) -> None:
    core = stateful_started(1, CheckpointStore(tmp_path, "T"))
    core.task.component.state["raise"] = True  # type: ignore[union-attr]
    core.output()
    core.receive(FrameDecoder().feed(m.encode(m.StartCheckpoint(1))), 1.0)
    out = decoded(core.output())
    assert [type(f) for f in out] == [ControlFrame, MarkerFrame]
    (failed,) = [m.decode(f.payload) for f in out if isinstance(f, ControlFrame)]
    assert isinstance(failed, m.CheckpointFailed) and "RuntimeError: cannot save" in failed.reason
    assert core.take_jobs() == []


# ------------------------------------------------------ hung and runaway tasks


def test_the_watch_takes_its_limits_from_the_component_config() -> None:
    b = TopologyBuilder("T")
    words = b.add_spout("words", Words, par=1, config={"heron.instance.hang.timeout.secs": 7})
    b.add_bolt("count", Counter, par=1, inputs=[words])
    definition = definition_of(b)
    packing = pack_round_robin("T", [(c.name, c.par) for c in definition.components.values()], 1)
    resolved = config.resolve(
        "local",
        None,
        {"heron.instance.hang.restart": "true", "heron.instance.memory.limit.mb": "300"},
    )

    def core(task: int) -> InstanceCore:
        return InstanceCore(
            topology="T",
            task_id=task,
            restarts=0,
            definition=definition,
            packing=packing,
            topology_config=resolved,
            engine=EngineConfig.from_config(resolved),
            clock=Clock(),
        )

    spout, bolt = core(1).watch, core(2).watch
    assert (spout.hang_timeout, spout.restart_on_hang, spout.memory_limit_bytes) == (
        7.0,
        True,
        300 * 1024 * 1024,
    )
    assert bolt.hang_timeout == 60.0  # the default: the spout's setting is its own


def test_a_restart_reports_its_reason_as_the_last_error() -> None:
    core = started(2, Clock())
    core.output()
    reason = "restarted: memory 250 MiB above heron.instance.memory.limit.mb 200"
    (status,) = control_messages([core.exited(TaskRestart(reason))])
    assert status == m.InstanceStatus(2, "count", "failed", 502, 0, reason)
    assert core.exited(TaskStopped()) == b""  # SIGTERM: no error to report


def test_a_restart_during_initialize_fails_the_start_with_its_reason() -> None:
    class Stuck(Bolt):
        outputs = ["word", "n"]

        def initialize(self, config: dict[str, Any], context: Any) -> None:
            raise TaskRestart("restarted: initialize() had not returned for 61.0s (...)")

    b = TopologyBuilder("T")
    words = b.add_spout("words", Words, par=1)
    b.add_bolt("count", Stuck, par=1, inputs=[words])
    b.add_bolt("sink", Sink, par=1, inputs=["count"])
    definition = definition_of(b)
    packing = pack_round_robin("T", [(c.name, c.par) for c in definition.components.values()], 1)
    resolved = config.resolve("local", None, {})
    core = InstanceCore(
        topology="T",
        task_id=2,
        restarts=0,
        definition=definition,
        packing=packing,
        topology_config=resolved,
        engine=EngineConfig.from_config(resolved),
        clock=Clock(),
        pid=502,
    )
    core.connected()
    core.receive(plan_frame(), 0.0)
    assert core.phase is Phase.FAILED
    (status,) = control_messages(core.output())
    assert status.error == (  # type: ignore[attr-defined]
        "restarted: initialize() had not returned for 61.0s (...) (in initialize)"
    )


def test_the_metrics_say_how_long_a_hung_call_has_run() -> None:
    clock = Clock()
    core = started(1, clock, **{"heron.instance.hang.timeout.secs": 2})
    base = {"component": "words", "instance_id": "1"}

    def watch_samples() -> list[Any]:
        names_ = ("heron_instance_hung_seconds", "heron_instance_hangs_total")
        return [s for s in core.collect(0) if s[0] in names_]

    assert watch_samples() == [
        ["heron_instance_hung_seconds", "gauge", {**base, "call": ""}, 0.0],
        ["heron_instance_hangs_total", "counter", base, 0],
    ]
    core.watch.beat(10.0)
    core.watch.check(13.0, "next_tuple()", rss=1 << 20)
    clock.now = 20.0
    assert watch_samples() == [
        ["heron_instance_hung_seconds", "gauge", {**base, "call": "next_tuple()"}, 10.0],
        ["heron_instance_hangs_total", "counter", base, 1],
    ]
    assert ["heron_instance_rss_bytes", "gauge", base, 1 << 20] in core.collect(0)
