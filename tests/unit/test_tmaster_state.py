"""The topology master's state machine and physical-plan assembly."""

from __future__ import annotations

import pytest

from heronpy_lite.errors import InvalidTransition, RegistrationConflict
from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.tmaster.state import TopologyMasterState, TopologyState
from heronpy_lite.wire.plan import PAUSED, RUNNING, PhysicalPlan, StmgrLocation

RUN, PAUSE, KILL = TopologyState.RUNNING, TopologyState.PAUSED, TopologyState.KILLED


def make_state(containers: int = 2, state: TopologyState = RUN) -> TopologyMasterState:
    packing = pack_round_robin("wc", [("words", 2), ("count", 3)], containers)
    return TopologyMasterState(packing, state)


def register_all(state: TopologyMasterState) -> None:
    for c in range(1, state.packing.num_containers + 1):
        state.register_stmgr(c, "127.0.0.1", 7000 + c, 100 + c)


def test_plan_is_none_until_every_container_has_registered():
    state = make_state(containers=3)
    assert state.plan() is None
    state.register_stmgr(1, "127.0.0.1", 7001, 101)
    state.register_stmgr(3, "127.0.0.1", 7003, 103)
    assert not state.complete
    assert state.plan() is None
    state.register_stmgr(2, "127.0.0.1", 7002, 102)
    assert state.complete
    plan = state.plan()
    assert isinstance(plan, PhysicalPlan)
    assert plan.packing == state.packing
    assert plan.stmgrs == {
        1: StmgrLocation(1, "127.0.0.1", 7001, 101),
        2: StmgrLocation(2, "127.0.0.1", 7002, 102),
        3: StmgrLocation(3, "127.0.0.1", 7003, 103),
    }
    assert plan.state == RUNNING


def test_status_plan_is_available_before_the_plan_is_complete():
    state = make_state(containers=2)
    state.register_stmgr(2, "h", 7002, 102)
    partial = state.status_plan()
    assert list(partial.stmgrs) == [2]
    assert partial.packing == state.packing


def test_re_registering_the_same_container_does_not_grow_the_plan():
    state = make_state(containers=2)
    state.register_stmgr(1, "h", 7001, 101)
    state.register_stmgr(1, "h", 7011, 111)
    assert not state.complete
    assert state.plan() is None


@pytest.mark.parametrize("container", [0, 3, -1])
def test_registering_a_container_outside_the_packing_plan_is_refused(container):
    state = make_state(containers=2)
    with pytest.raises(ValueError, match=f"container {container} is not in the packing plan"):
        state.register_stmgr(container, "h", 1, 1)
    assert state.stmgrs == {}


def test_first_registration_reports_a_change():
    state = make_state()
    assert state.register_stmgr(1, "127.0.0.1", 7001, 101) is True


def test_same_registration_reports_no_change():
    state = make_state()
    state.register_stmgr(1, "127.0.0.1", 7001, 101)
    assert state.register_stmgr(1, "127.0.0.1", 7001, 101) is False


def test_re_registration_with_a_new_port_reports_a_change_and_updates_the_plan():
    state = make_state()
    register_all(state)
    before = state.plan()
    assert state.register_stmgr(1, "127.0.0.1", 9999, 101) is True
    after = state.plan()
    assert before is not None and after is not None
    assert before.stmgrs[1].port == 7001
    assert after.stmgrs[1].port == 9999
    assert after.stmgrs[2] == before.stmgrs[2]


def test_re_registration_with_a_new_host_reports_a_change():
    state = make_state()
    state.register_stmgr(1, "127.0.0.1", 7001, 101)
    assert state.register_stmgr(1, "10.0.0.2", 7001, 101) is True


def test_initial_state_may_be_paused():
    state = make_state(state=PAUSE)
    register_all(state)
    plan = state.plan()
    assert plan is not None
    assert plan.state == PAUSED


def test_running_and_paused_transition_both_ways():
    state = make_state()
    register_all(state)
    assert state.transition(PAUSE) is True
    assert state.state is PAUSE
    assert state.plan().state == PAUSED
    assert state.transition(RUN) is True
    assert state.state is RUN
    assert state.plan().state == RUNNING


@pytest.mark.parametrize("current", [RUN, PAUSE])
def test_transition_to_the_current_state_is_no_change(current):
    state = make_state(state=current)
    assert state.transition(current) is False
    assert state.state is current


@pytest.mark.parametrize("start", [RUN, PAUSE])
def test_kill_is_allowed_from_running_and_paused(start):
    state = make_state(state=start)
    assert state.transition(KILL) is True
    assert state.state is KILL


@pytest.mark.parametrize("target", [RUN, PAUSE])
def test_killed_is_final(target):
    state = make_state()
    state.transition(KILL)
    with pytest.raises(InvalidTransition, match=f"cannot go from KILLED to {target.value}"):
        state.transition(target)
    assert state.state is KILL


def test_instance_status_is_recorded_in_the_plan():
    state = make_state()
    register_all(state)
    state.instance_status(3, "running", 555, 0, "")
    plan = state.plan()
    assert plan.instances == {3: {"state": "running", "pid": 555, "restarts": 0, "error": ""}}


def test_instance_status_keeps_the_last_error():
    state = make_state()
    state.instance_status(2, "failed", 10, 0, "ValueError: first")
    state.instance_status(2, "running", 11, 1, "")
    assert state.instances[2] == {
        "state": "running",
        "pid": 11,
        "restarts": 1,
        "error": "ValueError: first",
    }
    state.instance_status(2, "failed", 12, 2, "KeyError: second")
    assert state.instances[2]["error"] == "KeyError: second"
    assert state.instances[2]["pid"] == 12


def test_plan_instances_are_a_snapshot():
    state = make_state()
    register_all(state)
    state.instance_status(1, "running", 1, 0, "")
    plan = state.plan()
    state.instance_status(1, "failed", 1, 0, "boom")
    assert plan.instances[1]["state"] == "running"
    assert plan.instances[1]["error"] == ""


def test_plan_round_trips_through_its_dict_form():
    state = make_state()
    register_all(state)
    state.instance_status(4, "failed", 9, 3, "boom")
    plan = state.plan()
    assert PhysicalPlan.from_dict(plan.to_dict()) == plan


def test_a_live_stream_manager_is_never_replaced_by_another_registration():
    state = make_state()
    state.register_stmgr(1, "10.0.0.1", 7001, 101, now=0.0)
    state.heartbeat(1, 5.0)
    # someone else claims container 1 while its stream manager is connected and heartbeating
    with pytest.raises(RegistrationConflict, match="live stream manager"):
        state.register_stmgr(1, "10.6.6.6", 6666, 666, now=6.0, connected=True, live_within=6.0)
    assert state.stmgrs[1] == StmgrLocation(1, "10.0.0.1", 7001, 101)
    # the same stream manager registering again (its tmaster link came back) is fine
    state.register_stmgr(1, "10.0.0.1", 7001, 101, now=6.5, connected=True, live_within=6.0)
    # once it stopped heartbeating past the window, or its connection is gone, it is replaced
    assert state.register_stmgr(1, "10.0.0.2", 7001, 201, now=13.0, connected=True, live_within=6.0)
    assert state.register_stmgr(
        1, "10.0.0.3", 7001, 301, now=13.1, connected=False, live_within=6.0
    )
    assert state.stmgrs[1].pid == 301
