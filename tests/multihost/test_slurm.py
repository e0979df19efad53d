"""The Slurm scheduler on three simulated hosts (network namespaces), with a real
slurmctld, one slurmd per host, munge, and ZooKeeper on the bridge address.

A topology spread over the hosts: its stream managers publish their hosts'
addresses, tuples cross hosts, and at least once every tree is acked and
every tuple reaches the sink; every port refuses strangers; ``status``,
``restart`` and ``kill`` from the CLI on the bridge host; ``kill -9`` of a
whole host: Slurm requeues its container on another host and nothing is lost.
"""

from __future__ import annotations

import json
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cli_harness import TOPOLOGIES, closed_by_peer, count_lines, read_sinks
from simulated_hosts import Hosts, SlurmCluster
from support import pid_alive, wait_for
from zk_harness import ZkCli, ZooKeeperServer

from heronpy_lite.errors import AuthenticationFailed
from heronpy_lite.security import authenticate_socket
from heronpy_lite.wire import messages as m

RELIABLE = TOPOLOGIES / "reliable.py"
AT_LEAST = ["--config-property", "topology.reliability.mode=ATLEAST_ONCE"]


def props(**values: Any) -> list[str]:
    out = []
    for key, value in values.items():
        out += ["--config-property", f"{key.replace('_', '.')}={value}"]
    return out


def acked(folder: Path) -> Counter[int]:
    """Every seq the spout was told acked (reliable.py's events), with repeats."""
    seqs: Counter[int] = Counter()
    for path in folder.glob("spout-*.events"):
        with open(path) as f:
            for line in f:
                if line.endswith("\n"):
                    event = json.loads(line)
                    if event[0] == "ack":
                        seqs[event[1]] += 1
    return seqs


def sink_seqs(folder: Path, component: str) -> Counter[int]:
    return Counter(r[0] for rs in read_sinks(folder).get(component, {}).values() for r in rs)


class SlurmCli(ZkCli):
    cluster = "slurm"

    def __init__(self, home: Path, server: ZooKeeperServer, root: str, slurm: SlurmCluster):
        super().__init__(home, server, root)
        self.env["SLURM_CONF"] = str(slurm.conf)


