"""The Ray scheduler on simulated hosts, with a real Ray cluster: the head on the
bridge host (it places nothing), one worker node in each of two network
namespaces, ZooKeeper on the bridge address. One cluster for the module.

A topology spread over both hosts: its stream managers publish their hosts'
addresses, tuples cross hosts, at least once every tree is acked and every
tuple reaches the sink exactly once; every port refuses a client without
the secret and one with a wrong secret; ``status``, ``restart`` and ``kill``
from the CLI on the bridge host leave nothing behind; ``kill -9`` of a
whole host: Ray moves its containers to the other host and nothing is lost.

These hosts are the module's own (their own bridge and subnet), so that
killing one never touches another suite's daemons.
"""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_harness import TOPOLOGIES, closed_by_peer, count_lines, read_sinks
from simulated_hosts import Hosts, namespaces_available
from simulated_ray import RayCluster, ray_available
from support import pid_alive, wait_for
from zk_harness import ZkCli, ZooKeeperServer, zookeeper_available

from heronpy_lite.errors import AuthenticationFailed
from heronpy_lite.security import authenticate_socket
from heronpy_lite.statemgr import open_state_manager
from heronpy_lite.wire import messages as m

RELIABLE = TOPOLOGIES / "reliable.py"
AT_LEAST = ["--config-property", "topology.reliability.mode=ATLEAST_ONCE"]
WORKERS = ["r1", "r2"]


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required under CI=true: {why}")
    pytest.skip(why)


def props(**values: Any) -> list[str]:
    out = []
    for key, value in values.items():
        out += ["--config-property", f"{key.replace('_', '.')}={value}"]
    return out


class Cluster:
    def __init__(self, hosts: Hosts, zookeeper: ZooKeeperServer, ray: RayCluster) -> None:
        self.hosts = hosts
        self.zookeeper = zookeeper
        self.ray = ray


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    for why in (namespaces_available(), ray_available(), zookeeper_available()):
        if why:
            _unavailable(why)
    hosts = Hosts(WORKERS, subnet="10.118.19")
    hosts.start()
    try:
        zookeeper = ZooKeeperServer(
            tmp_path_factory.mktemp("zookeeper-ray"), host=hosts.bridge_address
        )
        zookeeper.start()
        try:
            ray = RayCluster(hosts, WORKERS)
            try:
                ray.start()
                yield Cluster(hosts, zookeeper, ray)
            finally:
                ray.stop()
        finally:
            zookeeper.stop()
    finally:
        hosts.stop()


class RayCli(ZkCli):
    cluster = "ray"

    def __init__(self, home: Path, server: ZooKeeperServer, root: str, ray: RayCluster):
        super().__init__(home, server, root)
        self.ray = ray
        self.env["RAY_USAGE_STATS_ENABLED"] = "0"

    @property
    def cluster_args(self) -> list[str]:
        return [
            *super().cluster_args,
            "--config-property",
            f"heron.scheduler.ray.address={self.ray.address}",
        ]


