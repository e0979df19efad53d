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
