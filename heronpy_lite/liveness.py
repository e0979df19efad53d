"""Whether a process is alive: the one check every caller shares (kill, submit,
the local state manager's lock owners, the tests)."""

from __future__ import annotations

import contextlib
import os


def pid_alive(pid: int) -> bool:
    """True for a live process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's, and alive
    with contextlib.suppress(OSError, IndexError), open(f"/proc/{pid}/stat") as f:
        if f.read().rsplit(") ", 1)[1].startswith("Z"):
            return False
    return True


def command_line(pid: int) -> list[str]:
    """The arguments ``pid`` was started with ([] if it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def runs(pid: int, module: str, topology: str, **options: str) -> bool:
    """Whether ``pid`` is alive and is ``python -m module --topology topology ...``
    with each ``--option value`` of ``options`` among its arguments: a recorded
    pid is trusted only if it still is the process it was (pids are reused)."""
    if not pid_alive(pid):
        return False
    argv = command_line(pid)
    if module not in argv:
        return False
    wanted = {"topology": topology, **options}
    return all(
        any(argv[i] == f"--{k}" and argv[i + 1] == v for i in range(len(argv) - 1))
        for k, v in wanted.items()
    )
