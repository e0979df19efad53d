"""The local-directory state manager (plain file I/O under tmp_path)."""

from __future__ import annotations

import errno
import os

import pytest

from heronpy_lite.errors import CorruptStateError, StateManagerError, TopologyNotFoundError
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
)
from heronpy_lite.statemgr.localfs import LocalFileStateManager

#: Above Linux's PID_MAX_LIMIT (2**22): no process can have this pid.
DEAD_PID = 2**22 + 12345


@pytest.fixture
def sm(tmp_path):
    return LocalFileStateManager(tmp_path / "state")


def write_as_dead_process(monkeypatch, fn, *args, **kwargs):
    """Run ``fn`` while os.getpid() reports a pid that no process has."""
    with monkeypatch.context() as patch:
        patch.setattr(os, "getpid", lambda: DEAD_PID)
        fn(*args, **kwargs)


def test_dead_pid_really_is_dead():
    with pytest.raises(ProcessLookupError):
        os.kill(DEAD_PID, 0)


def test_root_directory_is_created(tmp_path):
    root = tmp_path / "a" / "b"
    LocalFileStateManager(root)
    assert root.is_dir()


def test_open_state_manager_localfs(tmp_path):
    sm = open_state_manager("localfs", str(tmp_path / "s"))
    assert isinstance(sm, LocalFileStateManager)
    assert sm.root == tmp_path / "s"


@pytest.mark.parametrize("kind", [k for k in KINDS if k != METRICSMGRS])
def test_set_get_round_trip(sm, kind):
    value = {"host": "127.0.0.1", "port": 7000, "nested": {"list": [1, 2.5, None, True]}}
    sm.set(kind, "wc", value)
    assert sm.get(kind, "wc") == value


def test_set_overwrites(sm):
    sm.set(PPLANS, "wc", {"v": 1})
    sm.set(PPLANS, "wc", {"v": 2})
    assert sm.get(PPLANS, "wc") == {"v": 2}


def test_get_of_an_absent_node_is_none(sm):
    assert sm.get(PPLANS, "nope") is None


def test_writes_leave_no_temporary_files(sm):
    sm.set(PPLANS, "wc", {"v": 1})
    sm.set(PPLANS, "wc", {"v": 2})
    assert sorted(p.name for p in (sm.root / PPLANS).iterdir()) == ["wc"]


def test_corrupt_node_is_a_state_manager_error(sm):
    (sm.root / PPLANS).mkdir()
    (sm.root / PPLANS / "wc").write_bytes(b"{not json")
    with pytest.raises(StateManagerError, match="corrupt state node pplans/wc"):
        sm.get(PPLANS, "wc")
    (sm.root / PPLANS / "wc").write_bytes(b"[1, 2]")
    with pytest.raises(StateManagerError, match="not an object"):
        sm.get(PPLANS, "wc")


@pytest.mark.parametrize("name", ["", ".", "..", "a/../b", "a//b"])
def test_invalid_node_names_are_refused(sm, name):
    with pytest.raises(StateManagerError, match="invalid state path"):
        sm.set(PPLANS, name, {"v": 1})


def test_create_topology_is_exclusive(sm):
    assert sm.create_topology("wc", {"file": "a.py"}) is True
    assert sm.create_topology("wc", {"file": "b.py"}) is False
    assert sm.get_topology("wc") == {"file": "a.py"}


def test_get_topology_of_an_unknown_name_raises(sm):
    with pytest.raises(TopologyNotFoundError, match="no topology named 'ghost'"):
        sm.get_topology("ghost")


def test_list_topologies(sm):
    assert sm.list_topologies() == []
    sm.create_topology("zeta", {})
    sm.create_topology("alpha", {})
    sm.set(PPLANS, "not-a-topology", {})
    (sm.root / TOPOLOGIES / ".tmp-leftover").write_bytes(b"{}")
    assert sm.list_topologies() == ["alpha", "zeta"]


def test_delete_topology_removes_every_node_kind(sm):
    for name in ("wc", "other"):
        sm.create_topology(name, {"file": "t.py"})
        sm.set(PACKING_PLANS, name, {"p": 1})
        sm.set(PPLANS, name, {"p": 2})
        sm.set(EXECUTION_STATE, name, {"state": "RUNNING"})
        sm.set(TMASTERS, name, {"port": 1}, ephemeral=True)
        sm.set(SCHEDULERS, name, {"pid": 1})
        sm.set_metricsmgr(name, 1, {"url": "http://a"})
        sm.set_metricsmgr(name, 2, {"url": "http://b"})
    sm.delete_topology("wc")
    for kind in KINDS:
        assert sm.get(kind, "wc") is None
        assert not (sm.root / kind / "wc").exists()
    assert sm.get_metricsmgrs("wc") == {}
    assert sm.list_topologies() == ["other"]
    # the other topology is untouched
    assert sm.get(PPLANS, "other") == {"p": 2}
    assert sm.get(TMASTERS, "other") == {"port": 1}
    assert set(sm.get_metricsmgrs("other")) == {1, 2}
    # and the name can be claimed again
    assert sm.create_topology("wc", {}) is True


def test_delete_of_an_absent_topology_is_fine(sm):
    sm.delete_topology("never-existed")
    assert sm.list_topologies() == []


