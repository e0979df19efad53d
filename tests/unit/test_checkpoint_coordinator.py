"""The topology master's checkpoint coordinator (tmaster/checkpoints.py): when
checkpoints start, when they complete or fail, how a replaced process rolls
every task back, and what survives in its record."""

from __future__ import annotations

from typing import Any

import pytest

from heronpy_lite.tmaster.checkpoints import CheckpointCoordinator
from heronpy_lite.wire import messages as m

TASKS = [1, 2, 3]


def coordinator(record: dict[str, Any] | None = None, **kw: Any) -> CheckpointCoordinator:
    args: dict[str, Any] = dict(
        tasks=TASKS, containers=[1, 2], interval=1.0, timeout=5.0, kept=2, now=0.0
    )
    args.update(kw)
    return CheckpointCoordinator(record=record, **args)


def stored(c: CheckpointCoordinator, checkpoint: int, now: float, tasks: list[int] = TASKS) -> Any:
    out: list[m.Message] = []
    for task in tasks:
        out = c.stored(m.StateStored(checkpoint, task, 10, "full", 0.01), now, 1000.0 + now)
    return out


def test_a_checkpoint_starts_every_interval_while_ready_one_at_a_time() -> None:
    c = coordinator()
    assert c.tick(0.5, ready=True) == []
    assert c.tick(1.0, ready=False) == []  # not every stmgr registered, or paused
    assert c.tick(1.0, ready=True) == [m.StartCheckpoint(1)]
    assert c.dirty  # recorded before it starts: ids never repeat
    assert c.tick(2.5, ready=True) == []  # 1 is in flight
    assert stored(c, 1, 2.6) == [m.CheckpointComplete(1, [1], pytest.approx(1.6), 30, 0)]
    assert c.tick(2.6, ready=True) == [m.StartCheckpoint(2)]


def test_a_checkpoint_completes_when_every_task_stored_its_part() -> None:
    c = coordinator()
    c.tick(1.0, True)
    assert stored(c, 1, 1.1, [1, 2]) == []
    assert c.latest == -1
    assert c.stored(m.StateStored(7, 3, 1, "full", 0.0), 1.2, 0.0) == []  # not this one
    assert stored(c, 1, 1.3, [3]) == [m.CheckpointComplete(1, [1], pytest.approx(0.3), 30, 0)]
    assert c.latest == 1 and c.stats.last_size == 30
    assert c.status(1001.3)["completed"] == 1


def test_only_the_latest_kept_checkpoints_are_remembered() -> None:
    c = coordinator()
    for n in range(1, 5):
        assert c.tick(float(n), True) == [m.StartCheckpoint(n)]
        stored(c, n, n + 0.1)
    assert c.kept == [3, 4]
    assert c.record()["kept"] == [3, 4]


def test_a_failed_or_late_checkpoint_is_abandoned_and_the_next_one_starts() -> None:
    c = coordinator()
    c.tick(1.0, True)
    c.failed(m.CheckpointFailed(1, "stmgr 2", "alignment passed its bound"))
    assert c.in_flight is None and c.stats.declined == 1
    assert c.tick(2.0, True) == [m.StartCheckpoint(2)]
    stored(c, 2, 2.1, [1, 3])
    # 2 is abandoned after its timeout, and 3 (overdue by then) starts at once
    assert c.tick(7.5, True) == [m.StartCheckpoint(3)]
    assert c.stats.failed == 1 and "no state from tasks [2]" in c.stats.last_failure
    assert stored(c, 2, 7.6) == []  # a late answer to an abandoned one
    assert c.latest == -1


def test_the_first_start_restores_nothing() -> None:
    c = coordinator()
    assert c.replaced("task 2 restarted", 0.5) == []
    c.started()
    assert c.replaced("task 2 restarted", 0.6) == [m.Restore(-1, 1)]


def test_a_replaced_process_rolls_every_task_back_in_a_new_epoch() -> None:
    c = coordinator()
    c.started()
    c.tick(1.0, True)
    stored(c, 1, 1.1)
    c.tick(2.1, True)  # checkpoint 2 in flight
    assert c.replaced("stmgr 2 restarted", 2.2) == [m.Restore(1, 1)]
    assert c.in_flight is None and c.stats.failed == 1  # 2 is abandoned
    assert c.plan_info() == {"epoch": 1, "restore": 1, "layout": {}}
    assert c.tick(9.0, True) == []  # no checkpoint while restoring
    assert c.restore_done(m.RestoreDone(0, 1, []), 9.1) == []  # an older epoch's
    assert c.restore_done(m.RestoreDone(1, 1, []), 9.2) == []
    assert c.restore_done(m.RestoreDone(1, 2, []), 9.3) == [m.Resume(1)]
    assert c.tick(9.5, True) == []  # the next one an interval after resuming
    assert c.tick(10.3, True) == [m.StartCheckpoint(3)]


