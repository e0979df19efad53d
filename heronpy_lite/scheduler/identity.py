"""Which processes belong to a topology: checked before any of them is signalled.

Theory of operation
-------------------
``kill`` and ``restart`` find pids in the state manager (``schedulers/<name>``),
which anyone who can write that node can rewrite, and a pid can be reused by
an unrelated process after a crash. So a pid is never trusted alone:

- At launch, ``submit`` starts the scheduler with *markers* in its
  environment: the topology's name, the working root (``HERONPY_LITE_HOME``)
  and the state manager it lives in. Every engine process inherits them (the
  executors, tmasters, stream managers, metrics managers and instances, and
  whatever user code starts). An unrelated process cannot acquire them: no
  one can change another process's environment.
- The scheduler records, for itself and each executor, the pid, its start
  time (``/proc/<pid>/stat``, clock ticks since boot) and its command line.
- Before signalling a recorded pid, `is_ours` checks all three against the
  live process: the same start time (not a reused pid), the same command
  line, and the markers in its environment (``/proc/<pid>/environ``, readable
  only for one's own processes). The markers are derived by the caller from
  what it was asked (the topology name, its own working root and state
  manager), never read from the node.
- `find_ours` lists every live process carrying the markers, whatever the
  node says: ``kill`` stops those too, so a topology whose node is missing,
  corrupt or rewritten can still be cleaned up, and nothing is orphaned.

Linux only (``/proc``), as the rest of the local scheduler (``prctl``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heronpy_lite.config import EngineConfig, home

TOPOLOGY_VAR = "HERONPY_LITE_TOPOLOGY"
HOME_VAR = "HERONPY_LITE_HOME"
STATE_VAR = "HERONPY_LITE_STATE"

_PROC = Path("/proc")


def markers(topology: str, engine: EngineConfig) -> dict[str, str]:
    """The environment every process of ``topology`` carries (from what the
    caller knows: never from a state node)."""
    root = home().resolve()
    if engine.statemgr_class == "zookeeper":
        where = f"{engine.statemgr_connection_string}{engine.statemgr_root_path}"
    else:
        configured = engine.statemgr_root_path
        where = str(Path(configured).resolve() if configured else root / "state")
    state = f"{engine.statemgr_class}:{where}"
    return {TOPOLOGY_VAR: topology, HOME_VAR: str(root), STATE_VAR: state}


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    pid: int
    start_time: int
    cmdline: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "start_time": self.start_time, "cmdline": list(self.cmdline)}


def identify(pid: int) -> ProcessIdentity | None:
    """The live process ``pid`` as `is_ours` compares it; None if there is none
    (or it is a zombie: it has exited)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    fields = stat.rsplit(") ", 1)[-1].split()
    # fields[0] is the state (field 3 of proc(5)), so starttime (field 22) is [19]
    if len(fields) < 20 or fields[0] == "Z":
        return None
    cmdline = tuple(a.decode(errors="replace") for a in raw.split(b"\0")[:-1])
    return ProcessIdentity(pid, int(fields[19]), cmdline)


def environment_of(pid: int) -> dict[str, str] | None:
    """``pid``'s environment, or None if it cannot be read (gone, or not ours)."""
    try:
        raw = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def carries(pid: int, expected: dict[str, str]) -> bool:
    env = environment_of(pid)
    return env is not None and all(env.get(k) == v for k, v in expected.items())


def is_ours(recorded: dict[str, Any], expected: dict[str, str]) -> bool:
    """Whether the process ``recorded`` (`ProcessIdentity.to_dict` of it at launch)
    is still that process and one of this topology's (``expected``: `markers`)."""
    try:
        pid = int(recorded["pid"])
    except (KeyError, TypeError, ValueError):
        return False
    if pid <= 1 or pid == os.getpid():
        return False
    live = identify(pid)
    if live is None:
        return False
    if "start_time" in recorded and recorded["start_time"] != live.start_time:
        return False  # the pid was reused
    if "cmdline" in recorded and list(recorded["cmdline"]) != list(live.cmdline):
        return False
    return carries(pid, expected)


def find_ours(expected: dict[str, str]) -> list[int]:
    """Every live process carrying ``expected`` in its environment (not this one)."""
    me = os.getpid()
    found = []
    with contextlib.suppress(OSError):
        for entry in _PROC.iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid != me and carries(pid, expected) and identify(pid) is not None:
                found.append(pid)
    return sorted(found)


__all__ = [
    "ProcessIdentity",
    "carries",
    "environment_of",
    "find_ours",
    "identify",
    "is_ours",
    "markers",
]
