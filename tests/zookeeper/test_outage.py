"""ZooKeeper away for 10 s under a running topology: tuples keep flowing
(the data path never touches it) and nothing is lost; a CLI command says in
one line that it cannot reach ZooKeeper; when the server is back, sessions
resume, the tmaster node is there, and every process is the one from
before."""

from __future__ import annotations

import time
from pathlib import Path

from support import pid_alive, wait_for
from zk_harness import TOPOLOGIES, ZkCli, ZooKeeperServer, every_pid, open_gate, received, seqs

OUTAGE_SECS = 10


def test_tuples_keep_flowing_while_zookeeper_is_down_and_state_is_back_after(
    zookeeper: ZooKeeperServer, zkcli: ZkCli, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with zkcli.submitted(
        TOPOLOGIES / "gated.py",
        "Gated",
        "--config-property",
        "test.rate=300",
        name="Outage",
        output=out,
    ) as name:
        open_gate(out, 300)
        wait_for(lambda: len(received(out)) >= 300, 30, "300 tuples")
        pids = every_pid(zkcli.status(name))
        # scheduler, executors, tmasters, stmgrs, tasks, metrics managers
        assert len(pids) == 1 + 3 + 2 + 2 + 3 + 3
        tmaster = zkcli.nodes_of(name)[f"tmasters/{name}"]["data"]

        zookeeper.stop()
        stopped_at = time.monotonic()
        try:
            open_gate(out, 1500)  # 4 s of tuples at 300/s, all while ZooKeeper is down
            wait_for(lambda: len(received(out)) >= 600, 10, "tuples flowing without ZooKeeper")
            down = zkcli.run("list", check=False)
            assert down.returncode == 1
            assert down.stderr.splitlines() == [
                f"error: cannot reach ZooKeeper at {zookeeper.connection} within 5s"
            ]
            wait_for(lambda: len(received(out)) >= 1500, 20, "every tuple without ZooKeeper")
            assert not zookeeper.ruok()
            # the outage is the scenario: it lasts its 10 s whatever the topology does
            time.sleep(max(0.0, OUTAGE_SECS - (time.monotonic() - stopped_at)))
        finally:
            zookeeper.start()
        print(f"\nZooKeeper was down for {time.monotonic() - stopped_at:.1f}s")
        assert seqs(out) == list(range(1500))

        wait_for(
            lambda: zkcli.nodes_of(name).get(f"tmasters/{name}", {}).get("data") == tmaster,
            30,
            "the same tmaster's node",
        )
        assert zkcli.nodes_of(name)[f"tmasters/{name}"]["ephemeral"]
        assert all(pid_alive(p) for p in pids)
        assert every_pid(zkcli.status(name)) == pids
        assert "deactivated" in zkcli.run("deactivate", name).stdout
        assert zkcli.nodes_of(name)[f"executionstate/{name}"]["data"]["state"] == "PAUSED"
        assert "activated" in zkcli.run("activate", name).stdout
        open_gate(out, 1800)
        wait_for(lambda: len(received(out)) >= 1800, 30, "tuples after the outage")
        assert seqs(out) == list(range(1800))
