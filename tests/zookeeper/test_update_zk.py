"""``heronpy-lite update`` with ZooKeeper as the state manager: the same
scenarios as tests/integration/test_update.py (rescale_harness.py)."""

from __future__ import annotations

from pathlib import Path

from rescale_harness import rescale_stateful, rescale_under_traffic
from zk_harness import ZkCli


def test_a_bolt_rescaled_under_traffic_with_zookeeper_delivers_every_number_once(
    zkcli: ZkCli, tmp_path: Path
) -> None:
    rescale_under_traffic(zkcli, tmp_path)


def test_a_stateful_word_count_rescaled_with_zookeeper_ends_with_exact_counts(
    zkcli: ZkCli, tmp_path: Path
) -> None:
    rescale_stateful(zkcli, tmp_path)