def test_ephemeral_node_of_a_live_owner_reads_normally(sm):
    sm.set(TMASTERS, "wc", {"port": 7000}, ephemeral=True)
    assert sm.get(TMASTERS, "wc") == {"port": 7000}
    assert f"#owner-pid {os.getpid()}".encode() in (sm.root / TMASTERS / "wc").read_bytes()


def test_ephemeral_node_reads_as_absent_when_its_owner_is_dead(sm, monkeypatch):
    write_as_dead_process(monkeypatch, sm.set, TMASTERS, "wc", {"port": 7000}, ephemeral=True)
    assert (sm.root / TMASTERS / "wc").exists()
    assert f"#owner-pid {DEAD_PID}".encode() in (sm.root / TMASTERS / "wc").read_bytes()
    assert sm.get(TMASTERS, "wc") is None


def test_ephemeral_node_rewritten_by_a_live_owner_is_present_again(sm, monkeypatch):
    write_as_dead_process(monkeypatch, sm.set, TMASTERS, "wc", {"port": 1}, ephemeral=True)
    sm.set(TMASTERS, "wc", {"port": 2}, ephemeral=True)
    assert sm.get(TMASTERS, "wc") == {"port": 2}


def test_non_ephemeral_node_is_independent_of_the_writer_pid(sm, monkeypatch):
    write_as_dead_process(monkeypatch, sm.set, PPLANS, "wc", {"v": 1})
    assert sm.get(PPLANS, "wc") == {"v": 1}


def test_ephemeral_value_containing_newlines_and_hashes_round_trips(sm):
    value = {"text": "line1\n#owner-pid 1\nline3"}
    sm.set(TMASTERS, "wc", value, ephemeral=True)
    assert sm.get(TMASTERS, "wc") == value


def test_metricsmgr_nodes_by_container(sm):
    sm.set_metricsmgr("wc", 1, {"url": "http://127.0.0.1:9001"})
    sm.set_metricsmgr("wc", 2, {"url": "http://127.0.0.1:9002"})
    sm.set_metricsmgr("wc", 2, {"url": "http://127.0.0.1:9102"})
    sm.set_metricsmgr("other", 1, {"url": "x"})
    assert sm.get_metricsmgrs("wc") == {
        1: {"url": "http://127.0.0.1:9001"},
        2: {"url": "http://127.0.0.1:9102"},
    }
    assert sm.get_metricsmgrs("nope") == {}


def test_metricsmgr_nodes_are_ephemeral(sm, monkeypatch):
    sm.set_metricsmgr("wc", 1, {"url": "alive"})
    write_as_dead_process(monkeypatch, sm.set_metricsmgr, "wc", 2, {"url": "dead"})
    assert sm.get_metricsmgrs("wc") == {1: {"url": "alive"}}


def test_a_second_manager_on_the_same_root_sees_the_same_state(sm):
    sm.create_topology("wc", {"file": "t.py"})
    sm.set(PPLANS, "wc", {"v": 1})
    other = LocalFileStateManager(sm.root)
    assert other.list_topologies() == ["wc"]
    assert other.get(PPLANS, "wc") == {"v": 1}
    assert other.create_topology("wc", {}) is False


class _FullDisk:
    """A file object whose writes fail as on a full disk."""

    def __init__(self, f):
        self.f = f

    def write(self, data):
        self.f.write(data[: len(data) // 2])  # some of it, then no room
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def on_a_full_disk(monkeypatch):
    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r": _FullDisk(real(fd, mode)))


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_failed_write_keeps_the_old_node_and_leaves_no_temporary_file(sm, monkeypatch):
    sm.set(SCHEDULERS, "wc", {"pid": 1})
    on_a_full_disk(monkeypatch)
    with pytest.raises(StateManagerError, match="No space left on device"):
        sm.set(SCHEDULERS, "wc", {"pid": 2})
    monkeypatch.undo()
    assert sm.get(SCHEDULERS, "wc") == {"pid": 1}
    assert files_under(sm.root) == ["schedulers/wc"]


def test_a_failed_create_leaves_no_node_so_the_name_is_free(sm, monkeypatch):
    on_a_full_disk(monkeypatch)
    with pytest.raises(StateManagerError, match="No space left on device"):
        sm.create_topology("wc", {"name": "wc"})
    monkeypatch.undo()
    assert files_under(sm.root) == []
    assert sm.list_topologies() == []
    assert sm.create_topology("wc", {"name": "wc"}) is True
    assert sm.get_topology("wc") == {"name": "wc"}


def test_create_is_atomic_and_exclusive(sm):
    assert sm.create_topology("wc", {"n": 1}) is True
    assert sm.create_topology("wc", {"n": 2}) is False
    assert sm.get_topology("wc") == {"n": 1}
    assert files_under(sm.root) == ["topologies/wc"]


def test_an_empty_node_left_by_an_older_version_reads_as_corrupt(sm):
    (sm.root / "topologies").mkdir(parents=True)
    (sm.root / "topologies" / "wc").write_bytes(b"")
    with pytest.raises(CorruptStateError, match="corrupt state node topologies/wc"):
        sm.get_topology("wc")
    sm.delete_topology("wc")
    assert sm.list_topologies() == []
