"""Word count across two simulated hosts under Slurm against one host, in one run.

Needs root (network namespaces), Debian's slurmctld, slurmd and munge, and
ZooKeeper (as tests/multihost does; this script reuses its simulated hosts).
It starts a bridge with two hosts (h1, h2), ZooKeeper on the bridge address,
munged, slurmctld and one slurmd per host, and then, for each mode:

- **one host**: word count on two containers through the ``localzk`` cluster
  (the local scheduler; stream managers talk over loopback);
- **two hosts**: the same through the ``slurm`` cluster: containers 1 (the
  spout) and 2 (the counting bolt) on different hosts, so every tuple crosses
  the bridge between their stream managers.

For each it prints the submit-to-running time (``submit`` returns once every
instance runs), the median rate of 5 windows of 3 s after a 4 s warm-up, and
for Slurm the memory it adds: its daemons (slurmctld, munged, one slurmd per
host) and, per container, its job's slurmstepd and job script. The ratio is
two hosts / one host, measured in the same run, one after the other.

    sudo .venv/bin/python benchmarks/multihost.py [--modes ATMOST_ONCE,ATLEAST_ONCE]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from harness import TOPOLOGY_FILE, Reports, reap_home  # noqa: E402
from simulated_hosts import Hosts, SlurmCluster, namespaces_available  # noqa: E402
from zk_harness import ZooKeeperServer, zookeeper_available  # noqa: E402

WARMUP, WINDOWS, WINDOW = 4.0, 5, 3.0


class ClusterCli:
    """``python -m heronpy_lite VERB CLUSTER ...`` with this run's own working root."""

    def __init__(self, home: Path, cluster: str, props: dict[str, str], env: dict[str, str]):
        self.home, self.cluster = home, cluster
        self.props = [x for k, v in props.items() for x in ("--config-property", f"{k}={v}")]
        self.env = {**env, "HERONPY_LITE_HOME": str(home)}

    def run(self, verb: str, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "heronpy_lite", verb, self.cluster, *args, *self.props],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"{verb} {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    @contextlib.contextmanager
    def submitted(self, name: str, props: dict[str, Any]) -> Iterator[float]:
        """Submit word count as ``name``; yields the submit-to-running time (s)."""
        extra = [x for k, v in props.items() for x in ("--config-property", f"{k}={v}")]
        try:
            t0 = time.monotonic()
            self.run("submit", str(TOPOLOGY_FILE), "WordCount", "--name", name, *extra)
            yield time.monotonic() - t0
        finally:
            self.run("kill", name, check=False)
            reap_home(self.home)

    def status(self, name: str) -> dict[str, Any]:
        return dict(json.loads(self.run("status", name, "--format", "json")))


def measure(cli: ClusterCli, name: str, mode: str, slurm: SlurmCluster | None) -> dict[str, Any]:
    out = cli.home / "out" / name
    out.mkdir(parents=True)
    props = {"topology.reliability.mode": mode, "topology.stmgrs": 2, "bench.output.dir": out}
    if mode == "ATLEAST_ONCE":
        props["topology.max.spout.pending"] = 20000
    reports = Reports(out)
    with cli.submitted(name, props) as running_after:
        info = cli.status(name)
        placed = {c["container"]: c["stmgr"]["host"] for c in info["containers"][1:]}
        if slurm is not None and placed[1] == placed[2]:
            raise RuntimeError(f"Slurm placed both data containers on one host: {placed}")
        if not reports.wait(lambda r: r.last_count > 0, 30):
            raise RuntimeError(f"{name}: no tuple reached the counting bolt within 30 s")
        time.sleep(WARMUP)
        edges = [time.time()]
        for _ in range(WINDOWS):
            time.sleep(WINDOW)
            edges.append(time.time())
        reports.wait(lambda r: r.last_time >= edges[-1], 5)
        rates = [
            (reports.count_at(b) - reports.count_at(a)) / (b - a)
            for a, b in itertools.pairwise(edges)
        ]
        memory = slurm_memory(slurm) if slurm is not None else None
    return {
        "name": name,
        "mode": mode,
        "hosts": placed,
        "submit_to_running_s": round(running_after, 2),
        "tuples_per_s": round(statistics.median(rates)),
        "windows_tuples_per_s": [round(r) for r in rates],
        "slurm_memory_mib": memory,
    }


def _rss_mib(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return round(total / 2**20, 1)


def slurm_memory(slurm: SlurmCluster) -> dict[str, Any]:
    """RSS of what Slurm runs for us: its daemons (the ones this run started), and per
    container its job's slurmstepd and the job script (a shell) that runs the executor."""
    daemons = [psutil.Process(p.pid) for p in slurm.procs.values() if p.poll() is None]
    ours = {pid for h in slurm.hosts.names for pid in slurm.hosts.pids(h)}
    per_job: list[psutil.Process] = []
    for pid in ours:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            if p.name() == "slurmstepd" or any("slurm_script" in a for a in p.cmdline()):
                per_job.append(p)
    jobs = sum(1 for p in per_job if p.name() == "slurmstepd")
    return {
        "daemons": _rss_mib(daemons),
        "daemon_processes": len(daemons),
        "jobs": jobs,
        "per_container": round(_rss_mib(per_job) / max(jobs, 1), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="ATMOST_ONCE,ATLEAST_ONCE")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    args = parser.parse_args(argv)
    why = namespaces_available() or zookeeper_available()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="heronpy-multihost-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)
        hosts = Hosts(["h1", "h2"])
        hosts.start()
        zk: ZooKeeperServer | None = None
        slurm: SlurmCluster | None = None
        results = []
        try:
            zk = ZooKeeperServer(folder / "zookeeper", host=hosts.bridge_address)
            zk.start()
            (folder / "slurm").mkdir()
            slurm = SlurmCluster(folder / "slurm", hosts)
            slurm.start()
            state = {"heron.statemgr.connection.string": zk.connection}
            one = ClusterCli(
                folder / "home-one",
                "localzk",
                {**state, "heron.statemgr.root.path": "/bench_one"},
                dict(os.environ),
            )
            two = ClusterCli(
                folder / "home-two",
                "slurm",
                {**state, "heron.statemgr.root.path": "/bench_two"},
                slurm.env,
            )
            for mode in args.modes.split(","):
                slug = "amo" if mode == "ATMOST_ONCE" else "alo"
                single = measure(one, f"one-host-{slug}", mode, None)
                spread = measure(two, f"two-hosts-{slug}", mode, slurm)
                spread["ratio_to_one_host"] = round(
                    spread["tuples_per_s"] / single["tuples_per_s"], 3
                )
                results += [single, spread]
                if not args.json:
                    for r in (single, spread):
                        print(
                            f"{r['name']:18} {r['tuples_per_s']:>9,} tuples/s  "
                            f"submit->running {r['submit_to_running_s']:5.2f} s  "
                            f"windows {r['windows_tuples_per_s']}"
                        )
                    print(f"{'':18} ratio two hosts / one host: {spread['ratio_to_one_host']}")
                    print(f"{'':18} Slurm's memory (RSS, MiB): {spread['slurm_memory_mib']}")
        finally:
            if slurm is not None:
                slurm.stop()
            if zk is not None:
                zk.stop()
            hosts.stop()
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
