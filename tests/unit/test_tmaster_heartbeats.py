"""The topology master's failure detection: heartbeats, expiry, re-registration
(time passed in; no loop, no sleep)."""

from __future__ import annotations

from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.tmaster.state import TopologyMasterState, TopologyState


def registered(now: float = 0.0) -> TopologyMasterState:
    state = TopologyMasterState(
        pack_round_robin("wc", [("s", 1), ("b", 2)], 2), TopologyState.RUNNING
    )
    state.register_stmgr(1, "127.0.0.1", 7001, 101, now)
    state.register_stmgr(2, "127.0.0.1", 7002, 102, now)
    return state


def test_nothing_expires_while_heartbeats_arrive():
    state = registered()
    for now in (2.0, 4.0, 6.0, 8.0, 10.0, 12.0):
        state.heartbeat(1, now)
        state.heartbeat(2, now)
        assert state.expired(now + 0.5, timeout=5.0) == []


def test_a_silent_stmgr_expires_after_the_timeout_only():
    state = registered()
    state.heartbeat(1, 4.0)
    assert state.expired(5.0, timeout=5.0) == []
    assert state.expired(5.1, timeout=5.0) == [2]
    assert state.expired(9.1, timeout=5.0) == [1, 2]


def test_removing_an_expired_stmgr_makes_the_plan_incomplete_until_it_registers_again():
    state = registered()
    assert state.plan() is not None
    assert state.remove_stmgr(2)
    assert not state.remove_stmgr(2)
    assert state.plan() is None
    assert 2 not in state.status_plan().stmgrs
    assert state.expired(100.0, timeout=5.0) == [1]
    # same address after a hang, or a new one after a container restart: either
    # way the plan changed (it was incomplete), so the runner broadcasts it
    assert state.register_stmgr(2, "127.0.0.1", 7102, 202, 50.0)
    plan = state.plan()
    assert plan is not None and plan.stmgrs[2].port == 7102
    assert state.expired(54.0, timeout=5.0) == [1]


def test_heartbeats_of_an_unregistered_stmgr_do_not_resurrect_it():
    state = registered()
    state.remove_stmgr(2)
    state.heartbeat(2, 10.0)
    assert 2 not in state.stmgrs
    assert state.expired(10.0, timeout=5.0) == [1]


def test_reregistering_from_the_same_address_does_not_change_the_plan():
    state = registered()
    assert not state.register_stmgr(1, "127.0.0.1", 7001, 101, 3.0)
    assert state.expired(7.0, timeout=5.0) == [2]
