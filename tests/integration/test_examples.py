"""The README's examples run as documented."""

from __future__ import annotations

import re

import pytest
from cli_harness import EXAMPLES, Cli
from support import wait_for


@pytest.mark.parametrize(
    ("file", "attr", "name", "log_glob", "pattern"),
    [
        (
            "word_count.py",
            "WordCountTopology",
            "WordCountTopology",
            "instance-count_bolt-*.log",
            r"(\d+) words counted; top: \w+=\d+",
        ),
        (
            "exclamation.py",
            "ExclamationTopology",
            "ExclamationTopology",
            "instance-exclaim2-*.log",
            r"(\d+) words, latest \w+!!!!!!",
        ),
        (
            "multi_stream.py",
            "builder",
            "MultiStream",
            "instance-even_sum-*.log",
            r"stream evens: (\d+) numbers, sum \d+",
        ),
    ],
)
def test_example_runs_as_separate_processes(
    cli: Cli, file: str, attr: str, name: str, log_glob: str, pattern: str
) -> None:
    extra = (
        ["--config-property", "topology.tick.tuple.freq.secs=1"] if file == "word_count.py" else []
    )
    with cli.submitted(EXAMPLES / file, attr, *extra, name=name):
        info = cli.status(name)
        instances = [i for c in info["containers"] for i in c.get("instances", [])]
        assert instances and all(i["state"] == "running" for i in instances)
        assert len({i["pid"] for i in instances}) == len(instances)

        def logged() -> bool:
            return any(re.search(pattern, p.read_text()) for p in cli.log_dir(name).glob(log_glob))

        wait_for(logged, 30, f"{pattern!r} in {log_glob}")
