"""The local scheduler: one process per topology that runs its executors.

Started detached (its own session) by ``heronpy-lite submit local``; starts
one executor per container (0 = tmaster, 1..N = data), restarts any executor
that dies, and records its pid and the executors' pids under
``schedulers/<name>``. SIGTERM stops everything in order: executors stop
their children, then exit. ``heronpy-lite kill`` relies on that, and on the
process group as a backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import StateManagerError
from heronpy_lite.process import write_atomically
from heronpy_lite.scheduler.executor import working_dir
from heronpy_lite.scheduler.identity import identify
from heronpy_lite.scheduler.supervisor import Child
from heronpy_lite.statemgr.base import PACKING_PLANS, SCHEDULERS, StateManager
from heronpy_lite.wire.plan import PackingPlan

log = logging.getLogger(__name__)


def _executor_argv(
    topology: str, engine: EngineConfig, container: int, log_file: Path
) -> Callable[[int], list[str]]:
    from heronpy_lite.process import common_argv

    def argv(restarts: int) -> list[str]:
        return [
            "-m",
            "heronpy_lite.scheduler.executor",
            *common_argv(topology, engine, log_file),
            "--container",
            str(container),
        ]

    return argv


async def run_scheduler(args: Any) -> int:
    from heronpy_lite.process import state_manager_from_args

    statemgr = await asyncio.to_thread(state_manager_from_args, args)
    try:
        return await _schedule(args, statemgr)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(statemgr.close)


async def _schedule(args: Any, statemgr: StateManager) -> int:
    record = await asyncio.to_thread(statemgr.get_topology, args.topology)
    packing_raw = await asyncio.to_thread(statemgr.get, PACKING_PLANS, args.topology)
    packing = PackingPlan.from_dict(packing_raw or {})
    engine = EngineConfig.from_config(record["config"])
    logs = working_dir(args.topology) / "log"
    executors: dict[int, Child] = {}
    changed = asyncio.Event()

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

    for container in range(packing.num_containers + 1):
        log_file = logs / f"executor-{container}.log"
        executors[container] = Child(
            f"executor {container}",
            _executor_argv(args.topology, engine, container, log_file),
            logs / f"executor-{container}.out",
            backoff_min=engine.restart_backoff_min_secs,
            backoff_max=engine.restart_backoff_max_secs,
            kill_timeout=engine.kill_timeout_secs + 2,
        )
        executors[container].on_change = changed.set
    async with asyncio.TaskGroup() as tg:
        tg.create_task(publish())
        tg.create_task(_write_scrape_targets(statemgr, args.topology))
        for child in executors.values():
            tg.create_task(child.supervise())
    return 0


def scrape_targets_file(topology: str) -> Path:
    """The Prometheus file_sd targets file of ``topology``."""
    return working_dir(topology) / "prometheus_targets.json"


async def _write_scrape_targets(statemgr: StateManager, topology: str) -> None:
    """Keep a Prometheus ``file_sd`` file listing every container's /metrics, so
    one scrape config (``file_sd_configs``) finds them all, wherever they move.
    A write that fails (a full disk) is tried again every second, said once."""
    path = scrape_targets_file(topology)
    written = None
    failing = False
    while True:
        try:
            managers = await asyncio.to_thread(statemgr.get_metricsmgrs, topology)
        except StateManagerError:
            managers = None
        if managers is not None:
            targets = [
                {
                    "targets": [f"{m['host']}:{m['port']}"],
                    "labels": {"heron_topology": topology, "heron_container": str(c)},
                }
                for c, m in sorted(managers.items())
                if isinstance(m, dict) and "host" in m and "port" in m
            ]
            if targets != written:
                try:
                    await asyncio.to_thread(
                        write_atomically, path, json.dumps(targets, indent=2) + "\n"
                    )
                except OSError as exc:
                    if not failing:
                        log.warning("cannot write the scrape targets %s, retrying: %s", path, exc)
                    failing = True
                else:
                    if failing:
                        log.info("wrote the scrape targets again")
                    failing = False
                    written = targets
        await asyncio.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    from heronpy_lite import process

    return process.start("heronpy_lite.scheduler.local", run_scheduler, argv)


if __name__ == "__main__":
    sys.exit(main())
