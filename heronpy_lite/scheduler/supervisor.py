"""Supervising child processes: start, watch, restart with backoff, stop.

Used by the executor (for tmaster, stmgr and instances) and by the local
scheduler (for executors). A child that exits while we are not stopping is
restarted after a backoff that doubles from ``backoff_min`` to
``backoff_max`` and resets once the child has run for 10 s; a child that
cannot even be started (its log file cannot be opened: a full disk) is tried
again on the same backoff. Stopping sends SIGTERM, then SIGKILL after
``kill_timeout``.

An executor's children die with it (Linux sends them SIGTERM when their
parent dies). The scheduler's children, the executors, must not die with
the scheduler (docs/decisions/0031-local-scheduler-failover.md): they are
*detached*, each leading its own session and process group (so that a
group kill still reaches everything a container started), and a scheduler
started later *adopts* the ones still running: it cannot ``wait()`` for a
process that is not its child, so it waits on a pidfd, which becomes
readable when any process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from heronpy_lite.liveness import pid_alive
from heronpy_lite.process import die_with_parent

log = logging.getLogger(__name__)

STABLE_AFTER_SECS = 10.0


async def wait_exit(pid: int) -> None:
    """Return once process ``pid`` (ours or not) has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    exited = loop.create_future()

    def readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await exited
    finally:
        loop.remove_reader(fd)
        os.close(fd)


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
        detached: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_file = log_file
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.kill_timeout = kill_timeout
        self.detached = detached
        self.env = env
        self.restarts = 0
        self.proc: asyncio.subprocess.Process | None = None
        #: a running process we did not start (a previous scheduler did)
        self.adopted: int | None = None
        self.started = asyncio.Event()
        self.on_change: Callable[[], None] = lambda: None
        #: awaited with the pid after the child exited, before its restart
        self.on_exit: Callable[[int], Awaitable[None]] | None = None

    @property
    def pid(self) -> int | None:
        if self.adopted is not None:
            return self.adopted if pid_alive(self.adopted) else None
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    def adopt(self, pid: int, restarts: int) -> None:
        """Supervise the running process ``pid`` instead of starting one."""
        self.adopted = pid
        self.restarts = restarts

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.argv(self.restarts),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                preexec_fn=None if self.detached else die_with_parent,
                start_new_session=self.detached,
                env=self.env,
            )
        log.info("started %s (pid %d, restarts %d)", self.name, proc.pid, self.restarts)
        return proc

    async def _run_once(self) -> tuple[int, object]:
        """Start (or keep watching the adopted) process; return (pid, exit code)."""
        if self.adopted is not None:
            pid = self.adopted
            log.info("supervising %s (pid %d), started before this scheduler", self.name, pid)
            self.started.set()
            self.on_change()
            await wait_exit(pid)
            self.adopted = None
            return pid, "unknown (not our child)"
        self.proc = await self._spawn()
        self.started.set()
        self.on_change()
        return self.proc.pid, await self.proc.wait()

    async def supervise(self) -> None:
        """Run the child forever, restarting it; cancel to stop it."""
        backoff = self.backoff_min
        try:
            while True:
                began = time.monotonic()
                try:
                    pid, code = await self._run_once()
                except OSError as exc:
                    log.error("cannot start %s, retrying in %gs: %s", self.name, backoff, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(max(backoff * 2, 0.05), self.backoff_max)
                    continue
                log.warning("%s (pid %d) exited with %s", self.name, pid, code)
                if self.on_exit is not None:
                    try:
                        await self.on_exit(pid)
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
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self._wait(pid), self.kill_timeout)
        except TimeoutError:
            log.warning("%s (pid %d) ignored SIGTERM; killing it", self.name, pid)
        if self.detached:
            # whatever the container started and left behind goes with it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await self._wait(pid)

    async def _wait(self, pid: int) -> None:
        if self.proc is not None and self.proc.pid == pid:
            await self.proc.wait()
        else:
            await wait_exit(pid)
