"""``heronpy-lite kill CLUSTER NAME``: stop every process, remove every node."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import time
from typing import Any

from heronpy_lite.cli.common import engine_for, require_topology, state_manager
from heronpy_lite.config import EngineConfig
from heronpy_lite.process import pid_alive
from heronpy_lite.statemgr.base import SCHEDULERS, StateManager


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "kill",
        help="kill a topology",
        description="Stop every process of a topology and remove its state.",
    )
    p.add_argument("cluster")
    p.add_argument("name")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    engine = engine_for(args.cluster)
    with state_manager(args.cluster) as sm:
        require_topology(sm, args.name)
        kill_topology(sm, args.name, engine)
    print(f"Topology {args.name!r} killed.")
    return 0


def kill_topology(sm: StateManager, name: str, engine: EngineConfig) -> None:
    """SIGTERM the scheduler (it stops its executors, which stop their children),
    wait, then SIGKILL whatever is left in its process group, and delete the state."""
    scheduler = sm.get(SCHEDULERS, name)
    if scheduler is not None:
        pid, pgid = int(scheduler["pid"]), int(scheduler["pgid"])
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + engine.kill_timeout_secs + 5
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        _reap(pid)
    sm.delete_topology(name)


def _reap(pid: int) -> None:
    """Collect the scheduler if it is our own child (submit that failed)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
