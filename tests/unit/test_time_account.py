"""The instance's time accounting (busy / backpressured / idle) and its exception
log: pure, time passed in."""

from __future__ import annotations

import pytest

from heronpy_lite.instance.exception_log import ExceptionLog, exit_message
from heronpy_lite.instance.time_account import Doing, TimeAccount, samples
from heronpy_lite.wire import metric_names as names


def test_a_bolt_reading_and_processing_splits_its_time() -> None:
    acct = TimeAccount(0.0)
    acct.set("input", Doing.IDLE, 0.0)
    acct.set("input", Doing.BUSY, 0.3)  # a batch arrived after 0.3 s of waiting
    acct.set("output", Doing.BACKPRESSURED, 0.5)  # its output is full
    acct.set("output", Doing.IDLE, 0.9)  # room again; still processing
    acct.set("input", Doing.IDLE, 1.0)
    assert acct.totals(1.0) == pytest.approx((0.2 + 0.1, 0.4, 0.3))
    assert acct.totals(2.0) == pytest.approx((0.3, 0.4, 1.3))  # waiting for input since 1.0


def test_backpressure_wins_over_busy_and_busy_over_idle() -> None:
    acct = TimeAccount(0.0)
    acct.set("spout", Doing.IDLE, 0.0)  # a spout sleeping after an empty round...
    acct.set("input", Doing.BUSY, 1.0)  # ...while its reader runs the user's ack()
    assert acct.state is Doing.BUSY
    acct.set("spout", Doing.BACKPRESSURED, 2.0)  # at max spout pending
    assert acct.state is Doing.BACKPRESSURED
    acct.set("input", Doing.IDLE, 3.0)
    assert acct.state is Doing.BACKPRESSURED
    acct.set("spout", Doing.BUSY, 4.0)
    assert acct.totals(5.0) == pytest.approx((2.0, 2.0, 1.0))


def test_rates_are_ms_per_second_since_the_last_take_and_add_up_to_1000() -> None:
    acct = TimeAccount(10.0)
    acct.set("input", Doing.BUSY, 10.0)
    acct.set("input", Doing.IDLE, 10.25)
    assert acct.take_rates(11.0) == pytest.approx((250.0, 0.0, 750.0))
    acct.set("output", Doing.BACKPRESSURED, 11.5)
    busy, bp, idle = acct.take_rates(13.0)
    assert (busy, bp, idle) == pytest.approx((0.0, 750.0, 250.0))
    assert busy + bp + idle == pytest.approx(1000.0)
    assert acct.take_rates(13.0) == (0.0, 0.0, 0.0)  # no time passed


def test_setting_the_same_state_again_changes_nothing() -> None:
    acct = TimeAccount(0.0)
    acct.set("input", Doing.BUSY, 0.0)
    acct.set("input", Doing.BUSY, 0.5)
    acct.set("input", Doing.IDLE, 1.0)
    assert acct.totals(1.0) == pytest.approx((1.0, 0.0, 0.0))


def test_a_clock_that_steps_back_never_makes_negative_time() -> None:
    acct = TimeAccount(5.0)
    acct.set("input", Doing.BUSY, 4.0)
    assert min(acct.totals(4.5)) >= 0.0


def test_samples_are_the_three_counters_and_three_gauges() -> None:
    acct = TimeAccount(0.0)
    acct.set("input", Doing.BUSY, 0.0)
    acct.set("input", Doing.IDLE, 0.5)
    labels = {"component": "c", "instance_id": "3"}
    got = {s[0]: (s[1], s[3]) for s in samples(acct, labels, 2.0)}
    assert got == {
        names.BUSY: ("counter", 0.5),
        names.BACKPRESSURED: ("counter", 0.0),
        names.IDLE: ("counter", 1.5),
        names.BUSY_MS: ("gauge", 250.0),
        names.BACKPRESSURED_MS: ("gauge", 0.0),
        names.IDLE_MS: ("gauge", 750.0),
    }


def _raise(exc: BaseException) -> None:
    raise exc


def _caught(exc: BaseException) -> BaseException:
    try:
        _raise(exc)
    except BaseException as caught:
        return caught
    raise AssertionError("not raised")


def test_one_failing_line_counts_up_one_entry_with_its_traceback() -> None:
    log = ExceptionLog()
    for i in range(1000):
        log.record("process", _caught(ValueError(f"bad {i}")), 100.0 + i)
    (entry,) = log.entries()
    assert entry["count"] == 1000
    assert (entry["where"], entry["type"], entry["message"]) == ("process", "ValueError", "bad 999")
    assert (entry["first"], entry["last"]) == (100.0, 1099.0)
    assert "in _raise" in entry["traceback"] and "ValueError: bad 0" in entry["traceback"]


def test_distinct_exceptions_are_distinct_entries_and_the_oldest_goes_first() -> None:
    log = ExceptionLog(max_entries=2)
    log.record("process", _caught(ValueError("a")), 1.0)
    log.record("process", _caught(KeyError("b")), 2.0)
    log.record("next_tuple", _caught(ValueError("c")), 3.0)
    assert [(e["where"], e["type"]) for e in log.entries()] == [
        ("process", "KeyError"),
        ("next_tuple", "ValueError"),
    ]
    log.record("process", _caught(KeyError("b")), 4.0)  # seen again: now the most recent
    assert [e["type"] for e in log.entries()] == ["ValueError", "KeyError"]


def test_tracebacks_and_messages_are_bounded() -> None:
    log = ExceptionLog(max_traceback=200)
    log.record("process", _caught(ValueError("x" * 5000)), 1.0)
    (entry,) = log.entries()
    assert len(entry["traceback"]) <= 200 and entry["traceback"].endswith("(cut)")
    assert len(entry["message"]) <= 500


def test_exit_message_says_where_user_code_called_sys_exit() -> None:
    exc = _caught(SystemExit(3))
    assert isinstance(exc, SystemExit)
    text = exit_message(exc)
    assert text.startswith("SystemExit(3) raised in _raise() at test_time_account.py:")
    assert "restarts it" in text
