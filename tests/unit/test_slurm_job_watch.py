"""The Slurm executors' look at their topology's jobs (scheduler/slurm.py, JobWatch):
who acts, what is submitted again, what is cancelled; no Slurm needed."""

from __future__ import annotations

from heronpy_lite.scheduler.slurm import JobWatch

RECORDED = {"0": "10", "1": "11", "2": "12"}
ALL_RUNNING = [("10", 0, "RUNNING"), ("11", 1, "RUNNING"), ("12", 2, "RUNNING")]


def test_the_executor_of_the_lowest_running_container_acts_and_no_other() -> None:
    watches = [JobWatch(k, 2) for k in range(3)]
    assert [w.look(ALL_RUNNING, RECORDED)[0] for w in watches] == [True, False, False]
    # container 0's host died and its job was requeued: container 1's executor acts
    requeued = [("10", 0, "PENDING"), ("11", 1, "RUNNING"), ("12", 2, "RUNNING")]
    assert [w.look(requeued, RECORDED)[0] for w in watches] == [False, True, False]


def test_a_container_without_a_job_in_two_looks_in_a_row_is_submitted_again() -> None:
    watch = JobWatch(0, 2)
    gone = [("10", 0, "RUNNING"), ("11", 1, "RUNNING")]
    assert watch.look(gone, RECORDED) == (True, [], [])  # once: restart may be under way
    assert watch.look(gone, RECORDED) == (True, [2], [])
    # a completing job is still listed: not missing yet
    watch = JobWatch(0, 2)
    ending = [*gone, ("12", 2, "COMPLETING")]
    assert watch.look(ending, RECORDED) == (True, [], [])
    assert watch.look(ending, RECORDED) == (True, [], [])
    # a requeued job keeps its id and is listed throughout
    watch = JobWatch(0, 2)
    requeued = [*gone, ("12", 2, "PENDING")]
    assert watch.look(requeued, RECORDED) == (True, [], [])
    assert watch.look(requeued, RECORDED) == (True, [], [])


def test_a_missing_container_seen_only_once_is_left_alone() -> None:
    watch = JobWatch(0, 2)
    assert watch.look(ALL_RUNNING[:2], RECORDED) == (True, [], [])
    assert watch.look(ALL_RUNNING, RECORDED) == (True, [], [])
    assert watch.look(ALL_RUNNING[:2], RECORDED) == (True, [], [])


def test_a_second_job_of_one_container_is_cancelled_keeping_the_recorded_one() -> None:
    watch = JobWatch(0, 2)
    doubled = [*ALL_RUNNING, ("13", 2, "PENDING")]
    assert watch.look(doubled, RECORDED) == (True, [], [])
    assert watch.look(doubled, RECORDED) == (True, [], ["13"])
    # neither recorded (the record lags): the older one is kept
    watch = JobWatch(0, 2)
    doubled = [*ALL_RUNNING[:2], ("14", 2, "RUNNING"), ("13", 2, "PENDING")]
    watch.look(doubled, RECORDED)
    assert watch.look(doubled, RECORDED) == (True, [], ["14"])
    # restart: the old job completing beside the new one is no second job
    watch = JobWatch(0, 2)
    restarting = [*ALL_RUNNING[:2], ("12", 2, "COMPLETING"), ("13", 2, "PENDING")]
    watch.look(restarting, RECORDED)
    assert watch.look(restarting, {**RECORDED, "2": "13"}) == (True, [], [])


def test_an_executor_that_does_not_act_decides_nothing_but_keeps_looking() -> None:
    watch = JobWatch(2, 2)
    gone = [("10", 0, "RUNNING"), ("12", 2, "RUNNING")]
    assert watch.look(gone, RECORDED) == (False, [], [])
    assert watch.look(gone, RECORDED) == (False, [], [])
    # container 0 and 1 gone, twice: now 2 is the lowest running and acts at once
    alone = [("12", 2, "RUNNING")]
    watch.look(alone, RECORDED)
    assert watch.look(alone, RECORDED) == (True, [0, 1], [])