@pytest.fixture
def cli(
    request: pytest.FixtureRequest, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> RayCli:
    root = "/heronpy_lite_ray/" + request.node.name.replace("[", "_").replace("]", "")
    return RayCli(tmp_path_factory.mktemp("home"), cluster.zookeeper, root, cluster.ray)


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


def stmgr_hosts(info: dict[str, Any]) -> dict[int, str]:
    return {c["container"]: (c["stmgr"] or {}).get("host") for c in info["containers"][1:]}


def everyone_running(cli: RayCli, name: str) -> Any:
    info = cli.status(name)
    return (
        all(
            c["stmgr"] and all(i["state"] == "running" for i in c["instances"])
            for c in info["containers"][1:]
        )
        and info
    )


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def ours(hosts: Hosts) -> list[str]:
    """Every process of a topology (an actor, an executor and its children) left in
    any host."""
    return [
        c
        for host in hosts.names
        for c in map(_cmdline, hosts.pids(host))
        if "heronpy_lite" in c or "ContainerActor" in c
    ]


def test_a_topology_over_two_hosts_exchanges_tuples_and_is_controlled_from_the_cli(
    cli: RayCli, cluster: Cluster, tmp_path: Path
) -> None:
    hosts = cluster.hosts
    n = 2000
    # four containers on two nodes: the spread puts two on each, so both hosts run
    # stream managers whichever containers share one
    extra = props(test_tuples=n, test_rate=1000, topology_stmgrs=3)
    with cli.submitted(
        RELIABLE, "Chain", *AT_LEAST, *extra, name="Spread", output=tmp_path
    ) as name:
        info = wait_for(lambda: everyone_running(cli, name), 60, "every instance running")
        # the placement group spreads the containers over both hosts, and each stream
        # manager publishes its host's address
        addresses = stmgr_hosts(info)
        assert set(addresses.values()) == set(hosts.addresses.values())
        assert info["containers"][0]["tmaster"]["host"] in hosts.addresses.values()
        wait_for(lambda: len(acked(tmp_path)) == n, 90, f"all {n} trees acked")
        assert acked(tmp_path) == Counter(range(n))
        assert sink_seqs(tmp_path, "sink") == Counter(range(n))  # across hosts, exactly
        # Prometheus' targets (written on container 0's host, in the working root) name
        # every host's metrics manager
        targets = json.loads(
            (cli.home / "topologies" / name / "prometheus_targets.json").read_text()
        )
        assert {t["targets"][0].split(":")[0] for t in targets} == set(hosts.addresses.values())

        # every port, on every host, refuses strangers
        ports = [(c["stmgr"]["host"], c["stmgr"]["port"]) for c in info["containers"][1:]]
        tmaster = info["containers"][0]["tmaster"]
        ports.append((tmaster["host"], tmaster["port"]))
        for address in ports:
            with socket.create_connection(address, timeout=5) as sock:
                sock.sendall(m.encode(m.ControlRequest("deactivate")))
                assert closed_by_peer(sock)
            with socket.create_connection(address, timeout=5) as sock:
                sock.settimeout(5)
                with pytest.raises((AuthenticationFailed, ConnectionError)):
                    authenticate_socket(sock, b"w" * 32)
        assert cli.status(name)["state"] == "RUNNING"

        # restart one container: Ray restarts its actor, its new stream manager registers
        old = info["containers"][1]["stmgr"]["pid"]
        assert "Restarting container(s) 1" in cli.run("restart", name, "1").stdout

        def back() -> Any:
            now = everyone_running(cli, name)
            return now and now["containers"][1]["stmgr"]["pid"] != old

        wait_for(back, 60, "container 1 restarted")
        # the old one died with its actor (through its executor), not orphaned
        wait_for(lambda: not pid_alive(old), 20, "the old stream manager gone")

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
    # kill (by cli.submitted): no actor, executor or child left on any host, no node left
    wait_for(lambda: not ours(hosts), 20, "no process of the topology on any host")
    assert cli.nodes_of(name) == {}


def test_kill_9_of_a_whole_host_loses_nothing_at_least_once(
    cli: RayCli, cluster: Cluster, tmp_path: Path
) -> None:
    hosts = cluster.hosts
    n = 4000
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
        wait_for(lambda: count_lines(tmp_path, "sink-") >= 400, 30, "mid-stream")
        sink_container = next(
            c["container"]
            for c in info["containers"][1:]
            if any(i["component"] == "sink" for i in c["instances"])
        )
        spout_container = next(
            c["container"]
            for c in info["containers"][1:]
            if any(i["component"] == "spout" for i in c["instances"])
        )
        address = stmgr_hosts(info)[sink_container]
        victim = next(h for h, a in hosts.addresses.items() if a == address)
        survivor = next(h for h in hosts.names if h != victim)
        killed = hosts.kill_host(victim)  # its Ray node, the actors, executors, everything
        assert killed
        wait_for(lambda: not any(pid_alive(p) for p in killed), 10, f"everything on {victim} dead")

        def moved() -> Any:
            now = everyone_running(cli, name)
            return now and set(stmgr_hosts(now).values()) == {hosts.addresses[survivor]}

        # Ray finds the node dead, moves its bundles to the other one, restarts the actors
        wait_for(moved, 90, f"every container on {survivor}")
        wait_for(lambda: len(acked(tmp_path)) == n, 120, f"all {n} trees acked")
        assert set(sink_seqs(tmp_path, "sink")) == set(range(n))  # zero lost
        if stmgr_hosts(info)[spout_container] == address:
            # placement is best effort: the spout died with the host, and its new
            # process (no state) emits every tuple again, so each is acked twice at most
            assert set(acked(tmp_path)) == set(range(n))
            assert max(acked(tmp_path).values()) <= 2
        else:
            assert acked(tmp_path) == Counter(range(n))

        # its state gone (no kill): every container ends itself, and Ray restarts none
        sm = open_state_manager("zookeeper", cli.root, cluster.zookeeper.connection)
        try:
            sm.delete_topology(name)
        finally:
            sm.close()
        wait_for(lambda: not ours(hosts), 30, "every container ended")
    # the host comes back for whatever runs next
    cluster.ray.start_worker(victim)


def test_ray_refuses_localfs_and_an_unauthenticated_bind_in_one_line(cli: RayCli) -> None:
    for prop, line in (
        (
            "heron.statemgr.class=localfs",
            "error: the ray scheduler runs containers on several hosts, and the localfs state "
            "manager is on this machine only: use heron.statemgr.class zookeeper",
        ),
        (
            "heron.network.authentication=false",
            "error: refusing to listen on 0.0.0.0 with heron.network.authentication false: "
            "anyone who can reach it could inject tuples; turn authentication on or bind "
            "127.0.0.1",
        ),
    ):
        proc = cli.run("submit", str(RELIABLE), "Chain", "--config-property", prop, check=False)
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == [line]