def test_a_checkpoint_that_cannot_be_loaded_falls_back_to_the_one_before() -> None:
    c = coordinator(kept=3)
    c.started()
    for n in (1, 2):
        c.tick(float(n), True)
        stored(c, n, n + 0.1)
    assert c.replaced("task 1 restarted", 3.0) == [m.Restore(2, 1)]
    bad = m.RestoreDone(1, 1, [[3, "000000000002.full fails its checksum"]])
    assert c.restore_done(bad, 3.1) == [m.Restore(1, 2)]
    assert c.kept == [1]
    bad = m.RestoreDone(2, 2, [[3, "missing"]])
    assert c.restore_done(bad, 3.2) == [m.Restore(-1, 3)]  # nothing left: the empty state
    c.restore_done(m.RestoreDone(3, 1, []), 3.3)
    assert c.restore_done(m.RestoreDone(3, 2, []), 3.4) == [m.Resume(3)]


def test_a_new_tmaster_continues_from_the_record() -> None:
    c = coordinator()
    c.started()
    c.tick(1.0, True)
    stored(c, 1, 1.1)
    c.tick(2.1, True)  # 2 started, recorded, then the tmaster died
    record = c.record()
    after = coordinator(record, now=50.0)
    assert after.started_before and after.latest == 1 and after.epoch == 0
    assert after.tick(51.0, True) == [m.StartCheckpoint(3)]  # never 2 again


def test_a_restore_the_old_tmaster_did_not_finish_starts_again() -> None:
    c = coordinator()
    c.started()
    c.tick(1.0, True)
    stored(c, 1, 1.1)
    c.replaced("task 3 restarted", 1.5)
    record = c.record()
    assert record["restoring"]
    after = coordinator(record, now=60.0)
    assert after.tick(60.1, ready=False) == []
    assert after.tick(60.2, ready=True) == [m.Restore(1, 2)]


def test_complete_carries_the_failures_so_far() -> None:
    c = coordinator()
    c.tick(1.0, True)
    c.failed(m.CheckpointFailed(1, "stmgr 1", "alignment past its bound"))
    c.tick(2.0, True)
    (done,) = stored(c, 2, 2.5)
    assert done.checkpoint == 2 and done.failed == 1
    assert c.status(1002.5)["declined"] == 1


def test_the_checkpoint_an_epoch_started_from_keeps_its_files() -> None:
    """A task replaced later builds from the plan's checkpoint first (then restores
    to the latest): its files must outlive the kept window."""
    c = coordinator()  # kept=2
    c.started()
    c.tick(1.0, True)
    stored(c, 1, 1.1)
    c.replaced("task 2 restarted", 1.2)
    c.restore_done(m.RestoreDone(1, 1, []), 1.3)
    c.restore_done(m.RestoreDone(1, 2, []), 1.4)
    keeps = []
    for n, now in ((2, 3.0), (3, 5.0), (4, 7.0)):
        assert c.tick(now, True) == [m.StartCheckpoint(n)]
        (done,) = stored(c, n, now + 0.1)
        keeps.append(done.kept)
    assert keeps == [[1, 2], [1, 2, 3], [1, 3, 4]]
    assert c.kept == [3, 4]


def test_each_checkpoint_keeps_its_layout_and_a_restore_in_another_names_it() -> None:
    before = {"spout": [1], "count": [2, 3]}
    c = coordinator(layout=before)
    c.started()
    for checkpoint in (1, 2, 3):
        c.tick(float(checkpoint), True)
        stored(c, checkpoint, checkpoint + 0.1)
    record = c.record()
    # kept=2: only the layouts of the kept checkpoints stay
    assert record["layouts"] == {"2": before, "3": before}
    # a rescale: the next tmaster runs count on three tasks, and restores 3 from the old layout
    after = {"spout": [1], "count": [2, 3, 4]}
    rescaled = CheckpointCoordinator(
        tasks=[1, 2, 3, 4],
        containers=[1, 2],
        interval=1.0,
        timeout=5.0,
        kept=2,
        record=record,
        now=10.0,
        layout=after,
    )
    assert rescaled.replaced("restart", 10.1) == [m.Restore(3, 1, before)]
    assert rescaled.plan_info() == {"epoch": 1, "restore": 3, "layout": before}
    rescaled.restore_done(m.RestoreDone(1, 1, []), 10.2)
    rescaled.restore_done(m.RestoreDone(1, 2, []), 10.3)
    rescaled.tick(11.5, True)
    stored(rescaled, 4, 11.6, tasks=[1, 2, 3, 4])
    # checkpoint 4 is of the new layout; 3 (restored from, and kept) keeps the old one
    assert rescaled.record()["layouts"] == {"3": before, "4": after}
