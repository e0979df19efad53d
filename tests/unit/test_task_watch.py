"""Hang and memory rules of an instance (TaskWatch): time and size passed in."""

from __future__ import annotations

from heronpy_lite.instance.watch import MIB, Hung, Restart, Returned, TaskWatch


def watch(timeout: float = 2.0, restart: bool = False, limit_mb: int = 0) -> TaskWatch:
    return TaskWatch(
        hang_timeout=timeout, restart_on_hang=restart, memory_limit_bytes=limit_mb * MIB, now=0.0
    )


def test_a_loop_that_keeps_beating_is_never_hung() -> None:
    w = watch()
    for t in range(1, 100):
        assert w.beat(t * 0.5) == []
        assert w.check(t * 0.5 + 0.25, "process()") == []
    assert w.hangs == 0


def test_a_call_past_the_timeout_is_hung_once_and_returns() -> None:
    w = watch(timeout=2.0)
    w.beat(10.0)
    assert w.check(11.75, "next_tuple()") == []
    assert w.check(12.25, "next_tuple()") == [Hung("next_tuple()", 2.25)]
    assert w.hangs == 1 and w.hung_call == "next_tuple()"
    assert w.check(30.0, "next_tuple()") == []  # reported once, not at every check
    assert w.hung_seconds(30.0) == 20.0
    assert w.beat(40.0) == [Returned("next_tuple()", 30.0)]
    assert w.hung_call is None and w.hung_seconds(41.0) == 0.0
    assert w.hangs == 1


def test_a_call_that_began_after_the_last_beat_is_timed_from_its_start() -> None:
    w = watch(timeout=2.0)
    w.beat(10.0)  # the loop then did engine work, and called next_tuple at 10.5
    assert w.check(12.25, "next_tuple()", since=10.5) == []  # away 2.25 s, called 1.75
    assert w.check(12.75, "next_tuple()", since=10.5) == [Hung("next_tuple()", 2.25)]
    assert w.hung_seconds(13.5) == 3.0
    assert w.beat(14.5) == [Returned("next_tuple()", 4.0)]


def test_hung_events_carry_the_time_blocked() -> None:
    w = watch(timeout=2.0)
    (event,) = w.check(2.5, "process()")
    assert event == Hung("process()", 2.5)


def test_restart_on_hang_asks_once_with_the_reason() -> None:
    w = watch(timeout=2.0, restart=True)
    events = w.check(3.0, "next_tuple()")
    assert events[0] == Hung("next_tuple()", 3.0)
    assert events[1] == Restart(
        "restarted: next_tuple() had not returned for 3.0s "
        "(heron.instance.hang.timeout.secs 2, heron.instance.hang.restart)"
    )
    w.beat(4.0)
    assert [e for e in w.check(9.0, "next_tuple()") if isinstance(e, Restart)] == []


def test_timeout_zero_never_reports_a_hang() -> None:
    w = watch(timeout=0)
    assert w.check(1e6, "process()") == []


def test_the_memory_limit_restarts_once_with_size_and_limit() -> None:
    w = watch(limit_mb=200)
    assert w.check(0.1, "", rss=199 * MIB) == []
    assert w.rss == 199 * MIB
    assert w.check(0.2, "", rss=250 * MIB) == [
        Restart("restarted: memory 250 MiB above heron.instance.memory.limit.mb 200")
    ]
    assert w.check(0.3, "", rss=300 * MIB) == []


def test_no_memory_limit() -> None:
    assert watch(limit_mb=0).check(0.1, "", rss=100_000 * MIB) == []
