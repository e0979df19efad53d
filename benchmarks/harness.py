"""Shared plumbing for the benchmark scripts: submit/kill real topologies
through the CLI under a private ``HERONPY_LITE_HOME``, find their processes,
read the counting bolt's reports, and clean up everything that is ours.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
TOPOLOGY_FILE = HERE / "topologies" / "bench.py"
REPO = HERE.parent


class Cli:
    """``python -m heronpy_lite ...`` with this run's own working root."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "HERONPY_LITE_HOME": str(home)}

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "heronpy_lite", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"heronpy-lite {' '.join(args)} exited {proc.returncode}: "
                f"{proc.stdout.strip()} {proc.stderr.strip()}"
            )
        return proc.stdout

    def status(self, name: str) -> dict[str, Any]:
        return dict(json.loads(self.run("status", "local", name, "--format", "json")))

    @contextlib.contextmanager
    def submitted(
        self, attr: str, name: str, props: dict[str, Any], extra: list[str] | None = None
    ) -> Iterator[str]:
        args = ["submit", "local", str(TOPOLOGY_FILE), attr, "--name", name]
        for key, value in props.items():
            args += ["--config-property", f"{key}={value}"]
        args += extra or []
        try:
            self.run(*args)
            yield name
        finally:
            self.run("kill", "local", name, check=False)
            reap_home(self.home)


def processes(status: dict[str, Any]) -> dict[str, psutil.Process]:
    """role -> process, for every process of a topology (from ``status``)."""
    found: dict[str, int] = {}
    if status.get("scheduler_pid"):
        found["scheduler"] = status["scheduler_pid"]
    for c in status["containers"]:
        n = c["container"]
        if c.get("executor_pid"):
            found[f"executor{n}"] = c["executor_pid"]
        if n == 0:
            pid = (c.get("tmaster") or {}).get("pid")
            if pid:
                found["tmaster"] = pid
        else:
            pid = (c.get("stmgr") or {}).get("pid")
            if pid:
                found[f"stmgr{n}"] = pid
            for i in c["instances"]:
                if i.get("pid"):
                    found[f"{i['component']}[{i['task_id']}]@c{n}"] = i["pid"]
    procs: dict[str, psutil.Process] = {}
    seen: set[int] = set()
    for role, pid in found.items():
        with contextlib.suppress(psutil.Error):
            procs[role] = psutil.Process(pid)
            seen.add(pid)
    # anything else they started (e.g. the metrics managers), named by module
    for proc in list(procs.values()):
        with contextlib.suppress(psutil.Error):
            for child in proc.children(recursive=True):
                if child.pid in seen:
                    continue
                seen.add(child.pid)
                cmd = child.cmdline()
                module = next(
                    (a.rpartition(".")[2] for a in cmd if a.startswith("heronpy_lite.")), "proc"
                )
                container = ""
                if "--container" in cmd:
                    container = cmd[cmd.index("--container") + 1]
                role = f"{module}{container}"
                if role in procs:
                    role = f"{role}-{child.pid}"
                procs[role] = child
    return procs


def cpu_snapshot(procs: dict[str, psutil.Process]) -> dict[str, float]:
    """role -> user+system CPU seconds so far."""
    out = {}
    for role, proc in procs.items():
        try:
            t = proc.cpu_times()
            out[role] = t.user + t.system
        except psutil.Error:
            out[role] = float("nan")
    return out


def reap_home(home: Path) -> list[int]:
    """SIGKILL every process left whose environment names our working root.

    Only processes with ``HERONPY_LITE_HOME=<home>`` are touched: never another
    user's topology.
    """
    marker = f"HERONPY_LITE_HOME={home}".encode()
    deadline = time.monotonic() + 5
    killed: list[int] = []
    while True:
        ours = _pids_with(marker)
        if not ours or time.monotonic() > deadline + 2:
            return killed
        if time.monotonic() > deadline:
            for pid in ours:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        time.sleep(0.2)


def _pids_with(marker: bytes) -> list[int]:
    me = os.getpid()
    ours = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if marker in env:
            ours.append(int(entry))
    return ours


def leftovers(home: Path) -> list[int]:
    """Pids still running with our working root."""
    return _pids_with(f"HERONPY_LITE_HOME={home}".encode())


@dataclass
class Reports:
    """The ``[time, count, samples]`` lines of every counting bolt in a folder."""

    folder: Path
    records: list[tuple[float, int, list[float]]] = field(default_factory=list)
    _offsets: dict[Path, int] = field(default_factory=dict)
    _partial: dict[Path, str] = field(default_factory=dict)

    def poll(self) -> None:
        for path in sorted(self.folder.glob("*.jsonl")):
            offset = self._offsets.get(path, 0)
            with open(path) as f:
                f.seek(offset)
                data = f.read()
                self._offsets[path] = f.tell()
            data = self._partial.pop(path, "") + data
            lines = data.split("\n")
            if lines[-1]:
                self._partial[path] = lines[-1]
            for line in lines[:-1]:
                if line:
                    t, count, samples = json.loads(line)
                    self.records.append((t, count, samples))
        self.records.sort(key=lambda r: r[0])

    def wait(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if predicate(self):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    @property
    def last_time(self) -> float:
        return self.records[-1][0] if self.records else 0.0

    @property
    def last_count(self) -> int:
        return self.records[-1][1] if self.records else 0

    def count_at(self, t: float) -> float:
        """The bolt's count at time ``t``, interpolated between reports."""
        recs = self.records
        if not recs:
            return 0.0
        if t <= recs[0][0]:
            return float(recs[0][1])
        for (ta, ca, _), (tb, cb, _) in itertools.pairwise(recs):
            if ta <= t <= tb:
                if tb == ta:
                    return float(cb)
                return ca + (cb - ca) * (t - ta) / (tb - ta)
        return float(recs[-1][1])

    def samples_between(self, t0: float, t1: float, period: float) -> list[float]:
        """Latency samples (s) of reports covering only (t0, t1]."""
        out: list[float] = []
        for t, _, samples in self.records:
            if t - period >= t0 and t <= t1:
                out.extend(samples)
        return out


def engine_defaults() -> dict[str, Any]:
    import yaml

    with open(REPO / "config" / "defaults.yaml") as f:
        return dict(yaml.safe_load(f))
