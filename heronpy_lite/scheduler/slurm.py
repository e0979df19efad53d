"""The Slurm scheduler: one batch job per container, placed and requeued by Slurm.

`SlurmScheduler.schedule` submits container k (0 = tmaster, 1..N = data) as
the job ``heronpy_lite-<topology>-<k>`` with ``sbatch --requeue``: its script
runs the container's executor, again whenever it fails, and ends when the
executor exits 0 (its topology is gone: killed or resubmitted). So:

- a container whose processes die on a live node comes back from its own
  job's script (the executor restarts its children itself);
- a container whose node dies (``kill -9`` of everything there, slurmd
  included) is requeued by slurmctld once the node is marked DOWN
  (``SlurmdTimeout``), onto another node: Slurm's own mechanism (``JobRequeue``
  and ``--requeue``), nothing of ours to fail;
- a container whose job ended some other way (``scancel`` of that one job by
  an admin, a time limit, its script killed) is submitted again by the
  topology's running executors (`watch_jobs`);
- ``kill`` cancels every job of the topology; ``restart k`` cancels job k
  and submits container k again.

Slurm holds a requeued job back for about two minutes (its begin time is
set ahead, so that it does not start again on a node that has not yet
forgotten its old credential). The topology's running executors therefore
look at its jobs every two seconds (`watch_jobs`; one of them acts, the one
of the lowest container whose job runs): they let its pending jobs start
now, so a container requeued because its host died is back as soon as
Slurm has marked the host down, on another host; they submit again a
container that has no job at all in two looks in a row; and they cancel a
second job of one container (two executors that both thought they acted).
`kill` marks the record ``stopping`` first, so nobody submits again what
it cancels.

Slurm's client commands find the cluster the usual way (``SLURM_CONF``, or
``/etc/slurm/slurm.conf``). The job ids are recorded under
``schedulers/<name>`` (``{"engine": "slurm", "jobs": {k: id}}``). The
topology's code reaches the nodes through a shared path: the working root
(``$HERONPY_LITE_HOME``, which the jobs inherit) must be on a file system
every node mounts at the same path, and heronpy_lite installed on every node
at the path of the submitting Python (``sys.executable``). The secret travels
in the job's environment (``--export=ALL`` of sbatch's own environment: never
on a command line).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import sys
import time
from typing import Any

from heronpy_lite import config, security
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import ControlError, SchedulerError, StateManagerError
from heronpy_lite.scheduler.base import Scheduler
from heronpy_lite.scheduler.executor import EXECUTOR_MODULE, working_dir
from heronpy_lite.statemgr.base import PACKING_PLANS, SCHEDULERS, StateManager
from heronpy_lite.wire.plan import PackingPlan

log = logging.getLogger(__name__)

#: how long kill waits for Slurm to report every job of the topology gone
_CANCEL_WAIT_SECS = 30.0


def job_name(topology: str, container: int) -> str:
    return f"heronpy_lite-{topology}-{container}"


def _slurm(*argv: str, env: dict[str, str] | None = None, timeout: float = 30.0) -> str:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError:
        raise SchedulerError(f"{argv[0]} not found: is Slurm's client installed here?") from None
    except subprocess.TimeoutExpired:
        raise SchedulerError(f"{argv[0]} did not answer within {timeout:g}s") from None
    if proc.returncode != 0:
        raise SchedulerError(f"{' '.join(argv[:2])} failed: {proc.stderr.strip() or proc.stdout}")
    return proc.stdout


#: how often the executors look at their topology's jobs (`watch_jobs`)
WATCH_JOBS_SECS = 2.0


def topology_jobs(topology: str, containers: int) -> list[tuple[str, int, str]]:
    """(job id, container, state) of every job of ``topology`` Slurm lists (pending,
    running, completing, ...), for containers 0..``containers``."""
    names = {job_name(topology, k): k for k in range(containers + 1)}
    out = _slurm("squeue", "--noheader", "--format=%i %j %T", f"--name={','.join(names)}")
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in names:
            found.append((fields[0], names[fields[1]], fields[2]))
    return found


def start_pending(jobs: list[tuple[str, int, str]]) -> list[str]:
    """Let every pending job of ``jobs`` start now (a requeued job waits about two
    minutes otherwise); the job ids it moved."""
    moved = [job for job, _, state in jobs if state == "PENDING"]
    for job in moved:
        _slurm("scontrol", "update", f"jobid={job}", "StartTime=now")
    return moved


class JobWatch:
    """What one executor decides from two looks in a row at its topology's jobs
    (sans-IO: `look` takes squeue's answer and the record, and says what to do)."""

    def __init__(self, container: int, containers: int) -> None:
        self.container = container
        self.containers = containers
        self._missing: set[int] = set()
        self._doubled: set[int] = set()

    def look(
        self, jobs: list[tuple[str, int, str]], recorded: dict[str, str]
    ) -> tuple[bool, list[int], list[str]]:
        """(whether this executor acts, the containers to submit again, the job ids
        to cancel)."""
        running = sorted(k for _, k, state in jobs if state == "RUNNING")
        acts = bool(running) and running[0] == self.container
        listed = {k for _, k, _ in jobs}
        missing = set(range(self.containers + 1)) - listed
        doubled: dict[int, list[str]] = {}
        for job, k, state in jobs:
            if state != "COMPLETING":
                doubled.setdefault(k, []).append(job)
        doubled = {k: ids for k, ids in doubled.items() if len(ids) > 1}
        # only what two looks in a row agree on: restart cancels and submits within
        # an instant, and a requeued job keeps its id
        resubmit = sorted(missing & self._missing)
        cancel = []
        for k in sorted(set(doubled) & self._doubled):
            keep = recorded.get(str(k))
            if keep not in doubled[k]:
                keep = min(doubled[k], key=int)
            cancel += [job for job in doubled[k] if job != keep]
        self._missing, self._doubled = missing, set(doubled)
        if not acts:
            return False, [], []
        return True, resubmit, cancel


async def watch_jobs(
    statemgr: StateManager,
    topology: str,
    engine: EngineConfig,
    container: int,
    containers: int,
    secret: bytes | None,
) -> None:
    """Run by every executor of a Slurm topology (see the module's docstring)."""
    import asyncio

    scheduler = SlurmScheduler(statemgr, topology, engine, secret)
    watch = JobWatch(container, containers)
    failing = False
    while True:
        await asyncio.sleep(WATCH_JOBS_SECS)
        try:
            await asyncio.to_thread(_watch_once, scheduler, watch, containers)
        except (SchedulerError, StateManagerError) as exc:
            if not failing:
                log.warning("cannot look after the topology's Slurm jobs: %s", exc)
            failing = True
            continue
        failing = False


def _watch_once(scheduler: SlurmScheduler, watch: JobWatch, containers: int) -> None:
    jobs = topology_jobs(scheduler.topology, containers)
    record = scheduler.record()
    acts, resubmit, cancel = watch.look(jobs, record.get("jobs", {}))
    if not acts or record.get("stopping") or not record:
        return
    moved = start_pending(jobs)
    if moved:
        log.info("let requeued Slurm jobs %s start now", ", ".join(moved))
    if cancel:
        log.warning("cancelling second Slurm jobs %s of one container", ", ".join(cancel))
        _slurm("scancel", *cancel)
    for k in resubmit:
        # the topology may be gone or killed since the look: ask again just before
        fresh = scheduler.record()
        if not fresh or fresh.get("stopping"):
            return
        job = scheduler._submit(k)
        fresh.setdefault("jobs", {})[str(k)] = job
        scheduler.statemgr.set(SCHEDULERS, scheduler.topology, fresh)
        log.warning("the Slurm job of container %d ended; submitted it again as job %s", k, job)


class SlurmScheduler(Scheduler):
    """`Scheduler` through Slurm (see the module's docstring)."""

    def _script(self, container: int) -> str:
        from heronpy_lite.process import common_argv

        log_file = working_dir(self.topology) / "log" / f"executor-{container}.log"
        argv = [
            sys.executable,
            "-m",
            EXECUTOR_MODULE,
            *common_argv(self.topology, self.engine, log_file),
            "--container",
            str(container),
        ]
        command = " ".join(shlex.quote(a) for a in argv)
        return (
            "#!/bin/sh\n"
            f"# container {container} of {self.topology}: its executor, run again while it\n"
            "# fails; it exits 0 once the topology is gone (killed or resubmitted)\n"
            f"until {command}; do sleep 1; done\n"
        )

    def _submit(self, container: int) -> str:
        workdir = working_dir(self.topology)
        script = workdir / f"slurm-container-{container}.sh"
        script.write_text(self._script(container))
        env = {
            **os.environ,
            "HERONPY_LITE_HOME": str(config.home()),
            **security.secret_env(self.secret),
        }
        out = _slurm(
            "sbatch",
            "--parsable",
            "--requeue",
            f"--job-name={job_name(self.topology, container)}",
            "--nodes=1",
            "--ntasks=1",
            f"--cpus-per-task={self.engine.slurm_cpus_per_container}",
            f"--chdir={workdir}",
            f"--output={workdir / 'log' / f'slurm-{container}.out'}",
            "--open-mode=append",
            "--export=ALL",
            *self.engine.slurm_sbatch_options.split(),
            str(script),
            env=env,
        )
        return out.strip().split(";")[0]

    def schedule(self, packing: PackingPlan) -> None:
        if self.engine.authentication and self.secret is None:
            raise ControlError(f"starting {self.topology!r} needs its secret, and there is none")
        jobs = {str(k): self._submit(k) for k in range(packing.num_containers + 1)}
        self.statemgr.set(SCHEDULERS, self.topology, {"engine": "slurm", "jobs": jobs})
        log.info("submitted %s as Slurm jobs %s", self.topology, jobs)

    def record(self) -> dict[str, Any]:
        """The topology's ``schedulers`` record ({} if there is none)."""
        return self.statemgr.get(SCHEDULERS, self.topology) or {}

    def _jobs(self) -> dict[str, str]:
        try:
            record = self.record()
        except StateManagerError:
            record = {}
        return {str(k): str(v) for k, v in record.get("jobs", {}).items()}

    def job_states(self) -> dict[str, str]:
        """container -> the state Slurm reports for its job (PENDING, RUNNING, ...)."""
        jobs = self._jobs()
        if not jobs:
            return {}
        out = _slurm("squeue", "--noheader", "--format=%i %T", f"--jobs={','.join(jobs.values())}")
        states = dict(line.split() for line in out.splitlines() if line.strip())
        return {k: states[j] for k, j in jobs.items() if j in states}

    def _names(self) -> str:
        """Every job name the topology may have (from its packing plan: a failed
        submit may not have recorded its jobs)."""
        try:
            packing = self.statemgr.get(PACKING_PLANS, self.topology) or {}
        except StateManagerError:
            packing = {}
        containers = {int(k) for k in self._jobs()}
        containers |= set(range(int(packing.get("num_containers", 0)) + 1))
        return ",".join(job_name(self.topology, k) for k in sorted(containers))

    def kill(self) -> None:
        names = self._names()
        # first say so, so that no executor submits again what is cancelled
        with contextlib.suppress(StateManagerError):
            record = self.record()
            if record:
                self.statemgr.set(SCHEDULERS, self.topology, {**record, "stopping": True})
        deadline = time.monotonic() + _CANCEL_WAIT_SECS
        cancelled: set[str] = set()
        while True:
            left = _slurm("squeue", "--noheader", "--format=%i %T", f"--name={names}")
            states = dict(line.split() for line in left.splitlines() if line.strip())
            if not states:
                return
            # a job submitted by an executor before it saw the mark is cancelled too
            fresh = [job for job, state in states.items() if job not in cancelled]
            if fresh:
                _slurm("scancel", *fresh)
                cancelled.update(fresh)
            if time.monotonic() > deadline:
                raise SchedulerError(
                    f"Slurm jobs {' '.join(states)} of {self.topology!r} are still there"
                )
            time.sleep(0.2)

    def restart(self, container: int | None) -> list[int]:
        if self.engine.authentication and self.secret is None:
            raise ControlError(f"restarting {self.topology!r} needs its secret, and there is none")
        jobs = self._jobs()
        if not jobs:
            raise ControlError(f"no Slurm jobs are recorded for {self.topology!r}")
        targets = [str(container)] if container is not None else sorted(jobs, key=int)
        for c in targets:
            if c not in jobs:
                raise ControlError(f"{self.topology!r} has no container {c}")
        # a new job per container, not a requeue: Slurm cannot start a requeued job again
        # on the same node before its old credential expires (about two minutes)
        listed = {job for job, _, _ in topology_jobs(self.topology, max(map(int, jobs)))}
        for c in targets:
            if jobs[c] in listed:  # a job that ended is only submitted again
                _slurm("scancel", jobs[c])
            jobs[c] = self._submit(int(c))
        self.statemgr.set(SCHEDULERS, self.topology, {**self.record(), "jobs": jobs})
        return [int(c) for c in targets]

    def update(self, packing: PackingPlan) -> None:
        if self.engine.authentication and self.secret is None:
            raise ControlError(f"updating {self.topology!r} needs its secret, and there is none")
        self.kill()
        self.statemgr.set(PACKING_PLANS, self.topology, packing.to_dict())
        self.schedule(packing)

    def describe(self) -> dict[str, Any]:
        return {"engine": "slurm", "jobs": self._jobs()}
