"""A real Ray cluster on simulated hosts (`simulated_hosts.Hosts`).

The head runs on the bridge host (``--num-cpus=0``: it places nothing, so
every container runs in a namespace), one worker node per host inside its
network namespace (``nsenter --net=...``). Each node is ``setsid ray start
--block ...``: the process we started leads its own session and process
group, holding every Ray process of that node, and is stopped by its pid
(its group) — never ``ray stop``, which would end every Ray process on the
machine. Every port the head opens on the bridge host is a free one (the
defaults would collide with anyone else's Ray), Ray's temporary folder is
our own (short: its socket paths must stay under 108 bytes), usage
statistics are off, and the GCS declares a node dead after about three
seconds of silence instead of thirty.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from simulated_hosts import Hosts
from support import free_port, wait_for

RAY = str(Path(sys.executable).with_name("ray"))

#: a node silent this long (period x threshold) is dead to the GCS
HEALTH = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "6",
}


def ray_available() -> str:
    """Why Ray cannot run here, or ''."""
    if not Path(RAY).exists():
        return f"ray is not installed next to {sys.executable} (pip install 'ray[default]')"
    return ""


class RayCluster:
    def __init__(self, hosts: Hosts, workers: list[str], cpus_per_worker: int = 4) -> None:
        self.hosts = hosts
        self.workers = workers
        self.cpus = cpus_per_worker
        self.temp = Path(tempfile.mkdtemp(prefix="hlray", dir="/tmp"))
        self.port = free_port()
        self.address = f"{hosts.bridge_address}:{self.port}"
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **HEALTH}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[Any] = []

    def _out(self, name: str) -> Path:
        return self.temp / f"{name}.out"

    def _started(self, name: str) -> bool:
        proc = self.procs[name]
        if proc.poll() is not None:
            tail = self._out(name).read_text()[-3000:]
            raise AssertionError(f"ray start of {name} exited {proc.returncode}: {tail}")
        return "Ray runtime started" in self._out(name).read_text()

    def _popen(self, name: str, argv: list[str], host: str | None) -> None:
        out = open(self._out(name), "ab")  # noqa: SIM115 (the node's, until it stops)
        self._logs.append(out)
        command = ["setsid", RAY, "start", "--block", "--disable-usage-stats", *argv]
        if host is None:
            proc = subprocess.Popen(command, stdout=out, stderr=out, env=self.env)
        else:
            proc = self.hosts.popen(host, command, stdout=out, stderr=out, env=self.env)
        self.procs[name] = proc
        # one node at a time: two starting at once on 2 loaded cores time out
        wait_for(lambda: self._started(name), 180, f"the Ray node {name}")

    def start(self) -> None:
        ports = [free_port() for _ in range(8)]
        self._popen(
            "head",
            [
                "--head",
                f"--node-ip-address={self.hosts.bridge_address}",
                f"--port={self.port}",
                "--num-cpus=0",
                "--include-dashboard=false",
                f"--dashboard-port={ports[0]}",
                f"--ray-client-server-port={ports[1]}",
                f"--dashboard-agent-listen-port={ports[2]}",
                f"--dashboard-agent-grpc-port={ports[3]}",
                f"--runtime-env-agent-port={ports[4]}",
                f"--metrics-export-port={ports[5]}",
                f"--node-manager-port={ports[6]}",
                f"--object-manager-port={ports[7]}",
                f"--temp-dir={self.temp}",
                # the workers' ports of the head (it runs none, but reserves the range)
                "--min-worker-port=0",
                "--max-worker-port=0",
            ],
            None,
        )
        for name in self.workers:
            self.start_worker(name)

    def start_worker(self, name: str) -> None:
        """Start (again) the worker node of host ``name`` (its own namespace: the
        default ports are its own)."""
        old = self.procs.get(name)
        if old is not None:
            old.wait(10)  # killed with its host: reap it
        self._popen(
            name,
            [
                f"--address={self.address}",
                f"--node-ip-address={self.hosts.addresses[name]}",
                f"--num-cpus={self.cpus}",
            ],
            name,
        )

    def stop(self) -> None:
        # workers first (a worker whose GCS is gone waits for it before exiting)
        for name in [*self.workers, "head"]:
            proc = self.procs.get(name)
            if proc is None:
                continue
            # its session: every Ray process of the node (each worker leads its own
            # process group in it) and whatever they started
            for pid in self.processes(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait()
        for out in self._logs:
            out.close()
        shutil.rmtree(self.temp, ignore_errors=True)

    def processes(self, *sessions: int) -> list[int]:
        """Every live process in ``sessions`` (default: those of all our Ray nodes)."""
        sessions = sessions or tuple(p.pid for p in self.procs.values())
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError):
                    if os.getsid(int(entry.name)) in sessions:
                        found.append(int(entry.name))
        return found
