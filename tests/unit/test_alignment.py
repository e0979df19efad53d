"""Checkpoint alignment in the stream manager (stmgr/alignment.py): what a local
bolt task gets, and in which order, while the markers of one checkpoint arrive
from its sources."""

from __future__ import annotations

from heronpy_lite.stmgr.alignment import Alignment

# task 9 is fed by tasks 1 and 2; task 8 by task 1 only
SOURCES = {9: frozenset({1, 2}), 8: frozenset({1})}


def test_a_task_with_one_source_gets_the_marker_at_once() -> None:
    a = Alignment(SOURCES, 1000)
    released = a.marker(8, 1, 5, now=1.0)
    assert released.marker == 5 and released.frames == () and released.declined is None
    assert not a.holds(8, 1)


def test_frames_of_a_source_past_its_marker_wait_until_every_source_sent_its_own() -> None:
    a = Alignment(SOURCES, 1000)
    first = a.marker(9, 1, 5, now=1.0)
    assert first.marker is None
    assert a.holds(9, 1) and not a.holds(9, 2)  # 2 has not reached the cut yet
    assert a.hold(9, 1, b"after-1", 3, now=1.1).marker is None
    assert a.hold(9, 1, b"after-2", 4, now=1.2).marker is None
    assert a.held_bytes == len(b"after-1") + len(b"after-2")
    last = a.marker(9, 2, 5, now=1.5)
    assert last.marker == 5
    assert last.frames == ((b"after-1", 3), (b"after-2", 4))  # in order, after the marker
    assert last.aligned_seconds == 0.5
    assert not a.holds(9, 1) and a.held_bytes == 0


def test_past_its_bound_a_task_declines_releases_everything_and_gets_the_marker() -> None:
    a = Alignment(SOURCES, bound_bytes=10)
    a.marker(9, 1, 5, now=0.0)
    assert a.hold(9, 1, b"123456", 1, now=0.1).declined is None
    released = a.hold(9, 1, b"7890ab", 1, now=0.2)
    assert released.declined == 5 and "heron.stateful.alignment.buffer.bytes" in released.reason
    assert released.marker == 5  # its own markers flow: nothing downstream waits
    assert released.frames == ((b"123456", 1), (b"7890ab", 1))
    assert a.declined == 1 and not a.holds(9, 1)
    # the other source's marker comes late: stale, it changes nothing
    late = a.marker(9, 2, 5, now=0.3)
    assert late.marker is None and late.frames == ()


def test_a_newer_checkpoint_ends_an_alignment_that_cannot_finish() -> None:
    a = Alignment(SOURCES, 1000)
    a.marker(9, 1, 5, now=0.0)
    a.hold(9, 1, b"held", 1, now=0.1)
    # checkpoint 5 was abandoned (task 2 went away); 6 begins
    released = a.marker(9, 1, 6, now=1.0)
    assert released.marker is None and released.frames == ((b"held", 1),)
    assert a.holds(9, 1)
    assert a.marker(9, 2, 5, now=1.1).marker is None  # 5's last marker: stale now
    assert a.marker(9, 2, 6, now=1.2).marker == 6


def test_a_restore_forgets_what_was_held_and_old_markers_stay_stale() -> None:
    a = Alignment(SOURCES, 1000)
    assert a.marker(8, 1, 4, now=0.0).marker == 4
    a.marker(9, 1, 5, now=0.0)
    a.hold(9, 1, b"old epoch", 1, now=0.1)
    a.reset()
    assert not a.holds(9, 1) and a.held_bytes == 0
    assert a.marker(8, 1, 4, now=1.0).marker is None  # handed already
    assert a.marker(9, 1, 7, now=1.0).marker is None
    assert a.marker(9, 2, 7, now=1.0).marker == 7
