"""The ZooKeeper state manager against a real server: Heron's node layout
under a root, roots that do not meet, ephemeral nodes and sessions, the
tmaster election primitive, and a clear error when the server is away."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient
from support import wait_for
from zk_harness import ZooKeeperServer

from heronpy_lite.errors import ConfigError, StateManagerError, TopologyNotFoundError
from heronpy_lite.statemgr import open_state_manager
from heronpy_lite.statemgr.base import (
    EXECUTION_STATE,
    KINDS,
    METRICSMGRS,
    PACKING_PLANS,
    PPLANS,
    SCHEDULERS,
    TMASTERS,
    TOPOLOGIES,
    StateManager,
)
from heronpy_lite.statemgr.zookeeper import ZooKeeperStateManager


@pytest.fixture
def open_sm(zookeeper: ZooKeeperServer, zk_root: str) -> Iterator[object]:
    opened: list[StateManager] = []

    def make(root: str = zk_root, session_timeout: float = 4.0) -> ZooKeeperStateManager:
        sm = open_state_manager(
            "zookeeper", root, zookeeper.connection, session_timeout=session_timeout, timeout=5
        )
        assert isinstance(sm, ZooKeeperStateManager)
        opened.append(sm)
        return sm

    yield make
    for sm in opened:
        sm.close()


def test_nodes_follow_herons_layout_under_the_root(open_sm, zookeeper, zk_root):
    sm = open_sm()
    assert sm.create_topology("wc", {"name": "wc"})
    for kind in (PACKING_PLANS, PPLANS, EXECUTION_STATE, SCHEDULERS):
        sm.set(kind, "wc", {"kind": kind, "nested": [1, 2.5, None, True]})
    sm.set(TMASTERS, "wc", {"host": "127.0.0.1", "port": 7000}, ephemeral=True)
    sm.set_metricsmgr("wc", 1, {"url": "http://127.0.0.1:9000/metrics"})
    tree = zookeeper.tree(zk_root)
    assert {k for k in tree if k.count("/") >= 1} == {
        "topologies/wc",
        "packingplans/wc",
        "pplans/wc",
        "executionstate/wc",
        "schedulers/wc",
        "tmasters/wc",
        "metricsmgrs/wc",
        "metricsmgrs/wc/1",
    }
    assert tree["pplans/wc"] == {
        "data": {"kind": PPLANS, "nested": [1, 2.5, None, True]},
        "ephemeral": False,
    }
    assert tree["tmasters/wc"]["ephemeral"] and tree["metricsmgrs/wc/1"]["ephemeral"]
    assert not tree["topologies/wc"]["ephemeral"]
    assert sm.get(PPLANS, "wc") == {"kind": PPLANS, "nested": [1, 2.5, None, True]}
    assert sm.get_metricsmgrs("wc") == {1: {"url": "http://127.0.0.1:9000/metrics"}}
    assert sm.get(PPLANS, "other") is None
    assert sm.list_topologies() == ["wc"]


def test_a_name_is_claimed_once_and_kill_removes_only_its_nodes(open_sm, zookeeper, zk_root):
    sm = open_sm()
    assert sm.create_topology("a", {"name": "a"})
    assert not sm.create_topology("a", {"name": "a, again"})
    assert sm.get_topology("a") == {"name": "a"}
    assert sm.create_topology("b", {"name": "b"})
    for name in ("a", "b"):
        for kind in KINDS:
            if kind not in (TOPOLOGIES, METRICSMGRS):
                sm.set(kind, name, {"n": name}, ephemeral=kind == TMASTERS)
        sm.set_metricsmgr(name, 1, {"n": name})
    sm.delete_topology("a")
    names = {k.split("/")[1] for k in zookeeper.tree(zk_root) if "/" in k}
    assert names == {"b"}
    with pytest.raises(TopologyNotFoundError):
        sm.get_topology("a")
    assert sm.list_topologies() == ["b"]


def test_roots_do_not_see_each_other(open_sm, zk_root):
    one, two = open_sm(zk_root + "/one"), open_sm(zk_root + "/two")
    assert one.create_topology("same", {"root": "one"})
    assert two.create_topology("same", {"root": "two"})
    assert one.get_topology("same") == {"root": "one"}
    two.delete_topology("same")
    assert one.list_topologies() == ["same"] and two.list_topologies() == []


def test_ephemeral_nodes_go_with_their_session(open_sm, zookeeper, zk_root):
    owner, reader = open_sm(), open_sm()
    owner.set(TMASTERS, "wc", {"pid": 1}, ephemeral=True)
    assert reader.get(TMASTERS, "wc") == {"pid": 1}
    owner.close()
    assert reader.get(TMASTERS, "wc") is None


def test_claim_elects_one_holder_and_tells_the_others_when_it_is_gone(open_sm):
    active, standby = open_sm(), open_sm()
    assert active.claim(TMASTERS, "wc", {"pid": 1})
    assert active.claim(TMASTERS, "wc", {"pid": 1, "port": 2})  # already ours: updated
    changed = threading.Event()
    assert not standby.claim(TMASTERS, "wc", {"pid": 2}, changed.set)
    assert standby.get(TMASTERS, "wc") == {"pid": 1, "port": 2}
    active.close()
    assert changed.wait(10), "the standby's watch did not fire"
    assert standby.claim(TMASTERS, "wc", {"pid": 2})
    assert standby.get(TMASTERS, "wc") == {"pid": 2}


def test_delete_if_removes_only_a_matching_node(open_sm):
    sm, other = open_sm(), open_sm()
    other.set(TMASTERS, "wc", {"pid": 7, "hostname": "h"}, ephemeral=True)
    assert not sm.delete_if(TMASTERS, "wc", lambda v: v.get("pid") == 8)
    assert sm.get(TMASTERS, "wc") is not None
    assert sm.delete_if(TMASTERS, "wc", lambda v: v.get("pid") == 7)
    assert sm.get(TMASTERS, "wc") is None
    assert not sm.delete_if(TMASTERS, "wc", lambda v: True)


def expire_session(zookeeper: ZooKeeperServer, sm: ZooKeeperStateManager) -> None:
    """ZooKeeper's way to expire a session on purpose: open it from a second
    client with the same id and password, and close it there."""
    session_id, password = sm._client.client_id
    twin = KazooClient(zookeeper.connection, client_id=(session_id, password))
    twin.start(timeout=10)
    twin.stop()
    twin.close()


def test_after_a_session_expires_its_ephemeral_nodes_are_created_again(open_sm, zookeeper):
    sm, reader = open_sm(session_timeout=2.0), open_sm()
    states: list[str] = []
    sm.add_state_listener(states.append)
    sm.set(TMASTERS, "wc", {"pid": 1}, ephemeral=True)
    assert sm.claim(TMASTERS, "other", {"pid": 1})
    first_session = sm.session_id
    expire_session(zookeeper, sm)
    wait_for(lambda: "LOST" in states, 20, "the session to be lost")
    wait_for(
        lambda: (
            reader.get(TMASTERS, "wc") == {"pid": 1} and reader.get(TMASTERS, "other") == {"pid": 1}
        ),
        20,
        "the ephemeral nodes re-created",
    )
    assert sm.session_id != first_session
    assert states[-1] == "CONNECTED"
    assert sm.claim(TMASTERS, "wc", {"pid": 1})  # ours, in the new session


def test_a_holder_whose_session_ended_does_not_take_back_a_node_another_claimed(open_sm):
    old, new = open_sm(session_timeout=2.0), open_sm()
    assert old.claim(TMASTERS, "wc", {"pid": 1})
    # the node vanishes with the session; another claimant wins before the
    # old client is back (in a new session, which re-creates what it can)
    old._client.stop()
    wait_for(lambda: new.claim(TMASTERS, "wc", {"pid": 2}), 20, "the node to be free")
    old._client.start(timeout=10)
    assert not old.claim(TMASTERS, "wc", {"pid": 1})
    assert new.get(TMASTERS, "wc") == {"pid": 2}


def test_an_unreachable_server_is_one_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = s.getsockname()[1]
        with pytest.raises(
            StateManagerError, match=rf"^cannot reach ZooKeeper at 127.0.0.1:{port} "
        ):
            open_state_manager("zookeeper", "/x", f"127.0.0.1:{port}", timeout=0.5)


@pytest.mark.parametrize(
    ("root", "connection", "message"),
    [
        ("relative/root", "127.0.0.1:2181", "must be an absolute ZooKeeper path"),
        ("/a/../b", "127.0.0.1:2181", "invalid heron.statemgr.root.path"),
        ("/a", "", "needs heron.statemgr.connection.string"),
        ("/a", "127.0.0.1:notaport", "invalid heron.statemgr.connection.string"),
    ],
)
def test_bad_settings_are_config_errors_before_connecting(root, connection, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        open_state_manager("zookeeper", root, connection, timeout=0.5)
