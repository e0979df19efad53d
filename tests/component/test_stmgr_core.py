"""The stream manager core without processes, sockets or a loop: links, the
protocol table, routing, acking, backpressure and time, all with ``now``
passed in."""

from __future__ import annotations

from typing import Any

import pytest

from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.stmgr.backpressure import Strategy
from heronpy_lite.stmgr.core import (
    ALLOWED,
    Attach,
    Close,
    ConnectPeer,
    Detach,
    Forward,
    Link,
    Pause,
    Purge,
    Reply,
    Resume,
    Role,
    Send,
    StreamManagerCore,
    WatchRelief,
)
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.acking import AckBatch
from heronpy_lite.wire.frames import (
    AckFrame,
    DataFrame,
    FrameDecoder,
    MarkerFrame,
    encode_ack,
    encode_data,
    encode_marker,
)
from heronpy_lite.wire.handshake import Handshake
from heronpy_lite.wire.plan import PhysicalPlan, StmgrLocation

# spout (tasks 1, 2) -> bolt (tasks 3, 4) over two containers, round robin:
# container 1 holds tasks 1 and 3, container 2 tasks 2 and 4.
PACKING = pack_round_robin("T", [("spout", 2), ("bolt", 2)], 2)
COMPONENTS = {
    "spout": {"par": 2, "spout": True, "inputs": []},
    "bolt": {"par": 2, "spout": False, "inputs": ["spout"]},
}


SECRET = b"k" * 32


def make_core(
    strategy: Strategy = Strategy.SPOUT,
    timeout: float | None = 30.0,
    stateful: bool = False,
    alignment_bytes: int = 1 << 20,
    secret: bytes | None = None,
    max_connections: int = 1024,
) -> Any:
    return StreamManagerCore(
        topology="T",
        container=1,
        packing=PACKING,
        components=COMPONENTS,
        strategy=strategy,
        message_timeout_secs=timeout,
        heartbeat_interval_secs=2.0,
        host="127.0.0.1",
        pid=100,
        restarts=0,
        now=0.0,
        stateful=stateful,
        alignment_buffer_bytes=alignment_bytes,
        secret=secret,
        max_connections=max_connections,
    )


def frames(*encoded: bytes) -> list[Any]:
    return FrameDecoder().feed(b"".join(encoded))


def control(msg: m.Message) -> list[Any]:
    return frames(m.encode(msg))


def plan(state: str = "RUNNING", port2: int = 7002) -> m.PhysicalPlanUpdate:
    stmgrs = {
        1: StmgrLocation(1, "127.0.0.1", 7001, 100),
        2: StmgrLocation(2, "127.0.0.1", port2, 200),
    }
    return m.PhysicalPlanUpdate(PhysicalPlan(PACKING, stmgrs, state).to_dict())


def with_tmaster(core: Any, state: str = "RUNNING") -> Link:
    link, actions = core.tmaster_connected()
    assert isinstance(actions[0], Reply) and actions[0].link is link
    (register,) = frames(actions[0].frame)
    assert m.decode(register.payload) == m.RegisterStmgr("T", 1, "127.0.0.1", 0, 100, 0, [1, 3])
    core.received(link, control(plan(state)), 0.0)
    return link


def register(core: Any, task: int, pid: int = 10) -> tuple[Link, list[Any]]:
    link = core.accepted()
    component = "spout" if task in (1, 2) else "bolt"
    actions = core.received(link, control(m.RegisterInstance("T", task, component, pid, 0)), 0.0)
    return link, actions


def messages(actions: list[Any], kind: type = Reply) -> list[m.Message]:
    return [
        m.decode(f.payload)
        for a in actions
        if isinstance(a, kind)
        for f in frames(a.frame)
        if not isinstance(f, (DataFrame, AckFrame))
    ]


# ------------------------------------------------------------------ handshakes


def test_an_instance_gets_the_plan_before_its_outlet_is_attached() -> None:
    core = make_core()
    with_tmaster(core)
    link, actions = register(core, 3)
    assert link.role is Role.INSTANCE and link.task == 3
    kinds = [type(a) for a in actions]
    assert kinds.index(Reply) < kinds.index(Attach)
    assert isinstance(messages(actions)[0], m.PhysicalPlanUpdate)
    assert Attach("task 3", link) in actions


def test_an_instance_registered_before_the_plan_is_attached_when_it_arrives() -> None:
    core = make_core()
    tmaster, _ = core.tmaster_connected()
    link, actions = register(core, 3)
    assert not [a for a in actions if isinstance(a, Attach)]  # tuples wait in the outlet
    after = core.received(tmaster, control(plan()), 0.0)
    reply = next(i for i, a in enumerate(after) if isinstance(a, Reply) and a.link is link)
    assert after.index(Attach("task 3", link)) == reply + 1
    assert ConnectPeer(2, "127.0.0.1", 7002) in after


