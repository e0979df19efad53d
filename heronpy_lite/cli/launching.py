"""What ``submit`` shows and does around the launch, apart from the launch itself:
the progress line on a terminal, the closing message, and stopping what a
failed or interrupted submit started (which a second Ctrl-C must not cut
short: it would leave a topology recorded as RUNNING with no process)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TextIO

from heronpy_lite.cli import kill as kill_cmd
from heronpy_lite.scheduler.base import Scheduler
from heronpy_lite.statemgr.base import StateManager


class Progress:
    """One line on a terminal, rewritten in place while the processes start; nothing
    when the output is not a terminal (scripts, tests, CI logs)."""

    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        self.name = name
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.began = time.monotonic()
        self._last = ""

    def line(self, running: int, tasks: int, stmgrs: int, containers: int, now: float) -> str:
        return (
            f"starting {self.name}: {stmgrs}/{containers} stream managers registered, "
            f"{running}/{tasks} instances running ({now - self.began:.1f}s)"
        )

    def update(self, running: int, tasks: int, stmgrs: int, containers: int) -> None:
        if not self.enabled:
            return
        text = self.line(running, tasks, stmgrs, containers, time.monotonic())
        if text != self._last:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            self._last = text

    def clear(self) -> None:
        if self.enabled and self._last:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._last = ""


def launched_message(
    name: str, cluster: str, containers: int, instances: int, logs: Path, deactivated: bool
) -> str:
    sizes = f"{containers} container(s), {instances} instance(s)"
    if deactivated:
        return (
            f"Topology {name!r} is deployed deactivated: {sizes} started, its spouts paused "
            f"(heronpy-lite activate {cluster} {name}). Logs: {logs}"
        )
    return f"Topology {name!r} is running: {sizes}. Logs: {logs}"


def stop_started(sm: StateManager, name: str, scheduler: Scheduler, cluster: str) -> None:
    """Kill what a failed submit started and remove its nodes. Ctrl-C meanwhile is
    answered, not obeyed: stopping takes a second or two, and an interrupted stop
    would leave the name taken by a topology with no process."""

    def still_stopping(signum: int, frame: FrameType | None) -> None:
        print("still stopping what was started; a moment", file=sys.stderr, flush=True)

    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, still_stopping)
    except ValueError:  # not the main thread: nothing to protect against
        previous = None
    print(f"stopping what was started of {name!r}", file=sys.stderr, flush=True)
    try:
        kill_cmd.kill_topology(sm, name, scheduler, cluster)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
