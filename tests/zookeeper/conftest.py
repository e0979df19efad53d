"""Fixtures of the ZooKeeper suite (the harness is `zk_harness`).

A session fixture starts the server and stops it at the end. Each test uses
its own root path, so nothing it leaves can confuse another. Without the
package the tests skip, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from zk_harness import ZkCli, ZooKeeperServer, root_for, zookeeper_available


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.zookeeper)


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    missing = zookeeper_available()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"ZooKeeper is required under CI=true: {missing}")
        pytest.skip(f"ZooKeeper is not installed: {missing}")
    server = ZooKeeperServer(tmp_path_factory.mktemp("zookeeper"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def zk_root(request: pytest.FixtureRequest) -> str:
    """A root path of this test's own."""
    return root_for(request)


@pytest.fixture
def zkcli(
    zookeeper: ZooKeeperServer, zk_root: str, tmp_path_factory: pytest.TempPathFactory
) -> ZkCli:
    return ZkCli(tmp_path_factory.mktemp("home"), zookeeper, zk_root)
