"""What the Ray scheduler costs: submit-to-running time and the memory Ray adds.

Issue 18's figures for Ray, on one machine (no root needed): a one-node Ray
cluster on loopback (``setsid ray start --head --block``, its own ports and
temporary folder, stopped by its session at the end) and a ZooKeeper of the
tests' harness. The same topology (benchmarks/topologies/bench.py, Chain:
3 containers, 4 tasks) is submitted ``--rounds`` times through each of
``localzk`` (the local scheduler, the same ZooKeeper) and ``ray``:

- submit-to-running: the wall time of ``heronpy-lite submit``, which returns
  once every instance is running (so it includes the CLI's start, and for
  Ray its connection to the cluster and the upload of the topology's folder);
  and of ``kill``;
- memory (PSS, so shared pages are not counted twice): the Ray node's own
  processes before any topology (GCS, raylet, agents, ...); while the
  topology runs, every process of the node that is not the topology's
  (its executors and their children): the node plus one actor per container.
  The local scheduler's counterpart is its scheduler process.

    sudo python benchmarks/ray_engine.py [--rounds 3] [--json]

(root only for reading every process's PSS; without it, RSS is reported.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from harness import TOPOLOGY_FILE, Cli, reap_home

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import free_port, wait_for
from zk_harness import ZooKeeperServer

RAY = str(Path(sys.executable).with_name("ray"))
TOPOLOGY_MARKERS = ("heronpy_lite.scheduler.executor",)


def memory_mb(pid: int) -> float:
    """PSS of ``pid`` (RSS if PSS cannot be read), in MB; 0 if it is gone."""
    try:
        proc = psutil.Process(pid)
        try:
            return float(proc.memory_full_info().pss) / 1e6
        except (psutil.AccessDenied, AttributeError):
            return float(proc.memory_info().rss) / 1e6
    except psutil.NoSuchProcess:
        return 0.0


def session_pids(session: int) -> list[int]:
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(proc.pid) == session:
                found.append(proc.pid)
    return found


def topology_pids(pids: list[int]) -> set[int]:
    """The executors among ``pids`` and all their descendants."""
    found: set[int] = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if any(m in " ".join(proc.cmdline()) for m in TOPOLOGY_MARKERS):
                found.add(pid)
                found |= {c.pid for c in proc.children(recursive=True)}
    return found


@contextlib.contextmanager
def ray_head(temp: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    others = [free_port() for _ in range(8)]
    out_path = temp / "head.out"
    with open(out_path, "ab") as out:
        proc = subprocess.Popen(
            [
                "setsid",
                RAY,
                "start",
                "--head",
                "--block",
                "--disable-usage-stats",
                "--node-ip-address=127.0.0.1",
                f"--port={port}",
                "--num-cpus=4",
                "--include-dashboard=false",
                f"--dashboard-port={others[0]}",
                f"--ray-client-server-port={others[1]}",
                f"--dashboard-agent-listen-port={others[2]}",
                f"--dashboard-agent-grpc-port={others[3]}",
                f"--runtime-env-agent-port={others[4]}",
                f"--metrics-export-port={others[5]}",
                f"--node-manager-port={others[6]}",
                f"--object-manager-port={others[7]}",
                "--min-worker-port=0",
                "--max-worker-port=0",
                f"--temp-dir={temp}",
            ],
            stdout=out,
            stderr=out,
            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        )
    try:
        wait_for(lambda: "Ray runtime started" in out_path.read_text(), 180, "the Ray head")
        yield f"127.0.0.1:{port}", proc
    finally:
        for pid in session_pids(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def submit_round(cli: Cli, cluster: str, props: list[str], name: str) -> dict[str, float]:
    began = time.monotonic()
    cli.run("submit", cluster, str(TOPOLOGY_FILE), "Chain", "--name", name, *props, timeout=300)
    running = time.monotonic() - began
    return {"submit_to_running_s": running}


def kill_round(cli: Cli, cluster: str, props: list[str], name: str) -> float:
    began = time.monotonic()
    cli.run("kill", cluster, name, *props, timeout=120)
    return time.monotonic() - began


def measure(rounds: int) -> dict[str, Any]:
    temp = Path(tempfile.mkdtemp(prefix="hlray", dir="/tmp"))  # short: Ray's socket paths
    home = temp / "home"
    cli = Cli(home)
    cli.env["RAY_USAGE_STATS_ENABLED"] = "0"
    zk = ZooKeeperServer(temp / "zookeeper")
    zk.start()
    results: dict[str, Any] = {}
    try:
        with ray_head(temp) as (address, head):
            pace = temp / "pace"
            pace.write_text("1000\n")  # tuples/s: a running topology, not a saturated machine
            base = [
                "--config-property",
                f"heron.statemgr.connection.string={zk.connection}",
                "--config-property",
                "heron.network.bind.host=127.0.0.1",
                "--config-property",
                f"bench.control.file={pace}",
                "--config-property",
                "topology.stmgrs=2",
            ]
            # the node on its own, settled
            time.sleep(5)
            idle = sum(memory_mb(p) for p in session_pids(head.pid))
            results["ray_node_idle_mb"] = round(idle, 1)
            for cluster, extra in (
                ("localzk", ["--config-property", "heron.statemgr.root.path=/bench_local"]),
                (
                    "ray",
                    [
                        "--config-property",
                        "heron.statemgr.root.path=/bench_ray",
                        "--config-property",
                        f"heron.scheduler.ray.address={address}",
                    ],
                ),
            ):
                props = base + extra
                times, kills, added = [], [], []
                for r in range(rounds):
                    name = f"Bench{r}"
                    try:
                        times.append(submit_round(cli, cluster, props, name)["submit_to_running_s"])
                        if cluster == "ray":
                            pids = session_pids(head.pid)
                            engine = [p for p in pids if p not in topology_pids(pids)]
                            added.append(sum(memory_mb(p) for p in engine) - idle)
                        else:
                            status = json.loads(
                                cli.run("status", cluster, name, "--format", "json", *props)
                            )
                            added.append(memory_mb(int(status["scheduler_pid"])))
                    finally:
                        kills.append(kill_round(cli, cluster, props, name))
                        reap_home(home)
                results[cluster] = {
                    "submit_to_running_s": [round(t, 2) for t in times],
                    "submit_to_running_median_s": round(statistics.median(times), 2),
                    "kill_median_s": round(statistics.median(kills), 2),
                    "scheduler_memory_mb": round(statistics.median(added), 1),
                }
    finally:
        zk.stop()
        shutil.rmtree(temp, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = measure(args.rounds)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"Ray node on its own (idle): {results['ray_node_idle_mb']} MB")
    for cluster in ("localzk", "ray"):
        r = results[cluster]
        what = "Ray node + actors above idle" if cluster == "ray" else "local scheduler process"
        print(
            f"{cluster:8} submit-to-running median {r['submit_to_running_median_s']} s "
            f"(rounds {r['submit_to_running_s']}), kill {r['kill_median_s']} s, "
            f"{what}: {r['scheduler_memory_mb']} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