def test_a_registration_for_a_task_elsewhere_is_rejected_and_closed() -> None:
    core = make_core()
    link, actions = register(core, 2)  # task 2 runs in container 2
    assert isinstance(messages(actions)[0], m.Rejected)
    assert isinstance(actions[-1], Close) and actions[-1].link is link


def test_a_second_registration_of_a_connected_task_is_refused() -> None:
    core = make_core()
    with_tmaster(core)
    first, _ = register(core, 3, pid=10)
    hijacker, actions = register(core, 3, pid=11)  # would divert task 3's tuples
    assert isinstance(messages(actions)[0], m.Rejected)
    assert Close(hijacker, "task 3 is connected already") in actions
    assert not [a for a in actions if isinstance(a, (Attach, Detach))]
    # the refused connection closing detaches nothing: it never was task 3's
    assert core.closed(hijacker, 1.0) == []
    # once the task's own connection is gone, its new process registers
    assert Detach("task 3", first) in core.closed(first, 1.0)
    second, actions = register(core, 3, pid=12)
    assert Attach("task 3", second) in actions


def test_a_peer_says_hello_before_anything_else() -> None:
    core = make_core()
    link = core.accepted()
    assert core.received(link, control(m.HelloStmgr("T", 2)), 0.0) == []
    assert (link.role, link.container) == (Role.PEER, 2)
    other = core.accepted()
    (close,) = core.received(other, control(m.HelloStmgr("other", 2)), 0.0)
    assert isinstance(close, Close)


def test_our_connection_to_a_peer_says_hello_then_attaches_its_outlet() -> None:
    core = make_core()
    link, actions = core.peer_connected(2)
    assert link.role is Role.PEER_OUT
    assert messages(actions[:1]) == [m.HelloStmgr("T", 1, core.epoch)]
    assert actions[-1] == Attach("stmgr 2", link)


# ------------------------------------------------------ the protocol as a table

SAMPLES: dict[type, bytes] = {
    m.AuthHello: m.encode(m.AuthHello(b"n" * 16)),
    m.AuthProof: m.encode(m.AuthProof(b"p" * 32)),
    DataFrame: encode_data(4, 3, "default", b"\x90"),
    AckFrame: encode_ack(1, 3, AckBatch().encode()),
    m.RegisterInstance: m.encode(m.RegisterInstance("T", 3, "bolt", 10, 0)),
    m.HelloStmgr: m.encode(m.HelloStmgr("T", 2)),
    m.InstanceStatus: m.encode(m.InstanceStatus(3, "bolt", "running", 10, 0)),
    m.BackpressureNotice: m.encode(m.BackpressureNotice(2, "bolt", True)),
    m.PhysicalPlanUpdate: m.encode(plan()),
    m.Rejected: m.encode(m.Rejected("no")),
    m.Heartbeat: m.encode(m.Heartbeat(1)),
    m.SpoutThrottle: m.encode(m.SpoutThrottle(True)),
    m.MetricsSnapshot: m.encode(m.MetricsSnapshot("x", [])),
    m.ControlRequest: m.encode(m.ControlRequest("status")),
    m.RegisterStmgr: m.encode(m.RegisterStmgr("T", 2, "h", 1, 1, 0, [2])),
    # EFFECTIVELY_ONCE
    MarkerFrame: encode_marker(4, 3, 1),
    m.StateStored: m.encode(m.StateStored(1, 3, 10, "full", 0.1)),
    m.CheckpointFailed: m.encode(m.CheckpointFailed(1, "task 3", "no")),
    m.Restored: m.encode(m.Restored(0, 3)),
    m.EpochStart: m.encode(m.EpochStart(0)),
    m.StartCheckpoint: m.encode(m.StartCheckpoint(1)),
    m.CheckpointComplete: m.encode(m.CheckpointComplete(1, [1])),
    m.Restore: m.encode(m.Restore(-1, 0)),
    m.Resume: m.encode(m.Resume(0)),
    m.RestoreDone: m.encode(m.RestoreDone(0, 2, [])),
}


#: what a peer (container 2: tasks 2 and 4) sends: its own tasks' frames
PEER_SAMPLES: dict[type, bytes] = {
    DataFrame: encode_data(3, 4, "default", b"\x90"),
    AckFrame: encode_ack(1, 4, AckBatch().encode()),
    MarkerFrame: encode_marker(3, 2, 1),  # from spout task 2, in container 2
}


