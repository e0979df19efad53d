"""Every CLI verb against the ``localzk`` cluster (local scheduler, state in
ZooKeeper), checking the znodes after each step; two topologies under one
root; and one clear line from every verb when ZooKeeper cannot be reached."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import pid_alive, wait_for
from zk_harness import TOPOLOGIES, ZkCli, every_pid, open_gate, received, seqs, tmaster_processes

GATED = TOPOLOGIES / "gated.py"


def tmaster_pids(info: dict[str, Any]) -> list[int]:
    return sorted(p.pid for p in tmaster_processes(info))


def test_submit_list_status_control_restart_and_kill_through_localzk(
    zkcli: ZkCli, tmp_path: Path
) -> None:
    name, out = "Lifecycle", tmp_path / "out"
    zkcli.run(
        "submit", str(GATED), "Gated", "--name", name, "--config-property", f"test.output.dir={out}"
    )
    try:
        nodes = zkcli.nodes_of(name)
        assert set(nodes) == {
            f"{kind}/{name}"
            for kind in (
                "topologies",
                "packingplans",
                "pplans",
                "executionstate",
                "tmasters",
                "schedulers",
                "metricsmgrs",
            )
        } | {f"metricsmgrs/{name}/{c}" for c in (0, 1, 2)}
        assert sorted(k for k, v in nodes.items() if v["ephemeral"]) == sorted(
            [f"tmasters/{name}"] + [f"metricsmgrs/{name}/{c}" for c in (0, 1, 2)]
        )
        tmaster = nodes[f"tmasters/{name}"]["data"]
        assert nodes[f"executionstate/{name}"]["data"]["state"] == "RUNNING"
        assert len(nodes[f"pplans/{name}"]["data"]["stmgrs"]) == 2
        assert nodes[f"topologies/{name}"]["data"]["cluster"] == "localzk"

        listing = zkcli.run("list").stdout
        assert name in listing and "RUNNING" in listing
        info = zkcli.status(name)
        assert info["state"] == "RUNNING"
        assert info["containers"][0]["tmaster"]["pid"] == tmaster["pid"]
        assert tmaster["pid"] in tmaster_pids(info) and len(tmaster_pids(info)) == 2
        assert all(i["state"] == "running" for c in info["containers"][1:] for i in c["instances"])
        assert "tmaster" in zkcli.run("status", name).stdout

        open_gate(out, 200)
        wait_for(lambda: seqs(out) == list(range(200)), 30, "200 tuples")

        assert "deactivated" in zkcli.run("deactivate", name).stdout
        assert zkcli.nodes_of(name)[f"executionstate/{name}"]["data"]["state"] == "PAUSED"
        assert "PAUSED" in zkcli.run("list").stdout
        assert "activated" in zkcli.run("activate", name).stdout
        assert zkcli.nodes_of(name)[f"executionstate/{name}"]["data"]["state"] == "RUNNING"

        again = zkcli.run(
            "submit",
            str(GATED),
            "Gated",
            "--name",
            name,
            "--config-property",
            f"test.output.dir={out}",
            check=False,
        )
        assert again.returncode == 1
        assert again.stderr.strip().splitlines() == [
            f"error: a topology named {name!r} already exists (heronpy-lite kill localzk {name})"
        ]
        assert zkcli.status(name)["containers"][0]["tmaster"]["pid"] == tmaster["pid"]

        # restart the tmaster container on purpose: both tmasters are new
        old = set(tmaster_pids(info))
        assert "Restarting container(s) 0" in zkcli.run("restart", name, "0").stdout

        def new_tmaster_with_all_stmgrs() -> bool:
            nodes = zkcli.nodes_of(name)
            active = nodes.get(f"tmasters/{name}", {}).get("data") or {}
            plan = nodes[f"pplans/{name}"]["data"]
            return (
                active.get("pid") not in (None, *old)
                and len(plan["stmgrs"]) == 2
                and all(pid not in old for pid in tmaster_pids(zkcli.status(name)))
            )

        wait_for(new_tmaster_with_all_stmgrs, 40, "a new tmaster that every stmgr registered with")
        assert "deactivated" in zkcli.run("deactivate", name).stdout
        assert "activated" in zkcli.run("activate", name).stdout
        open_gate(out, 400)
        wait_for(lambda: len(received(out)) >= 400, 30, "400 tuples")
        assert seqs(out) == list(range(400))
        pids = every_pid(zkcli.status(name))
    finally:
        killed = zkcli.run("kill", name, check=False)
    assert killed.returncode == 0, killed.stderr
    assert "killed" in killed.stdout
    assert zkcli.nodes_of(name) == {}
    assert [p for p in pids if pid_alive(p)] == []
    assert "No topologies in cluster 'localzk'" in zkcli.run("list").stdout
    gone = zkcli.run("status", name, check=False)
    assert gone.returncode == 1
    assert gone.stderr.strip() == f"error: no topology named {name!r} is running"


def test_two_topologies_share_one_root_without_touching_each_other(
    zkcli: ZkCli, tmp_path: Path
) -> None:
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    with (
        zkcli.submitted(GATED, "Gated", name="First", output=out_a),
        zkcli.submitted(GATED, "Gated", name="Second", output=out_b),
    ):
        listing = zkcli.run("list").stdout
        assert "First" in listing and "Second" in listing
        open_gate(out_a, 300)
        open_gate(out_b, 300)
        wait_for(
            lambda: len(received(out_a)) >= 300 and len(received(out_b)) >= 300,
            30,
            "300 tuples in each",
        )
        assert seqs(out_a) == list(range(300)) == seqs(out_b)
        second = zkcli.nodes_of("Second")
        assert len(second) == 7 + 3  # 7 kinds, and a metrics manager per container
        zkcli.run("kill", "First")
        assert zkcli.nodes_of("First") == {}
        assert set(zkcli.nodes_of("Second")) == set(second)
        assert zkcli.status("Second")["state"] == "RUNNING"
        open_gate(out_b, 600)
        wait_for(lambda: len(received(out_b)) >= 600, 30, "600 tuples in the second")
        assert seqs(out_b) == list(range(600))


@pytest.mark.parametrize(
    "verb",
    [
        ["list"],
        ["status", "Name"],
        ["kill", "Name"],
        ["activate", "Name"],
        ["deactivate", "Name"],
        ["restart", "Name", "0"],
        ["submit", str(GATED), "Gated"],
    ],
    ids=lambda v: v[0],
)
def test_every_verb_says_in_one_line_that_zookeeper_is_unreachable(
    verb: list[str], tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = s.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "heronpy_lite",
                verb[0],
                "localzk",
                *verb[1:],
                "--config-property",
                f"heron.statemgr.connection.string=127.0.0.1:{port}",
                "--config-property",
                "heron.statemgr.zookeeper.timeout.secs=0.5",
                "--config-property",
                f"test.output.dir={tmp_path}",
            ],
            env={**os.environ, "HERONPY_LITE_HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"error: cannot reach ZooKeeper at 127.0.0.1:{port} within 0.5s"
    ]
