"""The backpressure controller, with time passed in: which components pause
under each strategy, what peers are told, and the time accounting."""

from __future__ import annotations

import pytest

from heronpy_lite.stmgr.backpressure import (
    BackpressureController,
    Notice,
    Strategy,
    stage_feeders,
)

# spout_a -> slow -> sink ; spout_b -> fast   (tasks: 1 spout_a, 2 slow, 3 sink, 4 spout_b, 5 fast)
UPSTREAM = {
    "spout_a": set(),
    "slow": {"spout_a"},
    "sink": {"slow"},
    "spout_b": set(),
    "fast": {"spout_b"},
}
TASKS = {1: "spout_a", 2: "slow", 3: "sink", 4: "spout_b", 5: "fast"}


def controller(strategy: Strategy) -> BackpressureController:
    return BackpressureController(strategy, ["spout_a", "spout_b"], UPSTREAM, TASKS)


def test_spout_strategy_pauses_every_spout_and_tells_the_peers() -> None:
    c = controller(Strategy.SPOUT)
    assert c.task_congested(2, now=0.0) == [Notice("slow", True)]
    assert c.paused == {"spout_a", "spout_b"}
    assert c.task_congested(2, now=1.0) == []  # already congested: no repeat
    assert c.task_relieved(2, now=3.0) == [Notice("slow", False)]
    assert c.paused == frozenset()
    assert c.totals(now=10.0) == {
        "paused": {"spout_a": 3.0, "spout_b": 3.0},
        "culprit": {"slow": 3.0},
    }


def test_stage_strategy_pauses_only_what_feeds_the_slow_component() -> None:
    c = controller(Strategy.STAGE)
    c.task_congested(2, now=0.0)
    assert c.paused == {"spout_a"}
    c.task_congested(3, now=0.0)  # the sink congests too: its feeder pauses
    assert c.paused == {"spout_a", "slow"}
    c.task_relieved(2, now=1.0)
    assert c.paused == {"slow"}


def test_tcp_strategy_never_pauses_or_notifies() -> None:
    c = controller(Strategy.TCP)
    assert c.task_congested(2, now=0.0) == []
    assert c.paused == frozenset() and c.current_notices() == []
    assert c.congested == {2}  # congestion is still recorded


def test_spouts_resume_only_when_no_stream_manager_still_asks() -> None:
    c = controller(Strategy.SPOUT)
    c.remote_notice(2, Notice("slow", True), now=0.0)
    c.remote_notice(3, Notice("sink", True), now=0.0)
    c.task_congested(5, now=0.0)
    c.remote_notice(2, Notice("slow", False), now=1.0)
    assert c.paused == {"spout_a", "spout_b"}
    c.task_relieved(5, now=2.0)
    assert c.paused == {"spout_a", "spout_b"}
    c.remote_notice(3, Notice("sink", False), now=3.0)
    assert c.paused == frozenset()
    assert c.totals(now=3.0)["paused"] == {"spout_a": 3.0, "spout_b": 3.0}


def test_a_peer_that_goes_away_stops_asking() -> None:
    c = controller(Strategy.STAGE)
    c.remote_notice(2, Notice("fast", True), now=0.0)
    assert c.paused == {"spout_b"}
    c.peer_gone(2, now=5.0)
    assert c.paused == frozenset()
    assert c.totals(now=9.0)["paused"] == {"spout_b": 5.0}


def test_a_new_peer_hears_the_current_culprits() -> None:
    c = controller(Strategy.STAGE)
    c.task_congested(3, now=0.0)
    c.task_congested(2, now=0.0)
    assert c.current_notices() == [Notice("sink", True), Notice("slow", True)]


def test_two_tasks_of_one_component_relieve_it_only_together() -> None:
    c = BackpressureController(
        Strategy.SPOUT, ["s"], {"s": set(), "b": {"s"}}, {1: "s", 2: "b", 3: "b"}
    )
    assert c.task_congested(2, 0.0) == [Notice("b", True)]
    assert c.task_congested(3, 0.0) == []
    assert c.task_relieved(2, 1.0) == []
    assert c.paused == {"s"}
    assert c.task_relieved(3, 2.0) == [Notice("b", False)]
    assert c.totals(2.0)["culprit"] == {"b": 2.0}


@pytest.mark.parametrize("strategy", list(Strategy))
def test_relieving_an_uncongested_task_is_a_no_op(strategy: Strategy) -> None:
    c = controller(strategy)
    assert c.task_relieved(2, 0.0) == []
    assert not c.congested and not c.paused


def test_tcp_strategy_still_accounts_the_culprit_time() -> None:
    c = controller(Strategy.TCP)
    c.task_congested(2, now=1.0)
    assert c.task_relieved(2, now=4.0) == []
    assert c.totals(now=9.0) == {"paused": {}, "culprit": {"slow": 3.0}}


# spout -> entry -> a <-> b -> sink, with a bolt reading its own output (self_loop)
CYCLE = {
    "spout": set(),
    "entry": {"spout"},
    "a": {"entry", "b"},
    "b": {"a"},
    "sink": {"b"},
    "self_loop": {"spout", "self_loop"},
}
CYCLE_TASKS = {1: "spout", 2: "entry", 3: "a", 4: "b", 5: "sink", 6: "self_loop"}


def test_stage_feeders_of_a_cycle_are_its_outside_feeders() -> None:
    assert stage_feeders(CYCLE) == {
        "spout": frozenset(),
        "entry": {"spout"},
        "a": {"entry"},
        "b": {"entry"},
        "sink": {"b"},
        "self_loop": {"spout"},
    }
    assert stage_feeders(UPSTREAM) == {k: frozenset(v) for k, v in UPSTREAM.items()}


@pytest.mark.parametrize("culprit", [3, 4])
def test_stage_never_pauses_a_member_of_the_congested_cycle(culprit: int) -> None:
    c = BackpressureController(Strategy.STAGE, ["spout"], CYCLE, CYCLE_TASKS)
    c.task_congested(culprit, now=0.0)
    assert c.paused == {"entry"}  # what feeds the cycle; a and b keep draining it
    c.task_congested(2, now=0.0)  # the feeder fills in turn: the spout pauses
    assert c.paused == {"entry", "spout"}
    c.task_relieved(culprit, now=1.0)
    c.task_relieved(2, now=1.0)
    assert c.paused == frozenset()


def test_a_bolt_reading_its_own_output_pauses_its_feeders_only() -> None:
    c = BackpressureController(Strategy.STAGE, ["spout"], CYCLE, CYCLE_TASKS)
    c.task_congested(6, now=0.0)
    assert c.paused == {"spout"}
