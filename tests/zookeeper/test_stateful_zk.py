"""EFFECTIVELY_ONCE with ZooKeeper as the state manager: the latest complete
checkpoint recorded in Heron's ``statefulcheckpoints/<name>`` node, the counts
exact after kill -9 of a bolt and of the active tmaster (a standby takes over
and resumes from the node), and the node gone after kill."""

from __future__ import annotations

from pathlib import Path

from stateful_harness import STATEFUL, checkpoint_status, props, run_with_kills
from support import wait_for
from zk_harness import ZkCli


def test_counts_are_exact_after_kills_with_the_checkpoint_record_in_zookeeper(
    zkcli: ZkCli, tmp_path: Path
) -> None:
    run_with_kills(zkcli, tmp_path, ["count", "tmaster"], words=4_000, rate=300)


def test_the_record_follows_the_latest_checkpoint_and_kill_removes_it(
    zkcli: ZkCli, tmp_path: Path
) -> None:
    name = "StatefulRecord"
    extra = props(
        test_words=100_000, test_rate=200, topology_stateful_checkpoint_interval_seconds=1
    )
    with zkcli.submitted(STATEFUL, "StatefulWordCount", *extra, name=name, output=tmp_path):
        node = f"statefulcheckpoints/{name}"

        def recorded() -> dict[str, object] | None:
            data = zkcli.tree().get(node, {}).get("data")
            return data if isinstance(data, dict) and int(data.get("latest", -1)) >= 2 else None

        record = wait_for(recorded, 60, "a record of checkpoint 2 in ZooKeeper")
        assert not zkcli.tree()[node]["ephemeral"]
        kept = record["kept"]
        assert isinstance(kept, list) and kept[-1] == record["latest"]
        assert len(kept) <= 3  # heron.stateful.checkpoints.kept
        # what status shows is what ZooKeeper holds, or newer
        assert checkpoint_status(zkcli, name)["latest"] >= record["latest"]
    assert not zkcli.nodes_of(name), "kill left nodes behind"