def link_in(core: Any, role: Role) -> Link:
    """A link of ``role``, as the handshakes make it (task 3; container 2)."""
    if role is Role.UNAUTHENTICATED:
        return core.accepted()  # type: ignore[no-any-return]
    if role is Role.AUTHENTICATING:
        return core.peer_connected(2)[0]  # type: ignore[no-any-return]
    if role is Role.PENDING:
        return core.accepted()  # type: ignore[no-any-return]
    if role is Role.INSTANCE:
        return register(core, 3)[0]
    if role is Role.PEER:
        link = core.accepted()
        core.received(link, control(m.HelloStmgr("T", 2)), 0.0)
        return link  # type: ignore[no-any-return]
    if role is Role.PEER_OUT:
        return core.peer_connected(2)[0]  # type: ignore[no-any-return]
    return core.tmaster_connected()[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("stateful", [False, True], ids=["ALO", "EO"])
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("kind", list(SAMPLES), ids=lambda k: k.__name__)
def test_every_link_role_may_send_exactly_what_the_table_allows(
    role: Role, kind: type, stateful: bool
) -> None:
    handshaking = role in (Role.UNAUTHENTICATED, Role.AUTHENTICATING)
    core = make_core(stateful=stateful, secret=SECRET if handshaking else None)
    if not handshaking:
        with_tmaster(core)
    link = link_in(core, role)
    sample = PEER_SAMPLES.get(kind, SAMPLES[kind]) if role is Role.PEER else SAMPLES[kind]
    actions = core.received(link, frames(sample), 1.0)
    closed = [a for a in actions if isinstance(a, Close) and a.link is link]
    if kind in ALLOWED[role] and kind is m.AuthProof:
        # admitted by the table; the handshake refuses a proof before the hello
        assert closed and closed[0].reason.startswith("authentication failed"), actions
    elif kind in ALLOWED[role]:
        assert not closed, actions
    else:
        assert closed and closed[0].reason.startswith("protocol error"), actions
        assert core.protocol_errors == 1


def test_an_instance_can_send_as_itself_only() -> None:
    core = make_core()
    with_tmaster(core)
    link, _ = register(core, 3)
    (close,) = core.received(link, frames(encode_data(4, 1, "default", b"\x90")), 0.0)
    assert isinstance(close, Close) and "from task 1" in close.reason
    link, _ = register(core, 3)
    status = m.InstanceStatus(1, "spout", "running", 10, 0)
    assert isinstance(core.received(link, control(status), 0.0)[-1], Close)


def test_frames_after_a_violation_in_the_same_read_are_not_handled() -> None:
    core = make_core()
    link = core.accepted()
    actions = core.received(link, frames(SAMPLES[DataFrame], m.encode(m.HelloStmgr("T", 2))), 0.0)
    assert len(actions) == 1 and isinstance(actions[0], Close)
    assert link.role is Role.PENDING


def test_garbage_in_a_control_frame_closes_that_link_only() -> None:
    core = make_core()
    with_tmaster(core)
    good, _ = register(core, 3)
    bad = core.accepted()
    (close,) = core.received(bad, frames(b"\x00\x00\x00\x03\x02\xc1\xc1"), 0.0)
    assert isinstance(close, Close) and close.link is bad
    forward = core.received(good, frames(encode_data(4, 3, "default", b"\x90")), 0.0)
    assert forward == [Forward("stmgr 2", encode_data(4, 3, "default", b"\x90"))]


# ---------------------------------------------------------------- routing


def test_data_goes_to_the_local_task_or_the_peer_unknown_tasks_are_counted() -> None:
    core = make_core()
    with_tmaster(core)
    peer = link_in(core, Role.PEER)
    to_local = encode_data(3, 2, "default", b"\x91\x01", tuples=1)
    to_remote = encode_data(4, 2, "default", b"\x90")
    to_nobody = encode_data(99, 2, "default", b"\x90")
    actions = core.received(peer, frames(to_local, to_remote, to_nobody), 0.0)
    assert actions == [Forward("task 3", to_local, 1), Forward("stmgr 2", to_remote)]
    assert core.unroutable_frames == 1


def test_acks_for_a_local_spout_feed_the_tracker_others_are_routed() -> None:
    core = make_core()
    with_tmaster(core)
    spout, _ = register(core, 1)
    bolt, _ = register(core, 3)
    init = encode_ack(1, 1, AckBatch(init=[77, 0b1010]).encode())
    assert core.received(spout, frames(init), 0.0) == []
    half = encode_ack(1, 3, AckBatch(update=[77, 0b1000]).encode())
    assert core.received(bolt, frames(half), 0.0) == []
    rest = encode_ack(1, 3, AckBatch(update=[77, 0b0010]).encode())
    (verdict,) = core.received(bolt, frames(rest), 0.0)
    assert isinstance(verdict, Send) and verdict.outlet == "task 1"
    (frame,) = frames(verdict.frame)
    assert AckBatch.decode(frame.body).acked == [77]
    remote = encode_ack(2, 3, AckBatch(update=[5, 5]).encode())
    assert core.received(bolt, frames(remote), 0.0) == [Forward("stmgr 2", remote)]


def test_a_new_plan_connects_to_peers_whose_address_changed_only() -> None:
    core = make_core()
    tmaster = with_tmaster(core)
    same = core.received(tmaster, control(plan()), 1.0)
    assert not [a for a in same if isinstance(a, ConnectPeer)]
    moved = core.received(tmaster, control(plan(port2=7999)), 2.0)
    assert ConnectPeer(2, "127.0.0.1", 7999) in moved


def test_plan_updates_go_to_every_attached_instance() -> None:
    core = make_core()
    tmaster = with_tmaster(core)
    _, _ = register(core, 1)
    _, _ = register(core, 3)
    actions = core.received(tmaster, control(plan("PAUSED")), 1.0)
    sends = {a.outlet for a in actions if isinstance(a, Send)}
    assert sends == {"task 1", "task 3"}


# ------------------------------------------------------------ backpressure


def test_congestion_pauses_the_spouts_tells_peers_and_watches_for_relief() -> None:
    core = make_core(Strategy.SPOUT)
    with_tmaster(core)
    spout, _ = register(core, 1)
    register(core, 3)
    actions = core.congested("task 3", 5.0)
    assert Pause(spout) in actions and WatchRelief("task 3") in actions
    assert [msg for msg in messages(actions, Send) if isinstance(msg, m.SpoutThrottle)] == [
        m.SpoutThrottle(True)
    ]
    notices = [msg for msg in messages(actions, Send) if isinstance(msg, m.BackpressureNotice)]
    assert notices == [m.BackpressureNotice(1, "bolt", True)]
    assert core.congested("task 3", 6.0) == []  # already congested
    relieved = core.relieved("task 3", 7.0)
    assert Resume(spout) in relieved
    assert m.BackpressureNotice(1, "bolt", False) in messages(relieved, Send)
    assert core.stats(7.0)["backpressure"]["culprit_seconds"] == {"bolt": 2.0}


def test_a_spout_registering_while_paused_is_paused_and_throttled() -> None:
    core = make_core(Strategy.SPOUT)
    with_tmaster(core)
    register(core, 3)
    core.congested("task 3", 0.0)
    spout, actions = register(core, 1)
    assert Pause(spout) in actions
    assert m.SpoutThrottle(True) in messages(actions, Send)


def test_a_peer_s_notices_pause_local_spouts_until_it_goes_away() -> None:
    core = make_core(Strategy.SPOUT)
    with_tmaster(core)
    spout, _ = register(core, 1)
    peer = link_in(core, Role.PEER)
    actions = core.received(peer, control(m.BackpressureNotice(2, "bolt", True)), 1.0)
    assert Pause(spout) in actions
    assert Resume(spout) in core.closed(peer, 2.0)


def test_tcp_backpressure_pauses_nothing() -> None:
    core = make_core(Strategy.TCP)
    with_tmaster(core)
    register(core, 1)
    register(core, 3)
    assert core.congested("task 3", 0.0) == [WatchRelief("task 3")]


# -------------------------------------------------------------------- time


def test_heartbeats_fall_due_every_interval() -> None:
    core = make_core(timeout=None)
    tmaster = with_tmaster(core)
    (beat,) = core.tick(0.0)
    assert isinstance(beat, Reply) and beat.link is tmaster
    assert isinstance(messages([beat])[0], m.Heartbeat)
    assert core.tick(1.9) == []
    assert core.next_tick() == 2.0
    assert len(core.tick(2.0)) == 1


def test_trees_that_time_out_are_failed_to_their_spout() -> None:
    core = make_core(timeout=10.0)
    with_tmaster(core)
    spout, _ = register(core, 1)
    core.received(spout, frames(encode_ack(1, 1, AckBatch(init=[9, 3]).encode())), 0.0)
    verdicts = [a for t in (4.0, 8.0, 12.0, 16.0) for a in core.tick(t) if isinstance(a, Send)]
    (verdict,) = verdicts
    (frame,) = frames(verdict.frame)
    assert verdict.outlet == "task 1" and AckBatch.decode(frame.body).failed == [9]


def test_an_instance_that_goes_away_is_reported_down() -> None:
    core = make_core()
    with_tmaster(core)
    link, _ = register(core, 3)
    core.received(link, control(m.InstanceStatus(3, "bolt", "running", 10, 0)), 0.0)
    actions = core.closed(link, 1.0)
    assert Detach("task 3", link) in actions
    assert messages(actions)[-1] == m.InstanceStatus(3, "bolt", "down", 10, 0)


# ---------------------------------------------------------- EFFECTIVELY_ONCE
#
# Container 1 holds spout task 1 and bolt task 3; bolt task 3 is fed by spout
# tasks 1 (here) and 2 (container 2).


def stateful_plan(epoch: int = 0, restore: int = -1) -> m.PhysicalPlanUpdate:
    stmgrs = {
        1: StmgrLocation(1, "127.0.0.1", 7001, 100),
        2: StmgrLocation(2, "127.0.0.1", 7002, 200),
    }
    physical = PhysicalPlan(
        PACKING, stmgrs, "RUNNING", stateful={"epoch": epoch, "restore": restore}
    )
    return m.PhysicalPlanUpdate(physical.to_dict())


def stateful_core(**kw: Any) -> tuple[Any, Link, Link, Link, Link]:
    """A stateful core in epoch 0: the tmaster, spout 1 and bolt 3 in the epoch, and
    container 2's peer link."""
    core = make_core(stateful=True, **kw)
    tmaster, _ = core.tmaster_connected()
    core.received(tmaster, control(stateful_plan()), 0.0)
    spout, _ = register(core, 1)
    bolt, _ = register(core, 3)
    # in the epoch now; a spout may go on (the bolt has nothing to resume)
    resume = core.received(spout, control(m.Restored(0, 1)), 0.0)
    assert [(a.outlet, messages([a], Send)) for a in resume] == [("task 1", [m.Resume(0)])]
    assert core.received(bolt, control(m.Restored(0, 3)), 0.0) == []
    peer = core.accepted()
    core.received(peer, control(m.HelloStmgr("T", 2, 0)), 0.0)
    return core, tmaster, spout, bolt, peer


def to_tmaster(actions: list[Any], tmaster: Link) -> list[m.Message]:
    return messages([a for a in actions if isinstance(a, Reply) and a.link is tmaster])


def test_a_checkpoint_starts_at_the_local_spouts() -> None:
    core, tmaster, *_ = stateful_core()
    actions = core.received(tmaster, control(m.StartCheckpoint(1)), 1.0)
    assert [(a.outlet, messages([a], Send)) for a in actions] == [
        ("task 1", [m.StartCheckpoint(1)])
    ]


def test_a_checkpoint_a_local_spout_cannot_take_part_in_is_declined_at_once() -> None:
    core = make_core(stateful=True)
    tmaster, _ = core.tmaster_connected()
    core.received(tmaster, control(stateful_plan()), 0.0)
    register(core, 1)  # connected, but not in the epoch yet (no Restored)
    actions = core.received(tmaster, control(m.StartCheckpoint(1)), 1.0)
    (failed,) = to_tmaster(actions, tmaster)
    assert isinstance(failed, m.CheckpointFailed) and failed.where == "stmgr 1"
    assert "[1]" in failed.reason
    assert not [a for a in actions if isinstance(a, Send)]


def test_markers_align_a_local_bolt_across_its_local_and_remote_sources() -> None:
    core, _, spout, _, peer = stateful_core()
    d1 = encode_data(3, 1, "default", b"\x91\x01", tuples=1)
    d2 = encode_data(3, 1, "default", b"\x91\x02", tuples=1)
    d3 = encode_data(3, 2, "default", b"\x91\x03", tuples=1)
    remote_marker = encode_marker(4, 1, 1)
    actions = core.received(spout, frames(d1, encode_marker(3, 1, 1), remote_marker, d2), 1.0)
    # d2 is past spout 1's cut: held; the marker for task 4 goes on to container 2
    assert actions == [Forward("task 3", d1, 1), Forward("stmgr 2", remote_marker)]
    assert core.alignment.held_bytes == len(d2)
    # spout 2 has not reached the cut: its data goes through
    assert core.received(peer, frames(d3), 1.1) == [Forward("task 3", d3, 1)]
    actions = core.received(peer, frames(encode_marker(3, 2, 1)), 1.2)
    assert actions == [Forward("task 3", encode_marker(3, 0, 1)), Forward("task 3", d2, 1)]
    assert core.alignment.held_bytes == 0


def test_an_alignment_past_its_bound_is_declined_and_nothing_is_held() -> None:
    core, tmaster, spout, _, _ = stateful_core(alignment_bytes=40)
    core.received(spout, frames(encode_marker(3, 1, 1)), 1.0)
    big = encode_data(3, 1, "default", b"\x91" + b"\xc4\x40" + bytes(64), tuples=1)
    actions = core.received(spout, frames(big), 1.1)
    assert actions[:2] == [Forward("task 3", encode_marker(3, 0, 1)), Forward("task 3", big, 1)]
    (failed,) = to_tmaster(actions, tmaster)
    assert isinstance(failed, m.CheckpointFailed) and failed.checkpoint == 1
    assert failed.where == "stmgr 1"


def test_state_reports_reach_the_tmaster_from_their_own_task_only() -> None:
    core, tmaster, _, bolt, _ = stateful_core()
    report = m.StateStored(1, 3, 10, "full", 0.1)
    assert to_tmaster(core.received(bolt, control(report), 1.0), tmaster) == [report]
    forged = core.received(bolt, control(m.StateStored(1, 1, 10, "full", 0.1)), 1.0)
    assert isinstance(forged[-1], Close) and "a state of task 1" in forged[-1].reason


def test_a_restore_drops_what_is_queued_and_reconnects_every_instance() -> None:
    core, tmaster, spout, bolt, _ = stateful_core()
    actions = core.received(tmaster, control(m.Restore(4, 1)), 2.0)
    assert {a.outlet for a in actions if isinstance(a, Purge)} == {"task 1", "task 3", "stmgr 2"}
    closes = [a for a in actions if isinstance(a, Close)]
    assert {c.link for c in closes} == {spout, bolt} and all(c.abort for c in closes)
    assert messages([a for a in actions if isinstance(a, Send)], Send) == [m.EpochStart(1)]
    assert to_tmaster(actions, tmaster) == []  # no task has restored yet
    core.closed(spout, 2.0)
    core.closed(bolt, 2.0)
    # they connect again, still in epoch 0: each is told to restore
    spout, _ = register(core, 1)
    bolt, _ = register(core, 3)
    for link, task in ((spout, 1), (bolt, 3)):
        (restore,) = core.received(link, control(m.Restored(0, task)), 2.1)
        assert messages([restore], Send) == [m.Restore(4, 1)]
    assert core.received(spout, control(m.Restored(1, 1)), 2.2) == []
    done = core.received(bolt, control(m.Restored(1, 3)), 2.3)
    assert to_tmaster(done, tmaster) == [m.RestoreDone(1, 1, [])]
    # spouts start again only when every container has restored
    resume = core.received(tmaster, control(m.Resume(1)), 2.4)
    assert [(a.outlet, messages([a], Send)) for a in resume] == [("task 1", [m.Resume(1)])]


def test_a_task_that_cannot_load_its_state_is_named_in_the_answer() -> None:
    core, tmaster, spout, bolt, _ = stateful_core()
    core.received(tmaster, control(m.Restore(4, 1)), 2.0)
    core.closed(spout, 2.0)
    core.closed(bolt, 2.0)
    spout, _ = register(core, 1)
    bolt, _ = register(core, 3)
    core.received(spout, control(m.Restored(1, 1)), 2.1)
    done = core.received(bolt, control(m.Restored(1, 3, "4.full fails its checksum")), 2.2)
    assert to_tmaster(done, tmaster) == [m.RestoreDone(1, 1, [[3, "4.full fails its checksum"]])]


def test_what_a_peer_sends_in_an_older_epoch_is_dropped() -> None:
    core, tmaster, _, _, peer = stateful_core()
    core.received(tmaster, control(m.Restore(4, 1)), 2.0)
    data = encode_data(3, 2, "default", b"\x91\x01", tuples=1)
    assert core.received(peer, frames(data, encode_marker(3, 2, 3)), 2.1) == []
    assert core.dropped_of_old_epoch == 2
    assert core.received(peer, control(m.EpochStart(1)), 2.2) == []
    assert core.received(peer, frames(data), 2.3) == [Forward("task 3", data, 1)]


def test_a_peer_ahead_is_not_read_until_this_stream_manager_is_in_its_epoch() -> None:
    core, tmaster, _, _, peer = stateful_core()
    assert core.received(peer, control(m.EpochStart(1)), 2.0) == [Pause(peer)]
    actions = core.received(tmaster, control(m.Restore(4, 1)), 2.1)
    assert Resume(peer) in actions
    # a second peer connection that says hello from further ahead waits longer
    ahead = core.accepted()
    assert core.received(ahead, control(m.HelloStmgr("T", 2, 3)), 2.2) == [Pause(ahead)]
    assert Resume(ahead) not in core.received(tmaster, control(m.Restore(4, 2)), 2.3)
    assert Resume(ahead) in core.received(tmaster, control(m.Restore(4, 3)), 2.4)


def test_a_peer_that_says_hello_before_the_plan_arrives_is_read_once_it_does() -> None:
    """The first start: a peer in epoch 0 may connect before this stream manager has
    its plan (and so its epoch); it is held only until the plan says epoch 0."""
    core = make_core(stateful=True)
    tmaster, _ = core.tmaster_connected()
    peer = core.accepted()
    assert core.received(peer, control(m.HelloStmgr("T", 2, 0)), 0.0) == [Pause(peer)]
    assert Resume(peer) in core.received(tmaster, control(stateful_plan()), 0.1)
    # ... and what it sends counts: a marker for local bolt 3 reaches the alignment
    marker = encode_marker(3, 2, 1)
    core.received(peer, frames(marker), 0.2)
    assert core.dropped_of_old_epoch == 0


def test_a_replaced_instance_counts_only_from_the_restore_the_tmaster_starts() -> None:
    core, tmaster, _, bolt, _ = stateful_core()
    core.closed(bolt, 1.0)
    bolt, _ = register(core, 3, pid=11)  # a new process: its state is gone
    assert core.received(bolt, control(m.Restored(0, 3)), 1.1) == []
    data = encode_data(4, 3, "default", b"\x91\x01", tuples=1)
    assert core.received(bolt, frames(data), 1.2) == []  # not counted
    assert core.dropped_of_old_epoch == 1
    core.received(tmaster, control(m.Restore(-1, 1)), 1.3)
    core.closed(bolt, 1.3)
    bolt, _ = register(core, 3, pid=11)
    core.received(bolt, control(m.Restored(1, 3)), 1.4)
    assert core.received(bolt, frames(data), 1.5) == [Forward("stmgr 2", data)]


def test_checkpoint_metrics_count_declines_alignment_and_the_tmaster_figures() -> None:
    core, tmaster, spout, _, _ = stateful_core(alignment_bytes=40)

    def samples(now: float) -> dict[str, float]:
        return {s[0]: s[3] for s in core.collect_metrics([], now) if not s[2]}

    core.received(spout, frames(encode_marker(3, 1, 1)), 1.0)
    big = encode_data(3, 1, "default", b"\x91" + b"\xc4\x40" + bytes(64), tuples=1)
    assert samples(1.05)["heron_stmgr_alignment_held_bytes"] == 0
    core.received(spout, frames(big), 1.1)  # declined: past the bound
    before = samples(1.2)
    assert before["heron_stmgr_checkpoints_declined_total"] == 1
    assert before["heron_stmgr_alignment_held_bytes"] == 0
    assert "heron_checkpoint_latest" not in before  # none complete yet
    done = m.CheckpointComplete(2, [2], duration=0.25, size=900, failed=1)
    core.received(tmaster, control(done), 3.0)
    after = samples(4.5)
    assert after["heron_checkpoint_latest"] == 2
    assert after["heron_checkpoint_age_seconds"] == pytest.approx(1.5)
    assert after["heron_checkpoint_duration_seconds"] == 0.25
    assert after["heron_checkpoint_size_bytes"] == 900
    assert after["heron_checkpoints_failed_total"] == 1
    assert after["heron_stmgr_epoch"] == 0


def test_an_instance_registering_again_keeps_its_last_error_until_it_reaches_the_tmaster() -> None:
    core = make_core()
    link, _ = register(core, 3, pid=10)
    failed = m.InstanceStatus(3, "bolt", "failed", 10, 0, "initialize() raised X: y")
    core.received(link, control(failed), 0.0)  # no tmaster yet: kept, not sent
    core.closed(link, 0.1)
    _, actions = register(core, 3, pid=11)
    _tmaster, actions = core.tmaster_connected()
    statuses = [msg for msg in messages(actions) if isinstance(msg, m.InstanceStatus)]
    assert statuses == [m.InstanceStatus(3, "bolt", "starting", 11, 0, "initialize() raised X: y")]


# ---------------------------------------------------------- authentication


def handshake_with(core: Any, link: Link, first: list[Any], secret: bytes = SECRET) -> list[Any]:
    """Play the other end of ``link``'s handshake (``first``: the core's actions that
    opened it); the core's actions after the last proof."""
    (hello,) = [a for a in first if isinstance(a, Reply) and a.link is link]
    other = Handshake(secret, accepting=link.inbound is False)
    actions = core.received(link, frames(other.hello()), 0.0)
    (proof,) = [a for a in actions if isinstance(a, Reply)]
    for msg in messages([hello]):
        for reply in other.receive(msg):
            actions = core.received(link, frames(reply), 0.0)
    for msg in messages([proof]):
        other.receive(msg)  # raises if the core's proof is wrong
    return actions  # type: ignore[no-any-return]


def test_an_accepted_link_authenticates_before_it_may_register() -> None:
    core = make_core(secret=SECRET)
    link = core.accepted()
    assert link.role is Role.UNAUTHENTICATED
    first = core.greeting(link)
    assert [type(msg) for msg in messages(first)] == [m.AuthHello]
    assert core.frame_limit(link) == 4096
    handshake_with(core, link, first)
    assert link.role is Role.PENDING and link.handshake is None
    actions = core.received(link, control(m.RegisterInstance("T", 3, "bolt", 10, 0)), 0.0)
    assert link.role is Role.INSTANCE and not [a for a in actions if isinstance(a, Close)]
    assert core.frame_limit(link) == core.max_frame_bytes


def test_a_wrong_secret_closes_that_link_only() -> None:
    core = make_core(secret=SECRET)
    good = core.accepted()
    handshake_with(core, good, core.greeting(good))
    core.received(good, control(m.RegisterInstance("T", 3, "bolt", 10, 0)), 0.0)
    bad = core.accepted()
    first = core.greeting(bad)
    other = Handshake(b"w" * 32, accepting=False)
    core.received(bad, frames(other.hello()), 0.0)
    (hello,) = messages(first)
    (proof,) = other.receive(hello)
    (close,) = core.received(bad, frames(proof), 0.0)
    assert close == Close(bad, "authentication failed: wrong secret")
    assert core.failed_handshakes == 1 and good.role is Role.INSTANCE
    # registering without the handshake is no way round it
    sneaky = core.accepted()
    core.greeting(sneaky)
    (close,) = core.received(sneaky, control(m.RegisterInstance("T", 3, "bolt", 11, 0)), 0.0)
    assert close.reason.startswith("protocol error") and sneaky.role is Role.UNAUTHENTICATED


def test_our_links_say_who_we_are_only_once_the_other_end_proved_the_secret() -> None:
    core = make_core(secret=SECRET)
    peer, first = core.peer_connected(2)
    assert peer.role is Role.AUTHENTICATING and not [a for a in first if isinstance(a, Attach)]
    after = handshake_with(core, peer, first)
    assert peer.role is Role.PEER_OUT and Attach("stmgr 2", peer) in after
    assert m.HelloStmgr("T", 1, core.epoch) in messages(after)
    tmaster, first = core.tmaster_connected()
    assert core.tmaster is None  # no status, no heartbeat goes to it before
    assert core.tick(100.0) == []
    after = handshake_with(core, tmaster, first)
    assert tmaster.role is Role.TMASTER and core.tmaster is tmaster
    assert isinstance(messages(after)[0], m.RegisterStmgr)


def test_connections_beyond_the_limit_are_closed_at_once_and_free_their_place() -> None:
    core = make_core(max_connections=2)
    a, b, c = core.accepted(), core.accepted(), core.accepted()
    assert core.greeting(a) == [] and core.greeting(b) == []
    assert core.greeting(c) == [Close(c, "too many connections")]
    core.closed(c, 0.0)
    core.closed(a, 0.0)
    d = core.accepted()
    assert core.greeting(d) == [] and core.inbound == 2


def test_an_ack_is_taken_only_from_a_task_that_could_have_received_the_tuple() -> None:
    core = make_core()
    with_tmaster(core)
    spout, _ = register(core, 1)
    init = encode_ack(1, 1, AckBatch(init=[77, 5]).encode())
    assert core.received(spout, frames(init), 0.0) == []
    # spout task 2 (container 2) never receives spout 1's tuples: its acks are forged
    peer = link_in(core, Role.PEER)
    forged = encode_ack(1, 2, AckBatch(update=[77, 5]).encode())
    (close,) = core.received(peer, frames(forged), 0.0)
    assert isinstance(close, Close) and "an ack from task 2 for task 1" in close.reason
    # a peer acks as the tasks of its own container only (task 3 is ours)
    peer = link_in(core, Role.PEER)
    spoofed = encode_ack(1, 3, AckBatch(update=[77, 5]).encode())
    (close,) = core.received(peer, frames(spoofed), 0.0)
    assert isinstance(close, Close) and "from task 3" in close.reason
    assert len(core.tracker) == 1  # the tree is still pending: nothing acked it
    # the bolt downstream, on its container's link, acks it
    peer = link_in(core, Role.PEER)
    honest = encode_ack(1, 4, AckBatch(update=[77, 5]).encode())
    (verdict,) = core.received(peer, frames(honest), 0.0)
    assert isinstance(verdict, Send) and verdict.outlet == "task 1"
