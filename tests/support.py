"""Helpers shared by every test suite (``tests`` is on the pytest ``pythonpath``;
so are the suites' harnesses, `cli_harness` and `zk_harness`)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from heronpy_lite.liveness import pid_alive

__all__ = ["free_port", "pid_alive", "wait_for"]


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.05,
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
