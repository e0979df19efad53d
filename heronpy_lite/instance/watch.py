"""Hung and runaway tasks: a call into user code that does not come back, and an
instance that grows past its memory limit.

Theory of operation
-------------------
An instance runs its user code on its one event loop: while ``next_tuple``,
``process`` or ``initialize`` runs, the engine does nothing else for that
task, so a call that never returns is a task that is silently dead (its
spout "deactivated" answered, its tuples time out, its metrics stop). The
loop therefore *beats*: the runner calls `TaskWatch.beat` from the loop
every fraction of a second, and a watchdog thread, which runs whatever the
loop is doing, calls `TaskWatch.check` as often. A loop that has not beaten
for ``hang_timeout`` has not returned to the engine (counted from when the
call it is in began, if that was after the last beat: a call is never hung
before it has itself run for the timeout):

- `Hung` once, when it passes the timeout (the watchdog logs where the main
  thread is, and reports the hang in the metrics while it lasts);
- `Returned` when it beats again (how long the call took);
- `Restart` as well, once, if ``restart_on_hang`` is set: the runner ends the
  call and the process, the instance reporting the reason as its last error
  (``status``), and its executor starts it again.

Memory: each check is given the process's resident size; above
``memory_limit_bytes`` (if set) it answers `Restart` once, with the size and
the limit in the reason.

Pure: every call takes ``now`` (and the size); the runner's threads and
locks are elsewhere (instance/watchdog.py). ``hang_timeout`` 0 and
``memory_limit_bytes`` 0 turn either check off.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Hung:
    """The loop has not come back for ``seconds``; it is in ``call``."""

    call: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Returned:
    """A hung call came back after ``seconds``."""

    call: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Restart:
    """End the process; ``reason`` is its last error in ``status``."""

    reason: str


Event = Hung | Returned | Restart


class TaskWatch:
    def __init__(
        self,
        *,
        hang_timeout: float,
        restart_on_hang: bool,
        memory_limit_bytes: int,
        now: float,
    ) -> None:
        self.hang_timeout = hang_timeout
        self.restart_on_hang = restart_on_hang
        self.memory_limit_bytes = memory_limit_bytes
        self.last_beat = now
        #: the call the loop is stuck in, while it is hung, and since when
        self.hung_call: str | None = None
        self.hung_since = now
        #: calls that ran past the timeout, since the process started
        self.hangs = 0
        #: the resident size at the last check
        self.rss = 0
        self.restarting: Restart | None = None

    def beat(self, now: float) -> list[Event]:
        """The loop ran (called from it)."""
        events: list[Event] = []
        if self.hung_call is not None:
            events.append(Returned(self.hung_call, now - self.hung_since))
            self.hung_call = None
        self.last_beat = max(self.last_beat, now)
        return events

    def blocked_for(self, now: float) -> float:
        """Seconds since the loop last ran."""
        return max(0.0, now - self.last_beat)

    def hung_seconds(self, now: float) -> float:
        """How long the hung call has run (0 while not hung)."""
        return max(0.0, now - self.hung_since) if self.hung_call is not None else 0.0

    def check(self, now: float, call: str, rss: int = 0, since: float | None = None) -> list[Event]:
        """From the watchdog: ``call`` is what the loop is in, ``since`` when it
        began (None: not known, the last beat counts), ``rss`` the process's
        resident bytes (0: unknown)."""
        events: list[Event] = []
        self.rss = rss
        began = self.last_beat if since is None else max(self.last_beat, since)
        blocked = max(0.0, now - began)
        if self.hang_timeout > 0 and blocked > self.hang_timeout and self.hung_call is None:
            self.hung_call = call
            self.hung_since = began
            self.hangs += 1
            events.append(Hung(call, blocked))
            if self.restart_on_hang:
                events += self._restart(
                    f"restarted: {call} had not returned for {blocked:.1f}s "
                    f"(heron.instance.hang.timeout.secs {self.hang_timeout:g}, "
                    "heron.instance.hang.restart)"
                )
        if self.memory_limit_bytes > 0 and rss > self.memory_limit_bytes:
            events += self._restart(
                f"restarted: memory {rss / MIB:.0f} MiB above heron.instance.memory.limit.mb "
                f"{self.memory_limit_bytes / MIB:g}"
            )
        return events

    def _restart(self, reason: str) -> list[Event]:
        if self.restarting is not None:
            return []
        self.restarting = Restart(reason)
        return [self.restarting]


class TaskRestart(SystemExit):
    """Ends the instance process so that its executor starts it again; ``reason``
    is reported as the instance's last error. A `SystemExit`, so that it leaves
    user code that catches `Exception` and goes the way ``sys.exit()`` from user
    code goes (reported, then the process exits)."""

    def __init__(self, reason: str) -> None:
        super().__init__(1)
        self.reason = reason


class TaskStopped(SystemExit):
    """SIGTERM while the loop was stuck in user code: leave it and exit (0)."""

    def __init__(self) -> None:
        super().__init__(0)


__all__ = ["Event", "Hung", "Restart", "Returned", "TaskRestart", "TaskStopped", "TaskWatch"]
