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
- ``kill`` cancels every job of the topology; ``restart k`` cancels job k
  and submits container k again.

Slurm holds a requeued job back for about two minutes (its begin time is
set ahead, so that it does not start again on a node that has not yet
forgotten its old credential). Every running executor of the topology
therefore checks every two seconds for its topology's pending jobs and
lets them start now (`start_pending`): a container requeued because its
host died is back as soon as Slurm has marked the host down, on another
host.

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


def start_pending(topology: str, containers: int) -> list[str]:
    """Let every pending job of ``topology`` start now (a requeued job waits about two
    minutes otherwise); the job ids it moved."""
    names = ",".join(job_name(topology, k) for k in range(containers + 1))
    out = _slurm("squeue", "--noheader", "--states=PENDING", "--format=%i", f"--name={names}")
    moved = out.split()
    for job in moved:
        _slurm("scontrol", "update", f"jobid={job}", "StartTime=now")
    return moved


class SlurmScheduler(Scheduler):
    """`Scheduler` through Slurm (see the module's docstring)."""

    def __init__(
        self,
        statemgr: StateManager,
        topology: str,
        engine: EngineConfig,
        secret: bytes | None = None,
    ) -> None:
        super().__init__(statemgr, topology, engine, secret)

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

    def _jobs(self) -> dict[str, str]:
        try:
            record = self.statemgr.get(SCHEDULERS, self.topology) or {}
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
        ids = _slurm("squeue", "--noheader", "--format=%i", f"--name={names}").split()
        if ids:
            _slurm("scancel", *ids)
        deadline = time.monotonic() + _CANCEL_WAIT_SECS
        while time.monotonic() < deadline:
            left = _slurm("squeue", "--noheader", "--format=%i", f"--name={names}").split()
            if not left:
                return
            time.sleep(0.2)
        raise SchedulerError(f"Slurm jobs {' '.join(left)} of {self.topology!r} are still there")

    def restart(self, container: int | None) -> list[int]:
        jobs = self._jobs()
        if not jobs:
            raise ControlError(f"no Slurm jobs are recorded for {self.topology!r}")
        targets = [str(container)] if container is not None else sorted(jobs, key=int)
        for c in targets:
            if c not in jobs:
                raise ControlError(f"{self.topology!r} has no container {c}")
        # a new job per container, not a requeue: Slurm cannot start a requeued job again
        # on the same node before its old credential expires (about two minutes)
        for c in targets:
            _slurm("scancel", jobs[c])
            jobs[c] = self._submit(int(c))
        self.statemgr.set(SCHEDULERS, self.topology, {"engine": "slurm", "jobs": jobs})
        return [int(c) for c in targets]

    def update(self, packing: PackingPlan) -> None:
        if self.engine.authentication and self.secret is None:
            raise ControlError(f"updating {self.topology!r} needs its secret, and there is none")
        self.kill()
        self.statemgr.set(PACKING_PLANS, self.topology, packing.to_dict())
        self.schedule(packing)

    def describe(self) -> dict[str, Any]:
        return {"engine": "slurm", "jobs": self._jobs()}
