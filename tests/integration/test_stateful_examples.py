"""The shipped EFFECTIVELY_ONCE examples (topologies/stateful_word_count.py) as a
user runs them: the committing sink's part files hold every count of every
word exactly once (no line lost, none written twice) after kill -9 of the sink
and of a counter mid-run, and the file spout's counts equal the file's."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from cli_harness import EXAMPLES, Cli
from stateful_harness import kill_and_recover, props
from support import wait_for

EXAMPLE = EXAMPLES / "stateful_word_count.py"
WORDS = ("heron", "storm", "flink", "stream", "tuple", "spout", "bolt", "state")


def committed_lines(folder: Path) -> list[tuple[str, int]]:
    lines: list[tuple[str, int]] = []
    for part in sorted(folder.glob("part-*.jsonl")):
        lines += [tuple(json.loads(line)) for line in part.read_text().splitlines()]  # type: ignore[misc]
    return lines


def wait_for_lines(folder: Path, n: int) -> list[tuple[str, int]]:
    def enough() -> list[tuple[str, int]] | None:
        lines = committed_lines(folder)
        return lines if len(lines) >= n else None

    result: list[tuple[str, int]] = wait_for(enough, 120, f"{n} committed lines")
    return result


def test_the_committing_sink_writes_every_count_once_after_kills(cli: Cli, tmp_path: Path) -> None:
    words, out = 4_000, tmp_path / "out"
    extra = props(wordcount_words=words, wordcount_words_per_second=250, wordcount_output_dir=out)
    name = "GeneratedWordCount"
    with cli.submitted(EXAMPLE, name, *extra):
        wait_for(lambda: committed_lines(out), 60, "a first committed part")
        for victim in ("sink", "count"):
            assert len(committed_lines(out)) < words, "the input ran out before the kill"
            kill_and_recover(cli, name, victim)
        lines = wait_for_lines(out, words)
    expected = Counter(WORDS[(i * 7) % len(WORDS)] for i in range(words))
    # each word's counts 1..n, each exactly once
    assert sorted(lines) == sorted((w, c) for w, n in expected.items() for c in range(1, n + 1))


def test_the_file_spout_counts_the_file(cli: Cli, tmp_path: Path) -> None:
    text = tmp_path / "input.txt"
    text.write_text("".join(f"heron storm {i % 7} heron\n" for i in range(500)))
    expected = Counter(text.read_text().split())
    out = tmp_path / "out"
    extra = props(wordcount_input_file=text, wordcount_output_dir=out)
    with cli.submitted(EXAMPLE, "FileWordCount", *extra):
        lines = wait_for_lines(out, sum(expected.values()))
    final: dict[str, int] = {}
    for word, count in lines:
        final[word] = max(final.get(word, 0), count)
    assert final == dict(expected)
    assert len(lines) == sum(expected.values())
