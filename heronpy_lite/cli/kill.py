"""``heronpy-lite kill CLUSTER NAME``: stop every process, remove every node."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import time
from typing import Any

from heronpy_lite.checkpoint.store import CheckpointStore, store_root
from heronpy_lite.cli.common import (
    add_cluster_args,
    engine_from_args,
    require_topology,
    state_manager,
)
from heronpy_lite.config import EngineConfig
from heronpy_lite.liveness import pid_alive
from heronpy_lite.scheduler.local import scrape_targets_file
from heronpy_lite.statemgr.base import SCHEDULERS, StateManager


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "kill",
        help="kill a topology",
        description="Stop every process of a topology and remove its state.",
    )
    add_cluster_args(p)
    p.add_argument("name")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    engine = engine_from_args(args)
    with state_manager(args) as sm:
        require_topology(sm, args.name)
        kill_topology(sm, args.name, engine)
    print(f"Topology {args.name!r} killed.")
    return 0


def kill_topology(
    sm: StateManager, name: str, engine: EngineConfig, scheduler_pid: int | None = None
) -> None:
    """SIGTERM the scheduler (it stops its executors, which stop their children),
    wait, then SIGKILL whatever is left in its process group, and delete every
    node of the topology (``scheduler_pid``: the one submit started, in case
    it has not recorded itself yet; it leads its own session, so pgid = pid)."""
    scheduler = sm.get(SCHEDULERS, name)
    if scheduler is None and scheduler_pid is not None:
        scheduler = {"pid": scheduler_pid, "pgid": scheduler_pid}
    if scheduler is not None:
        pid, pgid = int(scheduler["pid"]), int(scheduler["pgid"])
        if _running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + engine.kill_timeout_secs + 5
            while _running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        _running(pid)  # reap it if it is ours
    sm.delete_topology(name)
    # Prometheus stops scraping endpoints that are gone (file_sd drops a missing file)
    scrape_targets_file(name).unlink(missing_ok=True)
    # EFFECTIVELY_ONCE: its checkpoints go with it (a new submit starts clean)
    CheckpointStore(store_root(engine), name).drop()


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
