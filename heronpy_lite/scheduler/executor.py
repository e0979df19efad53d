"""The executor of one container: starts and supervises its processes.

Container 0 runs the tmaster: with a state manager that can elect (ZooKeeper)
and ``heron.tmaster.standby``, two tmaster processes, one active and one
standby (see tmaster/leadership.py). When one of them dies, the executor
removes the tmaster node it may have left, so the standby takes over at
once instead of after the session timeout. Container k >= 1 runs its stream
manager, then one instance process per task packed into it. The stream
manager keeps its port across restarts (the executor passes back the port it
first bound), so restarted instances and peers find it where it was; so does
each container's metrics manager, for the processes that report to it.

Every executor ends itself (stopping its children) once its topology's record
is gone or belongs to a newer submit of the name, so a container never
outlives its topology, whatever happened to the scheduler. Under the local
scheduler, it also watches the scheduler's lock and starts a new scheduler
when the old one died (docs/decisions/0031-local-scheduler-failover.md);
under Slurm, it looks after the topology's jobs (scheduler/slurm.py,
`watch_jobs`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from pathlib import Path
from typing import Any

from heronpy_lite.config import EngineConfig, home
from heronpy_lite.errors import StateManagerError, TopologyGone, TopologyNotFoundError
from heronpy_lite.network import connect_host
from heronpy_lite.scheduler.supervisor import Child
from heronpy_lite.scheduler.targets import write_scrape_targets
from heronpy_lite.statemgr.base import PACKING_PLANS, TMASTERS, StateManager
from heronpy_lite.wire.plan import PackingPlan

log = logging.getLogger(__name__)

EXECUTOR_MODULE = "heronpy_lite.scheduler.executor"
#: how often an executor checks that its topology still exists, and that its
#: (local) scheduler still runs
WATCH_SECS = 1.0
SCHEDULER_PROBE_SECS = 0.5

__all__ = ["EXECUTOR_MODULE", "TopologyGone", "run_executor", "watch_topology", "working_dir"]


def working_dir(topology: str) -> Path:
    return home() / "topologies" / topology


async def run_executor(args: Any) -> int:
    from heronpy_lite.process import state_manager_from_args

    statemgr = await asyncio.to_thread(state_manager_from_args, args)
    try:
        return await _run_container(args, statemgr)
    except ExceptionGroup as group:
        gone, rest = group.split(TopologyGone)
        if gone is None or rest is not None:
            raise
        log.info("%s; container %d stopped", gone.exceptions[0], args.container)
        return 0
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(statemgr.close)


async def _release_tmaster_node(statemgr: StateManager, topology: str, pid: int) -> None:
    """Remove ``tmasters/<topology>`` if the process that just died (``pid``,
    on this host) left it: its session would keep it for the session timeout."""
    hostname = socket.gethostname()
    try:
        released = await asyncio.to_thread(
            statemgr.delete_if,
            TMASTERS,
            topology,
            lambda v: v.get("pid") == pid and v.get("hostname") == hostname,
        )
    except StateManagerError as exc:
        log.warning("cannot remove the tmaster node of dead pid %d: %s", pid, exc)
        return
    if released:
        log.info("removed the tmaster node left by pid %d; a standby takes over", pid)


async def _run_container(args: Any, statemgr: StateManager) -> int:
    from heronpy_lite.process import common_argv

    record = await asyncio.to_thread(statemgr.get_topology, args.topology)
    packing_raw = await asyncio.to_thread(statemgr.get, PACKING_PLANS, args.topology)
    packing = PackingPlan.from_dict(packing_raw or {})
    engine = EngineConfig.from_config(record["config"])
    workdir = working_dir(args.topology)
    logs = workdir / "log"
    container = args.container

    metrics = {"port": 0}

    def child(name: str, module: str, extra: Any, log_name: str) -> Child:
        log_file = logs / f"{log_name}.log"
        return Child(
            name,
            lambda restarts: [
                "-m",
                module,
                *common_argv(args.topology, engine, log_file),
                "--metrics-port",
                str(metrics["port"]),
                *extra(restarts),
            ],
            logs / f"{log_name}.out",
            backoff_min=engine.restart_backoff_min_secs,
            backoff_max=engine.restart_backoff_max_secs,
            kill_timeout=engine.kill_timeout_secs,
        )

    # every container's metrics manager starts first: the others report to it
    metrics_port_file = workdir / f"metricsmgr-{container}.port"
    metrics_port_file.unlink(missing_ok=True)
    metricsmgr = child(
        f"metricsmgr {container}",
        "heronpy_lite.metrics",
        lambda r: [
            "--container",
            str(container),
            "--port-file",
            str(metrics_port_file),
            "--port",
            str(metrics["port"]),  # 0 at first; then the port it bound
        ],
        f"metricsmgr-{container}",
    )
    async with asyncio.TaskGroup() as tg:
        tg.create_task(watch_topology(statemgr, args.topology, record.get("submitted_at")))
        if engine.scheduler_class == "local":
            tg.create_task(_watch_local_scheduler(args.topology, engine))
        elif engine.scheduler_class == "slurm":
            from heronpy_lite.scheduler import slurm
            from heronpy_lite.security import process_secret

            tg.create_task(
                slurm.watch_jobs(
                    statemgr,
                    args.topology,
                    engine,
                    container,
                    packing.num_containers,
                    process_secret(engine),
                )
            )
        metrics_task = tg.create_task(metricsmgr.supervise())
        metrics["port"] = await _wait_port(metrics_port_file)
        await _run_children(args, statemgr, packing, engine, container, workdir, child)
        metrics_task.cancel()
    return 0


async def watch_topology(statemgr: StateManager, topology: str, submitted_at: Any) -> None:
    """Raise TopologyGone once the topology's record is gone or is a newer submit's
    (an unreachable state manager is not that: keep running)."""
    while True:
        await asyncio.sleep(WATCH_SECS)
        try:
            record = await asyncio.to_thread(statemgr.get_topology, topology)
        except TopologyNotFoundError:
            raise TopologyGone(f"the topology {topology!r} is gone") from None
        except StateManagerError:
            continue
        if record.get("submitted_at") != submitted_at:
            raise TopologyGone(f"{topology!r} was submitted again")


async def _watch_local_scheduler(topology: str, engine: EngineConfig) -> None:
    """Start a new scheduler when the lock of the local one is free (it died)."""
    from heronpy_lite.scheduler import local

    started: list[Any] = []
    while True:
        await asyncio.sleep(SCHEDULER_PROBE_SECS)
        started = [p for p in started if p.poll() is None]  # reap the ones that exited
        if local.scheduler_running(topology):
            continue
        log.warning("the scheduler of %s is gone; starting a new one", topology)
        try:
            started.append(local.start_scheduler_process(topology, engine))
        except OSError as exc:
            log.error("cannot start a scheduler: %s", exc)
        # it takes the lock within a moment; the others that tried at once exit
        await asyncio.sleep(local.LOCK_WAIT_SECS)


async def _wait_port(port_file: Path) -> int:
    """The port a child wrote to ``port_file`` (it writes it once it listens)."""
    while not port_file.exists():
        await asyncio.sleep(0.02)
    return int(port_file.read_text())


async def _run_children(
    args: Any,
    statemgr: StateManager,
    packing: PackingPlan,
    engine: EngineConfig,
    container: int,
    workdir: Path,
    child: Any,
) -> int:
    if container == 0:
        if statemgr.supports_standby:
            names = ["tmaster-a", "tmaster-b"] if engine.tmaster_standby else ["tmaster-a"]
        else:
            names = ["tmaster"]
        async with asyncio.TaskGroup() as tg:
            tg.create_task(write_scrape_targets(statemgr, args.topology))
            for name in names:
                tmaster = child(name, "heronpy_lite.tmaster", lambda r: [], name)
                if statemgr.supports_standby:
                    tmaster.on_exit = lambda pid: _release_tmaster_node(
                        statemgr, args.topology, pid
                    )
                tg.create_task(tmaster.supervise())
        return 0
    async with asyncio.TaskGroup() as tg:
        port_file = workdir / f"stmgr-{container}.port"
        port_file.unlink(missing_ok=True)
        bound = {"port": 0}

        def stmgr_argv(restarts: int) -> list[str]:
            return [
                "--container",
                str(container),
                "--port",
                str(bound["port"]),
                "--port-file",
                str(port_file),
                "--restarts",
                str(restarts),
            ]

        stmgr = child(f"stmgr {container}", "heronpy_lite.stmgr", stmgr_argv, f"stmgr-{container}")
        tg.create_task(stmgr.supervise())
        bound["port"] = await _wait_port(port_file)
        log.info("stmgr of container %d on port %d", container, bound["port"])
        for task in packing.tasks_in(container):

            def instance_argv(restarts: int, task_id: int = task.task_id) -> list[str]:
                return [
                    "--task-id",
                    str(task_id),
                    "--stmgr-host",
                    connect_host(engine.bind_host),
                    "--stmgr-port",
                    str(bound["port"]),
                    "--restarts",
                    str(restarts),
                ]

            name = f"{task.component}-{task.task_id}"
            tg.create_task(
                child(
                    f"instance {name}", "heronpy_lite.instance", instance_argv, f"instance-{name}"
                ).supervise()
            )
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--container", type=int, required=True)


def main(argv: list[str] | None = None) -> int:
    from heronpy_lite import process

    return process.start(EXECUTOR_MODULE, run_executor, argv, _arguments)


if __name__ == "__main__":
    sys.exit(main())
