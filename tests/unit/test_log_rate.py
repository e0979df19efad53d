"""Repeated log lines: the token bucket per log statement and the logging filter
(time passed in: the records' own timestamps)."""

from __future__ import annotations

import logging

from heronpy_lite.log_rate import RepeatFilter, RepeatLimiter


def test_a_burst_passes_then_one_line_per_interval() -> None:
    limiter = RepeatLimiter(burst=3, interval=1.0)
    verdicts = [limiter.admit("k", 100.0) for _ in range(10)]
    assert verdicts[:3] == [(0, 100.0)] * 3
    assert verdicts[3:] == [None] * 7
    # half an interval later: no token yet
    assert limiter.admit("k", 100.5) is None
    # a full interval after the burst: one line, carrying the 8 held back since 100.0
    assert limiter.admit("k", 101.0) == (8, 100.0)
    assert limiter.admit("k", 101.0) is None
    assert limiter.held_back() == [("k", 1, 101.0)]


def test_the_bucket_refills_to_the_burst_only() -> None:
    limiter = RepeatLimiter(burst=2, interval=1.0)
    assert limiter.admit("k", 0.0) == (0, 0.0)
    # an hour of silence buys two lines, not 3600
    passed = [limiter.admit("k", 3600.0) for _ in range(5)]
    assert [p for p in passed if p is not None] == [(0, 3600.0), (0, 3600.0)]


def test_statements_are_limited_separately() -> None:
    limiter = RepeatLimiter(burst=1, interval=10.0)
    assert limiter.admit("a", 0.0) == (0, 0.0)
    assert limiter.admit("a", 0.0) is None
    assert limiter.admit("b", 0.0) == (0, 0.0)


def test_the_number_of_statements_tracked_is_bounded() -> None:
    limiter = RepeatLimiter(burst=1, interval=10.0, max_keys=100)
    for i in range(1000):
        limiter.admit(i, float(i))
    assert len(limiter) == 100


def test_interval_zero_turns_the_limit_off() -> None:
    limiter = RepeatLimiter(burst=1, interval=0)
    assert all(limiter.admit("k", 0.0) == (0, 0.0) for _ in range(1000))


def record(msg: str, *args: object, created: float, line: int = 7) -> logging.LogRecord:
    r = logging.LogRecord("peer", logging.ERROR, "/src/server.py", line, msg, args, None)
    r.created = created
    return r


def test_the_filter_counts_what_it_held_back_in_the_next_line() -> None:
    limit = RepeatFilter(RepeatLimiter(burst=2, interval=1.0))
    passed = []
    for i in range(1000):
        r = record("closing connection from %s: protocol error", f"peer-{i}", created=50.0)
        if limit.filter(r):
            passed.append(r.getMessage())
    assert passed == [
        "closing connection from peer-0: protocol error",
        "closing connection from peer-1: protocol error",
    ]
    r = record("closing connection from %s: protocol error", "peer-1000", created=51.0)
    assert limit.filter(r)
    assert r.getMessage().startswith("closing connection from peer-1000: protocol error [998 more")
    # the same text from another log statement is another statement
    assert limit.filter(record("closing connection from %s", "x", created=50.0, line=8))


def test_the_summary_names_the_statement_and_its_count() -> None:
    limit = RepeatFilter(RepeatLimiter(burst=1, interval=60.0))
    for _ in range(5):
        limit.filter(record("dropped a batch from task %d", 3, created=10.0))
    (summary,) = limit.summaries()
    assert summary.startswith("4 log lines like 'dropped a batch from task %d' held back since")


def test_what_user_code_logs_itself_is_not_limited() -> None:
    limit = RepeatFilter(RepeatLimiter(burst=1, interval=60.0))
    user = [
        logging.LogRecord("heronpy_lite.user.sink", logging.INFO, "/t.py", 3, "got %d", (i,), None)
        for i in range(100)
    ]
    assert all(limit.filter(r) for r in user)
