"""The CLI harness of the integration and ZooKeeper suites: real processes
started through ``python -m heronpy_lite``, as a user would, and readers of
what the test topologies record.

`Cli.submitted` submits a topology and always kills it afterwards (a failed
kill fails the test: it would leave processes behind for every later one).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TOPOLOGIES = Path(__file__).parent / "integration" / "topologies"
EXAMPLES = Path(__file__).parents[1] / "topologies"


class Cli:
    """``heronpy-lite`` as a user runs it, with its own ``HERONPY_LITE_HOME``.

    `run` takes the whole command line; `verb` adds the cluster (and its
    options) after the verb, as every other method does."""

    cluster = "local"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "HERONPY_LITE_HOME": str(home)}

    @property
    def cluster_args(self) -> list[str]:
        return []

    def verb(
        self, verb: str, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        argv = [verb, self.cluster, *args, *self.cluster_args]
        return self._exec(argv, check, timeout)

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self._exec(list(args), check, timeout)

    def _exec(
        self, args: list[str], check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "heronpy_lite", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"heronpy-lite {' '.join(args)} exited {proc.returncode}:\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def status(self, name: str) -> dict[str, Any]:
        return json.loads(self.verb("status", name, "--format", "json").stdout)

    def pids(self, name: str) -> list[int]:
        """Every pid of the topology: scheduler, executors, tmaster, stmgrs, instances."""
        info = self.status(name)
        pids = [info["scheduler_pid"]]
        for c in info["containers"]:
            pids.append(c["executor_pid"])
            if c["container"] == 0:
                pids.append((c["tmaster"] or {}).get("pid"))
            else:
                pids.append((c["stmgr"] or {}).get("pid"))
                pids.extend(i["pid"] for i in c["instances"])
        return [p for p in pids if p]

    @contextlib.contextmanager
    def submitted(
        self,
        file: Path,
        attr: str,
        *extra: str,
        name: str | None = None,
        output: Path | None = None,
    ) -> Iterator[str]:
        name = name or attr
        props = ["--config-property", f"test.output.dir={output}"] if output else []
        self.verb("submit", str(file), attr, "--name", name, *props, *extra)
        try:
            yield name
        finally:
            # a failed kill would leave processes behind for every later test: fail
            # loudly, unless the test killed the topology itself
            proc = self.verb("kill", name, check=False)
            if proc.returncode != 0 and "no topology named" not in proc.stderr:
                raise AssertionError(f"kill of {name} failed: {proc.stderr}")

    def secret(self, name: str) -> bytes:
        """The secret submit kept for ``name`` (what a user's CLI has)."""
        (path,) = self.home.glob(f"secrets/*/{name}")
        return bytes.fromhex(path.read_text().strip())

    def log_dir(self, name: str) -> Path:
        return self.home / "topologies" / name / "log"


def read_sinks(folder: Path) -> dict[str, dict[int, list[Any]]]:
    """component -> task -> list of recorded lines."""
    result: dict[str, dict[int, list[Any]]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        component, _, task = path.stem.rpartition("-")
        with open(path) as f:
            result.setdefault(component, {})[int(task)] = [
                json.loads(line) for line in f if line.endswith("\n")
            ]
    return result


def count_lines(folder: Path, prefix: str = "") -> int:
    total = 0
    for path in folder.glob(f"{prefix}*.jsonl"):
        with open(path, "rb") as f:
            total += sum(1 for _ in f)
    return total


def closed_by_peer(sock: socket.socket) -> bool:
    """Read whatever comes (a handshake's hello) until the other end closes."""
    sock.settimeout(5)
    while True:
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
