"""Fixtures of the multi-host suite: simulated hosts (network namespaces on a
bridge, `simulated_hosts`), ZooKeeper on the bridge address, and the cluster
engines on them, each started once per session and shared by the tests.
Without root, iproute2 or an engine the tests skip, except under
``CI=true``, where that is a failure (scripts/test.sh installs the engines).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from simulated_hosts import Hosts, SlurmCluster, namespaces_available
from zk_harness import ZooKeeperServer, zookeeper_available


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.multihost)


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required under CI=true: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def hosts() -> Iterator[Hosts]:
    why = namespaces_available()
    if why:
        _unavailable(why)
    simulated = Hosts(["h1", "h2", "h3"])
    simulated.start()
    try:
        yield simulated
    finally:
        simulated.stop()


@pytest.fixture(scope="session")
def bridge_zookeeper(
    hosts: Hosts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ZooKeeperServer]:
    missing = zookeeper_available()
    if missing:
        _unavailable(f"ZooKeeper is not installed: {missing}")
    server = ZooKeeperServer(tmp_path_factory.mktemp("zookeeper-bridge"), host=hosts.bridge_address)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def slurm(hosts: Hosts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    for daemon in ("munged", "slurmctld", "slurmd", "sbatch"):
        if shutil.which(daemon) is None:
            _unavailable(f"{daemon} not found (apt-get install slurmctld slurmd munge)")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"), hosts)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
