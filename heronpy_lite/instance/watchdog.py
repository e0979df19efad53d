"""The instance's watchdog: the thread that sees a hung call into user code, and
what it does about it (the rules are `watch.TaskWatch`'s).

Threads only at foreign edges (STYLE.md): user code that never returns is
one. The event loop cannot notice that it is stuck, so a daemon thread
wakes every ``period`` seconds (an eighth of the hang timeout, at most
0.5 s) and checks the loop's beat and the process's
resident size. What it does:

- a hang: logs where the main thread is (its stack), and, while it lasts,
  sends the task's metrics snapshots itself over its own connection to the
  metrics manager (the loop's reporter is stuck with the loop), so the hang
  shows in ``/metrics`` and ``status``;
- a restart (``heron.instance.hang.restart``, or the memory limit): asks the
  loop to report the reason and exit (``call_soon_threadsafe``); if the loop
  is stuck, it interrupts the main thread (SIGUSR2, whose handler raises
  `TaskRestart` in the stuck call) so that the same report is made; if the
  process is still alive after ``grace`` seconds (user code that swallows
  even that), it exits at once (``os._exit``) and its executor restarts it.

It also makes SIGTERM work on a stuck loop: the loop's own handler only runs
once the call returns, so while the loop is stuck SIGTERM raises
`TaskStopped` in the call, and the process stops at once instead of waiting
for its executor's SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

from heronpy_lite.instance.watch import Hung, Restart, Returned, TaskRestart, TaskStopped, TaskWatch
from heronpy_lite.security import authenticate_socket

log = logging.getLogger(__name__)

RESTART_SIGNAL = signal.SIGUSR2
#: what a stuck loop may take to report and exit once told to restart
GRACE_SECS = 5.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """This process's resident set size (0 if it cannot be read)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def main_thread_stack(limit: int = 12) -> str:
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    if frame is None:
        return "(no stack)"
    return "".join(traceback.format_stack(frame)[-limit:]).rstrip()


class HungReporter:
    """Sends the task's metrics snapshot from the watchdog thread (blocking socket)."""

    def __init__(
        self,
        host: str,
        port: int,
        encode: Callable[[], bytes],
        secret: bytes | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.address = (host, port)
        self.encode = encode
        self.secret = secret
        self.tls = tls
        self._sock: socket.socket | None = None

    def send(self) -> None:
        try:
            if self._sock is None:
                sock = socket.create_connection(self.address, timeout=1.0)
                if self.tls is not None:
                    sock = self.tls.wrap_socket(sock, server_hostname=self.address[0])
                self._sock = sock
                if self.secret is not None:
                    authenticate_socket(sock, self.secret)  # as every producer does
            self._sock.sendall(self.encode())
        except Exception:  # a lost report costs nothing; the next one may go
            log.debug("metrics from the watchdog not sent", exc_info=True)
            self.close()

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


class Watchdog:
    def __init__(
        self,
        watch: TaskWatch,
        *,
        calling: Callable[[], tuple[str, float | None]],
        restart: Callable[[str], None],
        reporter: HungReporter | None = None,
        report_interval: float = 1.0,
    ) -> None:
        self.watch = watch
        self.calling = calling
        self.restart = restart
        self.reporter = reporter
        self.report_interval = report_interval
        timeout = watch.hang_timeout
        self.period = min(0.5, max(0.05, timeout / 8)) if timeout > 0 else 0.5
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._restart_reason: str | None = None
        self._exit_at = float("inf")
        self._next_report = 0.0
        self._previous_term: Any = None

    # -- the loop side --

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """From the loop (the main thread): beat, install the signal handlers, and
        start the thread."""
        self._loop = loop
        self._beat()
        self._previous_term = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(RESTART_SIGNAL, self._on_restart_signal)
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.reporter is not None:
            self.reporter.close()

    def _beat(self) -> None:
        with self._lock:
            events = self.watch.beat(time.monotonic())
        for event in events:
            if isinstance(event, Returned):
                log.warning("%s returned after %.1fs", event.call, event.seconds)
        if self._loop is not None and not self._stop.is_set():
            self._loop.call_later(self.period, self._beat)

    def _stuck(self) -> bool:
        return self.watch.blocked_for(time.monotonic()) > max(2 * self.period, 0.5)

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous_term
        if callable(previous):
            previous(signum, frame)  # the loop's own: it stops once it runs again
        if self._stuck():
            call, _ = self.calling()
            log.warning("SIGTERM while %s has run for %.1fs: stopping it", call, self._blocked())
            raise TaskStopped()

    def _on_restart_signal(self, signum: int, frame: FrameType | None) -> None:
        reason = self._restart_reason
        if reason is not None and self._stuck():
            raise TaskRestart(reason)

    def _blocked(self) -> float:
        return self.watch.blocked_for(time.monotonic())

    # -- the thread --

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self._check()
            except Exception:
                log.exception("the watchdog's check failed")

    def _check(self) -> None:
        now = time.monotonic()
        with self._lock:
            call, since = self.calling()
            events = self.watch.check(now, call, resident_bytes(), since)
        for event in events:
            if isinstance(event, Hung):
                log.error(
                    "%s has not returned for %.1fs (heron.instance.hang.timeout.secs %g): "
                    "hung; the main thread is at:\n%s",
                    event.call,
                    event.seconds,
                    self.watch.hang_timeout,
                    main_thread_stack(),
                )
            elif isinstance(event, Restart):
                self._begin_restart(event.reason, now)
        if self._restart_reason is not None and now > self._exit_at:
            log.critical(
                "did not stop within %gs of: %s; exiting now", GRACE_SECS, self._restart_reason
            )
            logging.shutdown()
            os._exit(1)
        if self.watch.hung_call is not None and self.reporter is not None:
            if now >= self._next_report:
                self._next_report = now + self.report_interval
                with self._lock:
                    self.reporter.send()
        elif self.reporter is not None:
            self.reporter.close()

    def _begin_restart(self, reason: str, now: float) -> None:
        self._restart_reason = reason
        self._exit_at = now + GRACE_SECS
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # closed: the process is exiting
                loop.call_soon_threadsafe(self.restart, reason)
        if self._stuck():
            ident = threading.main_thread().ident
            if ident is not None:
                signal.pthread_kill(ident, RESTART_SIGNAL)


__all__ = ["HungReporter", "Watchdog", "main_thread_stack", "resident_bytes"]
