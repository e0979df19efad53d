"""The recent exceptions of a task's user code, for status, the tracker and the UI.

Theory of operation
-------------------
Heron's instances report each distinct exception with its stack trace, a
count and the first and last time it was seen; the tracker serves them as
``exceptions`` and ``exceptionsummary``. `ExceptionLog` keeps the same here:
one entry per distinct exception, keyed by where user code was entered
(``process``, ``next_tuple``...), the exception's type and the innermost
frame it was raised in, so that one failing line counts up one entry while
a new bug adds another. The traceback is formatted once, when an entry is
made (a spout whose every emit fails must not format thousands a second);
the message is the latest one.

Bounded: at most ``max_entries`` (the least recently seen goes first), each
traceback cut to ``max_traceback`` characters. Pure: the caller passes the
wall-clock time; `entries` is what travels in the metrics snapshot.
"""

from __future__ import annotations

import traceback
from typing import Any

MAX_ENTRIES = 10
MAX_TRACEBACK = 4000
MAX_MESSAGE = 500


def _innermost(exc: BaseException) -> str:
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f"{code.co_filename}:{tb.tb_lineno}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15] + " ... (cut)"


class ExceptionLog:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_traceback: int = MAX_TRACEBACK) -> None:
        self.max_entries = max_entries
        self.max_traceback = max_traceback
        self._entries: dict[tuple[str, str, str], dict[str, Any]] = {}

    def record(self, where: str, exc: BaseException, now: float, message: str = "") -> None:
        """One more occurrence of ``exc``, raised by user code called as ``where``."""
        name = type(exc).__name__
        key = (where, name, _innermost(exc))
        entry = self._entries.pop(key, None)  # re-inserted last: the most recent
        text = _cut(message or str(exc), MAX_MESSAGE)
        if entry is None:
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
            entry = {
                "where": where,
                "type": name,
                "message": text,
                "traceback": _cut("".join(lines), self.max_traceback),
                "count": 0,
                "first": now,
                "last": now,
            }
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
        entry["count"] += 1
        entry["last"] = now
        entry["message"] = text
        self._entries[key] = entry

    def entries(self) -> list[dict[str, Any]]:
        """The entries, the most recently seen last (copies: safe to send)."""
        return [dict(e) for e in self._entries.values()]

    def __len__(self) -> int:
        return len(self._entries)


def exit_message(exc: SystemExit) -> str:
    """The one line ``status`` shows when user code called ``sys.exit()``."""
    place = ""
    tb = exc.__traceback__
    if tb is not None:
        while tb.tb_next is not None:
            tb = tb.tb_next
        code = tb.tb_frame.f_code
        place = f" in {code.co_name}() at {code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
    return f"SystemExit({exc.code!r}) raised{place}: the instance exited (its executor restarts it)"
