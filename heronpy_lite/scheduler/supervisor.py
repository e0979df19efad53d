"""Supervising child processes: start, watch, restart with backoff, stop.

Used by the executor (for tmaster, stmgr and instances) and by the local
scheduler (for executors). A child that exits while we are not stopping is
restarted after a backoff that doubles from ``backoff_min`` to
``backoff_max`` and resets once the child has run for 10 s; a child that
cannot even be started (its log file cannot be opened: a full disk) is tried
again on the same backoff. Stopping sends SIGTERM, then SIGKILL after
``kill_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from heronpy_lite.process import die_with_parent

log = logging.getLogger(__name__)

STABLE_AFTER_SECS = 10.0


class Child:
    """One supervised process; ``argv(restarts)`` builds its command line."""

    def __init__(
        self,
        name: str,
        argv: Callable[[int], list[str]],
        log_file: Path,
        *,
        backoff_min: float,
        backoff_max: float,
        kill_timeout: float,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_file = log_file
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.kill_timeout = kill_timeout
        self.restarts = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.started = asyncio.Event()
        self.on_change: Callable[[], None] = lambda: None
        #: awaited with the pid after the child exited, before its restart
        self.on_exit: Callable[[int], Awaitable[None]] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.argv(self.restarts),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                preexec_fn=die_with_parent,
            )
        log.info("started %s (pid %d, restarts %d)", self.name, proc.pid, self.restarts)
        return proc

    async def supervise(self) -> None:
        """Run the child forever, restarting it; cancel to stop it."""
        backoff = self.backoff_min
        try:
            while True:
                try:
                    self.proc = await self._spawn()
                except OSError as exc:
                    log.error("cannot start %s, retrying in %gs: %s", self.name, backoff, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(max(backoff * 2, 0.05), self.backoff_max)
                    continue
                self.started.set()
                self.on_change()
                began = time.monotonic()
                code = await self.proc.wait()
                log.warning("%s (pid %d) exited with %s", self.name, self.proc.pid, code)
                if self.on_exit is not None:
                    try:
                        await self.on_exit(self.proc.pid)
                    except Exception:
                        log.exception("after-exit hook of %s failed", self.name)
                if time.monotonic() - began > STABLE_AFTER_SECS:
                    backoff = self.backoff_min
                await asyncio.sleep(backoff)
                backoff = min(max(backoff * 2, 0.05), self.backoff_max)
                self.restarts += 1
        finally:
            await asyncio.shield(self.stop())

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.kill_timeout)
        except TimeoutError:
            log.warning("%s (pid %d) ignored SIGTERM; killing it", self.name, proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
