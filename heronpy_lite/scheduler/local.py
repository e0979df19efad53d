"""The local scheduler: every container on this machine, run by a scheduler
process that is not a single point of failure.

`LocalScheduler` is what the CLI calls (the `Scheduler` verbs). ``schedule``
starts the scheduler process (``python -m heronpy_lite.scheduler.local``,
detached: its own session), which starts one executor per container (0 =
tmaster, 1..N = data), restarts any executor that dies, and records its pid
and the executors' pids under ``schedulers/<name>``. SIGTERM stops
everything in order: executors stop their children, then exit.

The scheduler may die without taking the topology with it
(docs/decisions/0031-local-scheduler-failover.md):

- the executors are detached (their own sessions), so they outlive it;
- the scheduler holds an exclusive ``flock`` on ``scheduler.lock`` in the
  topology's working directory for as long as it lives (the kernel drops it
  when the process dies, ``kill -9`` included). Every executor probes that
  lock; whoever finds it free first (an executor, or a CLI verb that needs
  the scheduler) starts a new scheduler. Schedulers that find the lock
  taken exit, so one runs at a time;
- a new scheduler adopts the executors still running (each recorded pid is
  checked to still be that container's executor) and starts the others;
- nothing is orphaned: every executor, and the scheduler, ends itself once
  the topology's record is gone or belongs to a newer submit of the name.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heronpy_lite import config, security
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import (
    ControlError,
    StateManagerError,
    TopologyGone,
    TopologyNotFoundError,
)
from heronpy_lite.liveness import pid_alive, runs
from heronpy_lite.scheduler import identity
from heronpy_lite.scheduler.base import Scheduler
from heronpy_lite.scheduler.executor import EXECUTOR_MODULE, watch_topology, working_dir
from heronpy_lite.scheduler.identity import identify
from heronpy_lite.scheduler.supervisor import Child
from heronpy_lite.scheduler.targets import scrape_targets_file
from heronpy_lite.statemgr.base import PACKING_PLANS, SCHEDULERS, StateManager
from heronpy_lite.wire.plan import PackingPlan

log = logging.getLogger(__name__)

SCHEDULER_MODULE = "heronpy_lite.scheduler.local"

__all__ = ["LocalScheduler", "scrape_targets_file", "start_scheduler_process"]
#: how long a new scheduler waits for the lock (an executor's probe holds it for
#: an instant) before concluding that another scheduler runs
LOCK_WAIT_SECS = 3.0


# -- the lock: who is the scheduler --


def lock_file(topology: str) -> Path:
    return working_dir(topology) / "scheduler.lock"


def scheduler_running(topology: str) -> bool:
    """Whether a scheduler process of ``topology`` holds the lock now."""
    try:
        fd = os.open(lock_file(topology), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock we may have taken
    return False


def _take_lock(topology: str, wait: float) -> int | None:
    """The lock's file descriptor, held until the process exits; None if another
    scheduler holds it for ``wait`` seconds."""
    path = lock_file(topology)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.05)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return fd


#: the schedulers this process started: they outlive it, and a Popen collected
#: while its process runs would warn
_STARTED: list[subprocess.Popen[bytes]] = []


def start_scheduler_process(
    topology: str, engine: EngineConfig, secret: bytes | None = None
) -> subprocess.Popen[bytes]:
    """Start a scheduler process of ``topology``, in its own session (it outlives
    whoever started it), handing it ``secret`` (None: the one this process was
    given, if any). It exits at once if another one runs."""
    _STARTED[:] = [p for p in _STARTED if p.poll() is None]
    from heronpy_lite.process import common_argv

    workdir = working_dir(topology)
    log_file = workdir / "log" / "scheduler.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(workdir / "log" / "scheduler.out", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", SCHEDULER_MODULE, *common_argv(topology, engine, log_file)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            cwd=workdir,
            env={
                **os.environ,
                "HERONPY_LITE_HOME": str(config.home()),
                **security.secret_env(secret),
                # the markers kill checks before it signals anything (scheduler/identity.py)
                **identity.markers(topology, engine),
            },
        )
    _STARTED.append(proc)
    return proc


# -- the verbs, for the CLI --


class LocalScheduler(Scheduler):
    """`Scheduler` on this machine (see the module's docstring)."""

    #: the scheduler process this object started (it may not have recorded itself yet)
    proc: subprocess.Popen[bytes] | None = None

    def schedule(self, packing: PackingPlan) -> None:
        if self.engine.authentication and self.secret is None:
            raise ControlError(f"starting {self.topology!r} needs its secret, and there is none")
        self.proc = start_scheduler_process(self.topology, self.engine, self.secret)

    def problem(self) -> str | None:
        proc = self.proc
        if proc is not None and (proc.poll() is not None or not pid_alive(proc.pid)):
            return (
                f"the scheduler of {self.topology!r} exited with code {proc.returncode}; "
                f"see {working_dir(self.topology) / 'log'}"
            )
        return None

    def ensure_running(self) -> bool:
        """Start a scheduler if none runs (the previous one died); True if started."""
        if scheduler_running(self.topology):
            return False
        if self.engine.authentication and self.secret is None:
            return False  # it cannot hand the secret on; the executors start one
        log.info("no scheduler of %s runs; starting one", self.topology)
        start_scheduler_process(self.topology, self.engine, self.secret)
        return True

    def _record(self) -> dict[str, Any]:
        try:
            return self.statemgr.get(SCHEDULERS, self.topology) or {}
        except StateManagerError:
            return {}

    def _executors(self, record: dict[str, Any]) -> dict[str, int]:
        """container -> pid of each recorded executor that still is one."""
        found = {}
        for container, entry in record.get("executors", {}).items():
            pid = int(entry.get("pid") or 0)
            if pid and runs(pid, EXECUTOR_MODULE, self.topology, container=str(container)):
                found[str(container)] = pid
        return found

    def kill(self) -> None:
        """SIGTERM the scheduler (it stops its executors, which stop their children)
        if the recorded pid is still that process and this topology's, and wait;
        then stop every process carrying the topology's markers, whatever the record
        says (scheduler/identity.py): SIGTERM, then SIGKILL after
        ``heron.kill.timeout.secs``. What the user should know (a recorded pid not
        signalled, and why) is left in ``notes``."""
        expected = identity.markers(self.topology, self.engine)
        self.notes = []
        try:
            record = self.statemgr.get(SCHEDULERS, self.topology) or {}
        except StateManagerError as exc:
            self.notes.append(f"{exc}; stopping the topology's processes by their markers")
            record = {}
        schedulers = set()
        pid = self._verified(record, expected) if record else None
        if pid is not None:
            schedulers.add(pid)
        if self.proc is not None:
            schedulers.add(self.proc.pid)  # it may not have recorded itself yet
        for pid in schedulers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.engine.kill_timeout_secs + 5
        while any(_running(p) for p in schedulers) and time.monotonic() < deadline:
            time.sleep(0.05)
        _stop_all(expected, self.engine.kill_timeout_secs)
        for pid in schedulers:
            _running(pid)  # reap it if it is ours

    def _verified(self, record: dict[str, Any], expected: dict[str, str]) -> int | None:
        """The recorded scheduler's pid if it is still that process and this topology's."""
        recorded = record.get("pid")
        host = record.get("host")
        if host is not None and host != socket.gethostname():
            self.notes.append(
                f"its scheduler was recorded on host {host!r}, not this one: not signalled"
            )
            return None
        if identity.is_ours(record, expected):
            return int(recorded)  # type: ignore[arg-type]
        if isinstance(recorded, int) and pid_alive(recorded):
            self.notes.append(
                f"pid {recorded}, recorded as its scheduler, is not that topology's process "
                "(its start time, command line or environment differ): not signalled"
            )
        return None

    def restart(self, container: int | None) -> list[int]:
        """SIGTERM the executor of ``container`` (all of them if None); the scheduler
        (started again first if it died) starts it again. ControlError if a recorded
        executor that is alive is not that topology's process (identity.py)."""
        record = self._record()
        if not record:
            raise ControlError(f"the scheduler of {self.topology!r} has not recorded itself")
        recorded = record.get("executors", {})
        targets = [str(container)] if container is not None else sorted(recorded, key=int)
        for c in targets:
            if c not in recorded:
                raise ControlError(f"{self.topology!r} has no container {c}")
        expected = identity.markers(self.topology, self.engine)
        signalled = []
        for c in targets:
            pid = int(recorded[c].get("pid") or 0)
            if not pid or not pid_alive(pid):
                continue  # gone: the scheduler starts it again
            if not identity.is_ours(recorded[c], expected):
                raise ControlError(
                    f"pid {pid}, recorded as the executor of container {c}, is not a process "
                    f"of {self.topology!r}: not signalled"
                )
            signalled.append(pid)
        self.ensure_running()
        for pid in signalled:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        return [int(c) for c in targets]

    def update(self, packing: PackingPlan) -> None:
        """Stop every container, record ``packing``, start them again."""
        if self.engine.authentication and self.secret is None:
            raise ControlError(f"updating {self.topology!r} needs its secret, and there is none")
        self.kill()
        self.statemgr.set(PACKING_PLANS, self.topology, packing.to_dict())
        self.statemgr.set(SCHEDULERS, self.topology, {})
        self.schedule(packing)


def _stop_all(expected: dict[str, str], timeout: float) -> None:
    """Every process carrying ``expected``: SIGTERM, wait up to ``timeout``, SIGKILL.
    Looked up again after each step: an executor may have restarted a child."""
    me = {os.getpid(), os.getppid()}
    found = [p for p in identity.find_ours(expected) if p not in me]
    if not found:
        return
    for pid in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in identity.find_ours(expected) if p not in me]:
            return
        time.sleep(0.05)
    for _ in range(10):
        left = [p for p in identity.find_ours(expected) if p not in me]
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs. When it is our own child (the scheduler of a submit
    that failed), it is reaped as soon as it exits: an unreaped child still answers
    kill(0), and kill would wait for it until its deadline."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return pid_alive(pid)  # not ours
    except OSError:
        return False
    return reaped == 0


