"""``heronpy-lite kill CLUSTER NAME``: stop every process, remove every node.

No pid from the state manager is signalled unless it is still the process
that was recorded and one of this topology's (scheduler/identity.py); and
whatever the nodes say, every live process carrying the topology's markers
is stopped, so a topology whose nodes are missing, corrupt or rewritten is
still cleaned up, and nothing is left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import time
from typing import Any

from heronpy_lite.checkpoint.store import CheckpointStore, store_root
from heronpy_lite.cli.common import add_cluster_args, engine_from_args, state_manager
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import CorruptStateError, TopologyNotFoundError
from heronpy_lite.liveness import pid_alive
from heronpy_lite.scheduler import identity
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
        try:
            sm.get_topology(args.name)
        except TopologyNotFoundError:
            if not identity.find_ours(identity.markers(args.name, engine)):
                raise TopologyNotFoundError(f"no topology named {args.name!r} is running") from None
        except CorruptStateError:
            pass  # kill is how such a topology goes away
        notes = kill_topology(sm, args.name, engine)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    print(f"Topology {args.name!r} killed.")
    return 0


def kill_topology(
    sm: StateManager, name: str, engine: EngineConfig, scheduler_pid: int | None = None
) -> list[str]:
    """SIGTERM the scheduler (it stops its executors, which stop their children)
    and wait; then stop every process still carrying the topology's markers
    (SIGTERM, then SIGKILL after ``heron.kill.timeout.secs``), and delete every
    node of the topology. ``scheduler_pid``: the one submit started, its own
    child, in case it has not recorded itself yet. Returns what the user should
    know (a recorded pid that was not signalled, and why)."""
    expected = identity.markers(name, engine)
    notes: list[str] = []
    pid = scheduler_pid
    if pid is None:
        try:
            scheduler = sm.get(SCHEDULERS, name)
        except CorruptStateError as exc:
            notes.append(f"{exc}; stopping the topology's processes by their markers")
            scheduler = None
        if scheduler is not None:
            pid = _verified(scheduler, expected, notes)
    if pid is not None and _running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + engine.kill_timeout_secs + 5
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    _stop_all(expected, engine.kill_timeout_secs)
    if pid is not None:
        _running(pid)  # reap it if it is ours
    sm.delete_topology(name)
    # Prometheus stops scraping endpoints that are gone (file_sd drops a missing file)
    scrape_targets_file(name).unlink(missing_ok=True)
    # EFFECTIVELY_ONCE: its checkpoints go with it (a new submit starts clean)
    CheckpointStore(store_root(engine), name).drop()
    return notes


def _verified(scheduler: dict[str, Any], expected: dict[str, str], notes: list[str]) -> int | None:
    """The recorded scheduler's pid if it is still that process and this topology's."""
    recorded = scheduler.get("pid")
    host = scheduler.get("host")
    if host is not None and host != socket.gethostname():
        notes.append(f"its scheduler was recorded on host {host!r}, not this one: not signalled")
        return None
    if identity.is_ours(scheduler, expected):
        return int(recorded)  # type: ignore[arg-type]
    if recorded is not None and isinstance(recorded, int) and pid_alive(recorded):
        notes.append(
            f"pid {recorded}, recorded as its scheduler, is not that topology's process "
            "(its start time, command line or environment differ): not signalled"
        )
    return None


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
