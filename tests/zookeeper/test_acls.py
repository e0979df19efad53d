"""ZooKeeper credentials (``heron.statemgr.zookeeper.auth.file``): with them every
node a topology creates carries a digest ACL for those credentials only, so a
session without them can neither read nor rewrite (say) the scheduler node
that ``kill`` reads; every verb works with them. Without them nodes are open
to anyone, as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_digest_acl_credential
from support import wait_for
from zk_harness import TOPOLOGIES, ZkCli, open_gate, seqs

from heronpy_lite.errors import ConfigError
from heronpy_lite.statemgr import open_state_manager, read_credentials

GATED = TOPOLOGIES / "gated.py"


class SecuredCli(ZkCli):
    def __init__(self, base: ZkCli, credentials: Path) -> None:
        super().__init__(base.home, base.server, base.root)
        self.credentials = credentials

    @property
    def cluster_args(self) -> list[str]:
        return [
            *super().cluster_args,
            "--config-property",
            f"heron.statemgr.zookeeper.auth.file={self.credentials}",
        ]


def every_node(zk: KazooClient, root: str) -> list[str]:
    out = []

    def walk(path: str) -> None:
        for child in zk.get_children(path):
            out.append(f"{path}/{child}")
            walk(f"{path}/{child}")

    walk(root)
    return out


def test_with_credentials_only_they_can_read_or_rewrite_a_topologys_nodes(
    zkcli: ZkCli, tmp_path: Path
) -> None:
    secret = tmp_path / "zk-auth"
    secret.write_text("heron:s3cret\n")
    secret.chmod(0o600)
    cli = SecuredCli(zkcli, secret)
    name, out = "Secured", tmp_path / "out"
    cli.run(
        "submit", str(GATED), "Gated", "--name", name, "--config-property", f"test.output.dir={out}"
    )
    try:
        open_gate(out, 20)
        wait_for(lambda: len(seqs(out)) == 20, 60, "tuples through a secured topology")
        assert cli.status(name)["state"] == "RUNNING"
        ours = [("digest", make_digest_acl_credential("heron", "s3cret"), 31)]  # cdrwa
        with zkcli.server.client() as zk:
            zk.add_auth("digest", "heron:s3cret")
            nodes = [zkcli.root, *every_node(zk, zkcli.root)]
            assert len([n for n in nodes if f"/{name}" in n]) >= 10  # every kind; per container
            for node in nodes:  # the root and its kinds too: all made by this topology
                acls, _ = zk.get_acls(node)
                assert [(a.id.scheme, a.id.id, a.perms) for a in acls] == ours, node
        with zkcli.server.client() as anonymous:
            # the root's ancestors, which other roots share, stay open
            parent = zkcli.root.rsplit("/", 1)[0]
            assert zkcli.root.rsplit("/", 1)[1] in anonymous.get_children(parent)
            with pytest.raises(NoAuthError):
                anonymous.get_children(zkcli.root)
            scheduler = f"{zkcli.root}/schedulers/{name}"
            with pytest.raises(NoAuthError):
                anonymous.get(scheduler)
            with pytest.raises(NoAuthError):
                anonymous.set(scheduler, b'{"pid": 1, "pgid": 1}')
            with pytest.raises(NoAuthError):
                anonymous.create(f"{zkcli.root}/topologies/Intruder", b"{}")
        # the CLI without the credentials: one line, not a traceback
        denied = zkcli.run("status", name, check=False)
        assert denied.returncode == 1
        assert denied.stderr == (
            f"error: ZooKeeper at {zkcli.server.connection}: read topologies/{name} is not "
            "allowed with no credentials (the node's ACL; heron.statemgr.zookeeper.auth.file)\n"
        )
    finally:
        kill = cli.run("kill", name, check=False)
    assert kill.returncode == 0, kill.stderr
    with zkcli.server.client() as zk:
        zk.add_auth("digest", "heron:s3cret")
        assert [n for n in every_node(zk, zkcli.root) if f"/{name}" in n] == []


def test_without_credentials_nodes_are_open_as_before(zookeeper: object, zk_root: str) -> None:
    sm = open_state_manager("zookeeper", zk_root, zookeeper.connection, timeout=5)  # type: ignore[attr-defined]
    try:
        sm.set("schedulers", "Open", {"pid": 1})
    finally:
        sm.close()
    with zookeeper.client() as zk:  # type: ignore[attr-defined]
        acls, _ = zk.get_acls(f"{zk_root}/schedulers/Open")
        assert [(a.id.scheme, a.id.id, a.perms) for a in acls] == [("world", "anyone", 31)]
        zk.delete(zk_root, recursive=True)


@pytest.mark.parametrize("content", ["", "no-colon\n", ":password\n", "user:\n"])
def test_a_malformed_credentials_file_is_one_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "auth"
    path.write_text(content)
    with pytest.raises(ConfigError, match="must hold one line user:password"):
        read_credentials(str(path))
    with pytest.raises(ConfigError, match=r"cannot read heron\.statemgr\.zookeeper\.auth\.file"):
        read_credentials(str(tmp_path / "missing"))