@pytest.fixture
def cli(
    request: pytest.FixtureRequest,
    bridge_zookeeper: ZooKeeperServer,
    slurm: SlurmCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> SlurmCli:
    root = "/heronpy_lite_slurm/" + request.node.name.replace("[", "_").replace("]", "")
    return SlurmCli(tmp_path_factory.mktemp("home"), bridge_zookeeper, root, slurm)


def jobs(slurm: SlurmCluster, name: str) -> dict[int, tuple[str, str]]:
    """container -> (state, node) of every job of ``name`` Slurm still knows."""
    out = slurm.run("squeue", "--noheader", "--format=%j %T %N")
    found = {}
    for line in out.splitlines():
        job, state, *node = line.split()
        if job.startswith(f"heronpy_lite-{name}-"):
            found[int(job.rsplit("-", 1)[1])] = (state, node[0] if node else "")
    return found


def jobs_of(slurm: SlurmCluster, name: str) -> dict[int, str]:
    """container -> job id of every job of ``name`` Slurm lists (each once)."""
    out = slurm.run("squeue", "--noheader", "--format=%j %i")
    found: dict[int, str] = {}
    for line in out.splitlines():
        job, job_id = line.split()
        if job.startswith(f"heronpy_lite-{name}-"):
            container = int(job.rsplit("-", 1)[1])
            assert container not in found, f"two jobs of container {container}: {out}"
            found[container] = job_id
    return found


def holds(container: dict[str, Any], component: str) -> bool:
    return any(i["component"] == component for i in container["instances"])


def stmgr_pids(info: dict[str, Any]) -> list[int]:
    return [c["stmgr"]["pid"] for c in info["containers"][1:]]


def ports(cli: SlurmCli, name: str, info: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Every port the topology listens on, at its host's address: tmaster, stream
    managers, metrics managers' snapshots (their ports are in the shared folder)."""
    tmaster = info["containers"][0]["tmaster"]
    found = {"tmaster": (tmaster["host"], tmaster["port"])}
    for c in info["containers"]:
        host = c["stmgr"]["host"] if c["container"] else tmaster["host"]
        if c["container"]:
            found[f"stmgr {c['container']}"] = (host, c["stmgr"]["port"])
        port_file = cli.home / "topologies" / name / f"metricsmgr-{c['container']}.port"
        found[f"metrics {c['container']}"] = (host, int(port_file.read_text()))
    return found


def stmgr_hosts(info: dict[str, Any]) -> dict[int, str]:
    return {c["container"]: (c["stmgr"] or {}).get("host") for c in info["containers"][1:]}


def everyone_running(cli: SlurmCli, name: str) -> Any:
    info = cli.status(name)
    return (
        all(
            c["stmgr"] and all(i["state"] == "running" for i in c["instances"])
            for c in info["containers"][1:]
        )
        and info
    )


def test_a_topology_over_three_hosts_exchanges_tuples_and_is_controlled_from_the_cli(
    cli: SlurmCli, hosts: Hosts, slurm: SlurmCluster, tmp_path: Path
) -> None:
    n = 3000
    extra = props(test_tuples=n, test_rate=1000, topology_stmgrs=2)
    with cli.submitted(
        RELIABLE, "Chain", *AT_LEAST, *extra, name="Spread", output=tmp_path
    ) as name:
        info = wait_for(lambda: everyone_running(cli, name), 60, "every instance running")
        placed = jobs(slurm, name)
        assert sorted(placed) == [0, 1, 2] and {s for s, _ in placed.values()} == {"RUNNING"}
        assert len({node for _, node in placed.values()}) == 3  # one container per host
        addresses = stmgr_hosts(info)
        for container, (_, node) in placed.items():
            if container:
                assert addresses[container] == hosts.addresses[node]
        assert info["containers"][0]["tmaster"]["host"] == hosts.addresses[placed[0][1]]
        # the spout (container 1) and the sink (container 2) are on different hosts:
        # every tuple at the sink crossed from one host to another, through the relays
        assert [holds(c, "spout") for c in info["containers"][1:]] == [True, False]
        assert [holds(c, "sink") for c in info["containers"][1:]] == [False, True]
        # the hosts import the topology from its copy in the shared working directory
        record = cli.tree()[f"topologies/{name}"]["data"]
        package = cli.home / "topologies" / name / "package"
        assert record["file"] == str(package / RELIABLE.name)
        assert record["search_dir"] == str(package)
        assert (package / "harness.py").is_file()  # the package root, not the file alone
        # Prometheus' targets name every host's metrics manager
        targets = json.loads(
            (cli.home / "topologies" / name / "prometheus_targets.json").read_text()
        )
        assert {t["targets"][0].split(":")[0] for t in targets} == set(hosts.addresses.values())
        wait_for(lambda: len(acked(tmp_path)) == n, 90, f"all {n} trees acked")
        assert acked(tmp_path) == Counter(range(n))
        assert sink_seqs(tmp_path, "sink") == Counter(range(n))  # across hosts, exactly

        # every port, on every host, refuses strangers: one log line each, nothing restarted
        listening = ports(cli, name, info)
        assert len(listening) == 6  # tmaster, 2 stream managers, 3 metrics managers
        assert {host for host, _ in listening.values()} == set(hosts.addresses.values())
        for what, address in listening.items():
            with socket.create_connection(address, timeout=5) as sock:
                sock.sendall(m.encode(m.ControlRequest("deactivate")))
                sock.sendall(m.encode(m.MetricsSnapshot("task-1", [])))
                assert closed_by_peer(sock), what
            with socket.create_connection(address, timeout=5) as sock:
                sock.settimeout(5)
                with pytest.raises((AuthenticationFailed, ConnectionError)):
                    authenticate_socket(sock, b"w" * 32)
                assert closed_by_peer(sock), what
        assert cli.status(name)["state"] == "RUNNING"  # the deactivate was not obeyed

        def refusals() -> int:
            logs = [p.read_text() for p in cli.log_dir(name).glob("*.log")]
            return sum(text.count("authentication failed: wrong secret") for text in logs)

        wait_for(lambda: refusals() >= len(listening), 10, "every refusal logged")
        assert refusals() == len(listening)
        assert stmgr_pids(cli.status(name)) == stmgr_pids(info)

        # restart one container: Slurm runs its job again, it registers again
        old = info["containers"][1]["stmgr"]["pid"]
        assert "Restarting container(s) 1" in cli.run("restart", name, "1").stdout

        def back() -> Any:
            now = everyone_running(cli, name)
            return now and now["containers"][1]["stmgr"]["pid"] != old

        wait_for(back, 60, "container 1 restarted")

        # a job that ends while its host lives (an admin's scancel, a time limit) is
        # submitted again by the topology's executors, and its container registers again
        ended = jobs_of(slurm, name)[2]
        slurm.run("scancel", ended)
        restarted = cli.status(name)["containers"][2]["stmgr"]["pid"]

        def resubmitted() -> Any:
            now = everyone_running(cli, name)
            job = jobs_of(slurm, name).get(2)
            return (
                now and job and job != ended and now["containers"][2]["stmgr"]["pid"] != restarted
            )

        wait_for(resubmitted, 60, "container 2 submitted again")
        assert sorted(jobs_of(slurm, name)) == [0, 1, 2]  # one job each, no second one

        # update: the new plan runs on the hosts, and the relay with it
        said = cli.run("update", name, "--component-parallelism", "relay:3", timeout=180).stdout
        assert "relay: 2 -> 3" in said
        now = everyone_running(cli, name)
        relays = [
            i for c in now["containers"][1:] for i in c["instances"] if i["component"] == "relay"
        ]
        assert len(relays) == 3 and {i["state"] for i in relays} == {"running"}
        assert set(stmgr_hosts(now).values()) <= set(hosts.addresses.values())
        assert "deactivated" in cli.run("deactivate", name).stdout
        assert cli.status(name)["state"] == "PAUSED"
    # kill (by cli.submitted): no job left, nothing but slurmd in any host, no node left
    assert jobs(slurm, name) == {}

    def left() -> list[str]:
        return [
            _cmdline(p)
            for host in hosts.names
            for p in hosts.pids(host)
            if "heronpy_lite" in _cmdline(p)
        ]

    # the last ones exit as their executors stop them, or find the topology gone
    wait_for(lambda: not left(), 20, "no process of the topology on any host")
    assert cli.nodes_of(name) == {}


def test_kill_9_of_a_whole_host_loses_nothing_at_least_once(
    cli: SlurmCli, hosts: Hosts, slurm: SlurmCluster, tmp_path: Path
) -> None:
    n = 6000
    extra = props(
        test_tuples=n,
        test_rate=400,
        topology_stmgrs=2,
        topology_message_timeout_secs=5,
        topology_max_spout_pending=5000,
    )
    with cli.submitted(
        RELIABLE, "Chain", *AT_LEAST, *extra, name="HostLoss", output=tmp_path
    ) as name:
        info = wait_for(lambda: everyone_running(cli, name), 60, "every instance running")
        wait_for(lambda: count_lines(tmp_path, "sink-") >= 500, 30, "mid-stream")
        sink_container = next(
            c["container"]
            for c in info["containers"][1:]
            if any(i["component"] == "sink" for i in c["instances"])
        )
        victim = jobs(slurm, name)[sink_container][1]
        try:
            killed = hosts.kill_host(victim)  # slurmd, the job, the executor, everything there
            assert killed
            wait_for(
                lambda: not any(pid_alive(p) for p in killed), 10, f"everything on {victim} dead"
            )

            def moved() -> Any:
                placed = jobs(slurm, name).get(sink_container)
                now = everyone_running(cli, name)
                return (
                    placed
                    and placed[0] == "RUNNING"
                    and placed[1] != victim
                    and now
                    and stmgr_hosts(now)[sink_container] == hosts.addresses[placed[1]]
                )

            wait_for(moved, 90, "the container requeued on another host")
            wait_for(lambda: len(acked(tmp_path)) == n, 120, f"all {n} trees acked")
            assert set(sink_seqs(tmp_path, "sink")) == set(range(n))  # zero lost
            assert acked(tmp_path) == Counter(range(n))
        finally:
            # the host comes back for whatever runs next, whatever happened here
            slurm.start_slurmd(victim)
    wait_for(lambda: slurm.node_states().get(victim) == "idle", 60, f"{victim} back")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_the_slurm_cluster_refuses_localfs_in_one_line(cli: SlurmCli) -> None:
    proc = cli.run(
        "submit",
        str(RELIABLE),
        "Chain",
        "--config-property",
        "heron.statemgr.class=localfs",
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: the slurm scheduler runs containers on several hosts, and the localfs state "
        "manager is on this machine only: use heron.statemgr.class zookeeper"
    ]
    assert "Chain" not in cli.run("list").stdout


def test_the_slurm_cluster_refuses_to_bind_beyond_loopback_without_authentication(
    cli: SlurmCli,
) -> None:
    proc = cli.run(
        "submit",
        str(RELIABLE),
        "Chain",
        "--name",
        "Open",
        "--config-property",
        "heron.network.authentication=false",
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: refusing to listen on 0.0.0.0 with heron.network.authentication false: "
        "anyone who can reach it could inject tuples; turn authentication on or bind 127.0.0.1"
    ]
    assert "Open" not in cli.run("list").stdout
