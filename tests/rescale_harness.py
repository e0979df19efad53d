"""``heronpy-lite update`` scenarios shared by the local and the ZooKeeper suites:
a fields-grouped bolt rescaled under traffic at ATLEAST_ONCE (every number
exactly once), a stateful word count rescaled mid-run at EFFECTIVELY_ONCE
(exact counts), and the requests update refuses, each with one clear line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from cli_harness import TOPOLOGIES, Cli
from stateful_harness import STATEFUL, checkpoint_status, expected_counts, props
from support import wait_for

RESCALE = TOPOLOGIES / "rescale.py"


def seen(folder: Path) -> list[int]:
    numbers: list[int] = []
    for path in folder.glob("seen-*.txt"):
        with open(path) as f:
            numbers += [int(line) for line in f if line.endswith("\n")]
    return numbers


def tasks_of(cli: Cli, name: str, component: str) -> list[int]:
    status = cli.status(name)
    return sorted(
        i["task_id"]
        for c in status["containers"]
        for i in c.get("instances", [])
        if i["component"] == component
    )


def update(cli: Cli, name: str, *args: str) -> str:
    proc = cli.verb("update", name, *args, timeout=180)
    return proc.stdout


def rescale_under_traffic(cli: Cli, tmp_path: Path) -> None:
    """ATLEAST_ONCE: relay 2 -> 4 -> 1 while numbers flow; every number reaches the
    sink exactly once."""
    count = 6000
    extra = ["--config-property", f"test.count={count}", "--config-property", "test.rate=400"]
    with cli.submitted(RESCALE, "RescaledNumbers", *extra, name="Rescaled", output=tmp_path):
        assert len(tasks_of(cli, "Rescaled", "relay")) == 2
        wait_for(lambda: len(seen(tmp_path)) >= 800, 60, "numbers flowing")
        out = update(
            cli, "Rescaled", "--component-parallelism", "relay:4", "--container-number", "3"
        )
        assert "relay: 2 -> 4; containers: 2 -> 3" in out
        assert len(cli.status("Rescaled")["containers"]) == 4  # the tmaster's and 3
        assert len(tasks_of(cli, "Rescaled", "relay")) == 4
        before = len(seen(tmp_path))
        assert before < count, "the input ran out before the second update"
        wait_for(lambda: len(seen(tmp_path)) >= before + 800, 60, "numbers flowing again")
        out = update(
            cli, "Rescaled", "--component-parallelism", "relay:1", "--container-number", "2"
        )
        assert "relay: 4 -> 1; containers: 3 -> 2" in out
        assert len(cli.status("Rescaled")["containers"]) == 3
        assert len(tasks_of(cli, "Rescaled", "relay")) == 1
        assert len(seen(tmp_path)) < count, "the input ran out before the last update"
        wait_for(lambda: len(seen(tmp_path)) >= count, 90, f"all {count} numbers")
        numbers = seen(tmp_path)
        assert sorted(numbers) == list(range(count))  # nothing lost, nothing twice


def committed_by(folder: Path, tasks: list[int]) -> Counter[str]:
    total: Counter[str] = Counter()
    for task in tasks:
        path = folder / f"counts-{task}.json"
        if path.exists():
            total.update(json.loads(path.read_text())["counts"])
    return total


def rescale_stateful(cli: Cli, tmp_path: Path) -> None:
    """EFFECTIVELY_ONCE: the refused requests, then count 2 -> 4 -> 1 mid-run; the
    final committed counts are exactly the input's."""
    words, name = 9000, "StatefulRescaled"
    extra = props(test_words=words, test_rate=500)
    with cli.submitted(STATEFUL, "StatefulWordCount", *extra, name=name, output=tmp_path):
        wait_for(lambda: checkpoint_status(cli, name).get("latest", -1) >= 1, 45, "a checkpoint")
        # what update refuses, each with one line, and the topology runs on
        bad = cli.verb("update", name, "--component-parallelism", "count:0", check=False)
        assert bad.returncode != 0
        assert bad.stderr.strip().splitlines()[-1].endswith("count:0': N must be >= 1")
        bad = cli.verb("update", name, "--component-parallelism", "words:2", check=False)
        assert bad.returncode != 0 and "words: cannot change its parallelism" in bad.stderr
        bad = cli.verb("update", name, "--component-parallelism", "count:2", check=False)
        assert bad.returncode != 0 and "already runs that plan" in bad.stderr
        bad = cli.verb("update", name, "--component-parallelism", "nope:2", check=False)
        assert bad.returncode != 0 and "no component 'nope'" in bad.stderr
        bad = cli.verb(
            "update", "NoSuchTopology", "--component-parallelism", "count:2", check=False
        )
        assert bad.returncode != 0 and "NoSuchTopology" in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1

        out = update(cli, name, "--component-parallelism", "count:4")
        assert "count: 2 -> 4" in out
        count_tasks = tasks_of(cli, name, "count")
        assert len(count_tasks) == 4
        assert sum(committed_by(tmp_path, count_tasks).values()) < words, "input ran out"
        wait_for(
            lambda: (
                checkpoint_status(cli, name).get("latest", -1) >= 1
                and sum(committed_by(tmp_path, count_tasks).values()) > words // 2
            ),
            60,
            "counting after the update",
        )
        out = update(cli, name, "--component-parallelism", "count:1")
        assert "count: 4 -> 1" in out
        count_tasks = tasks_of(cli, name, "count")
        assert len(count_tasks) == 1

        def all_counted() -> Counter[str] | None:
            counts = committed_by(tmp_path, count_tasks)
            return counts if sum(counts.values()) >= words else None

        counts = wait_for(all_counted, 90, f"{words} words committed")
        assert counts == expected_counts(words)
