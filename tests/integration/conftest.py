"""The integration harness: real processes started through the CLI.

Each test module gets its own working root (``HERONPY_LITE_HOME``), so runs
never collide. `Cli.run` runs ``python -m heronpy_lite`` as a user would;
`Cli.submitted` submits a topology and always kills it afterwards; `wait_for`
polls a condition with a deadline (no sleeps as synchronisation).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TOPOLOGIES = Path(__file__).parent / "topologies"
EXAMPLES = Path(__file__).parents[2] / "topologies"

pytestmark = pytest.mark.integration


class Cli:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "HERONPY_LITE_HOME": str(home)}

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
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
        return json.loads(self.run("status", "local", name, "--format", "json").stdout)

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
        args = ["submit", "local", str(file), attr, "--name", name, *props, *extra]
        self.run(*args)
        try:
            yield name
        finally:
            # a failed kill would leave processes behind for every later test: fail
            # loudly, unless the test killed the topology itself
            proc = self.run("kill", "local", name, check=False)
            if proc.returncode != 0 and "no topology named" not in proc.stderr:
                raise AssertionError(f"kill of {name} failed: {proc.stderr}")

    def log_dir(self, name: str) -> Path:
        return self.home / "topologies" / name / "log"


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(tmp_path_factory.mktemp("home"))


def read_sinks(folder: Path) -> dict[str, dict[int, list[Any]]]:
    """component -> task -> list of recorded lines."""
    result: dict[str, dict[int, list[Any]]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        component, _, task = path.stem.rpartition("-")
        with open(path) as f:
            result.setdefault(component, {})[int(task)] = [json.loads(line) for line in f]
    return result


def count_lines(folder: Path, prefix: str = "") -> int:
    total = 0
    for path in folder.glob(f"{prefix}*.jsonl"):
        with open(path, "rb") as f:
            total += sum(1 for _ in f)
    return total
