"""EFFECTIVELY_ONCE scenarios shared by the local and the ZooKeeper suites: a
stateful word count over a replayable spout (topologies/stateful.py), its
processes killed mid-run, its committed counts checked exactly against the
input."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from cli_harness import TOPOLOGIES, Cli
from support import wait_for

STATEFUL = TOPOLOGIES / "stateful.py"
VOCABULARY = 50


def expected_counts(words: int) -> Counter[str]:
    return Counter(f"w{(i * 7919) % VOCABULARY}" for i in range(words))


def committed(folder: Path) -> tuple[Counter[str], list[int]]:
    """The counts every counting task committed (as of a complete checkpoint), and
    those checkpoints."""
    total: Counter[str] = Counter()
    checkpoints = []
    for path in folder.glob("counts-*.json"):
        data = json.loads(path.read_text())
        total.update(data["counts"])
        checkpoints.append(data["checkpoint"])
    return total, checkpoints


def wait_for_all_counted(folder: Path, words: int, timeout: float = 90) -> Counter[str]:
    def done() -> Counter[str] | None:
        counts, _ = committed(folder)
        return counts if sum(counts.values()) >= words else None

    result: Counter[str] = wait_for(done, timeout, f"{words} words committed")
    return result


def props(**values: Any) -> list[str]:
    out = []
    for key, value in values.items():
        out += ["--config-property", f"{key.replace('_', '.')}={value}"]
    return out


def pids_of(cli: Cli, name: str, victim: str) -> list[int]:
    """The processes to kill for ``victim``: a component's first instance, the first
    data container's stream manager, that whole container, or the tmaster."""
    status = cli.status(name)
    data = [c for c in status["containers"] if c["container"] > 0]
    if victim == "tmaster":
        return [status["containers"][0]["tmaster"]["pid"]]
    if victim == "stmgr":
        return [data[0]["stmgr"]["pid"]]
    if victim == "container":
        c = data[0]
        return [c["executor_pid"], c["stmgr"]["pid"], c["metrics_pid"]] + [
            i["pid"] for i in c["instances"]
        ]
    return [i["pid"] for c in data for i in c["instances"] if i["component"] == victim][:1]


def checkpoint_status(cli: Cli, name: str) -> dict[str, Any]:
    info: dict[str, Any] = cli.status(name).get("checkpoints") or {}
    return info


def kill_and_recover(cli: Cli, name: str, victim: str) -> None:
    """kill -9 ``victim``, then wait until the topology has restored (an epoch after
    the current one) or, for the tmaster, until a new one runs checkpoints."""
    before = checkpoint_status(cli, name)
    pids = pids_of(cli, name, victim)
    assert pids, f"nothing to kill for {victim}"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)

    def recovered() -> bool:
        now = checkpoint_status(cli, name)
        if not now:
            return False
        if victim == "tmaster":
            return bool(now.get("latest", -1) > before.get("latest", -1))
        return bool(now.get("epoch", 0) > before.get("epoch", 0) and not now.get("restoring"))

    wait_for(recovered, 60, f"recovery from kill -9 of {victim}", interval=0.2)


def run_with_kills(cli: Cli, output: Path, victims: list[str], words: int, rate: int) -> None:
    """Submit the stateful word count, kill each victim in turn while words flow,
    and check that the committed counts are exactly the input's."""
    name = "StatefulKills"
    extra = props(test_words=words, test_rate=rate)
    with cli.submitted(STATEFUL, "StatefulWordCount", *extra, name=name, output=output):
        wait_for(lambda: checkpoint_status(cli, name).get("latest", -1) >= 1, 45, "a checkpoint")
        for victim in victims:
            counted, _ = committed(output)
            assert sum(counted.values()) < words, "the input ran out before every kill"
            kill_and_recover(cli, name, victim)
        counts = wait_for_all_counted(output, words)
        assert counts == expected_counts(words)
        assert sum(counts.values()) == words