# -- the scheduler process --


def _executor_argv(
    topology: str, engine: EngineConfig, container: int, log_file: Path
) -> Callable[[int], list[str]]:
    from heronpy_lite.process import common_argv

    def argv(restarts: int) -> list[str]:
        return [
            "-m",
            EXECUTOR_MODULE,
            *common_argv(topology, engine, log_file),
            "--container",
            str(container),
        ]

    return argv


async def run_scheduler(args: Any) -> int:
    from heronpy_lite.process import state_manager_from_args

    lock = await asyncio.to_thread(_take_lock, args.topology, LOCK_WAIT_SECS)
    if lock is None:
        log.info("another scheduler of %s is running; this one exits", args.topology)
        return 0
    statemgr = await asyncio.to_thread(state_manager_from_args, args)
    try:
        return await _schedule(args, statemgr)
    except TopologyNotFoundError:
        log.info("the topology %s is gone; this scheduler exits", args.topology)
        return 0
    except ExceptionGroup as group:
        gone, rest = group.split(TopologyGone)
        if gone is None or rest is not None:
            raise
        log.info("%s; the scheduler stopped its containers and exits", gone.exceptions[0])
        return 0
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(statemgr.close)


async def _schedule(args: Any, statemgr: StateManager) -> int:
    record = await asyncio.to_thread(statemgr.get_topology, args.topology)
    packing_raw = await asyncio.to_thread(statemgr.get, PACKING_PLANS, args.topology)
    packing = PackingPlan.from_dict(packing_raw or {})
    engine = EngineConfig.from_config(record["config"])
    previous = await asyncio.to_thread(statemgr.get, SCHEDULERS, args.topology) or {}
    logs = working_dir(args.topology) / "log"
    executors: dict[int, Child] = {}
    changed = asyncio.Event()
    generation = int(previous.get("generation", 0)) + 1
    if previous.get("pid"):
        log.info(
            "scheduler %d of %s takes over from pid %s", generation, args.topology, previous["pid"]
        )

    me = identify(os.getpid())

    def record_now() -> dict[str, Any]:
        """Each pid with its start time and command line (scheduler/identity.py:
        kill and restart check them before signalling)."""

        def executor(c: Child) -> dict[str, Any]:
            known = identify(c.pid) if c.pid is not None else None
            return {"pid": c.pid, "restarts": c.restarts, **(known.to_dict() if known else {})}

        return {
            **(me.to_dict() if me else {"pid": os.getpid()}),
            "pgid": os.getpgid(0),
            "host": socket.gethostname(),
            "generation": generation,
            "executors": {str(k): executor(c) for k, c in executors.items()},
        }

    async def publish() -> None:
        """Keep ``schedulers/<name>`` current; retry while the state manager is down
        or cannot be written (ZooKeeper away, a full disk)."""
        failing = False
        while True:
            await changed.wait()
            changed.clear()
            try:
                await asyncio.to_thread(statemgr.set, SCHEDULERS, args.topology, record_now())
            except StateManagerError as exc:
                if not failing:
                    log.warning("cannot record the executors, retrying: %s", exc)
                failing = True
                changed.set()
                await asyncio.sleep(1.0)
                continue
            if failing:
                log.info("recorded the executors again")
            failing = False

    recorded = previous.get("executors", {})
    for container in range(packing.num_containers + 1):
        log_file = logs / f"executor-{container}.log"
        child = Child(
            f"executor {container}",
            _executor_argv(args.topology, engine, container, log_file),
            logs / f"executor-{container}.out",
            backoff_min=engine.restart_backoff_min_secs,
            backoff_max=engine.restart_backoff_max_secs,
            kill_timeout=engine.kill_timeout_secs + 2,
            detached=True,
        )
        old = recorded.get(str(container), {})
        pid = int(old.get("pid") or 0)
        if pid and runs(pid, EXECUTOR_MODULE, args.topology, container=str(container)):
            child.adopt(pid, int(old.get("restarts", 0)))
        child.on_change = changed.set
        executors[container] = child
    async with asyncio.TaskGroup() as tg:
        tg.create_task(publish())
        tg.create_task(watch_topology(statemgr, args.topology, record.get("submitted_at")))
        for child in executors.values():
            tg.create_task(child.supervise())
    return 0


def main(argv: list[str] | None = None) -> int:
    from heronpy_lite import process

    return process.start(SCHEDULER_MODULE, run_scheduler, argv)


if __name__ == "__main__":
    sys.exit(main())
