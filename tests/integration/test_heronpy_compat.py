"""heronpy topologies run unchanged: files that import ``heronpy``, laid out as Heron's
examples are (imports rooted at ``heron_layout``, found with ``--package-root``),
submitted in Heron's styles, checked exactly.

Three submits, each shared by the tests after it:

- Heron's word count, half acking and custom grouping examples in one topology,
  run as ``submit local FILE - NAME WORDS`` (``build_and_submit()``; the
  builder names it): counts, need_task_ids, half acking, every task-hook event,
  ``global_metrics`` scraped from /metrics;
- Heron's multi-stream example, a Topology class, as ``submit local FILE Class NAME``;
- a wrapper-delegate harness of the shape of Heron's integration_test (specs from
  class paths, an aggregator writing its exact sorted input), from a pex-like
  archive whose own bootstrap and bundled heronpy must not run, with the real
  heronpy 0.20.5 on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_harness import TOPOLOGIES, Cli
from prometheus_client.parser import text_string_to_metric_families
from support import wait_for

ROOT = TOPOLOGIES / "heron_layout"
PROJECT = ROOT / "heronproj"
WORDS = 20  # per spout task; two spout tasks


def read_jsonl(folder: Path, pattern: str) -> dict[int, list[Any]]:
    """task -> recorded lines, for files ``<component>-<task>.jsonl``."""
    result: dict[int, list[Any]] = {}
    for path in sorted(folder.glob(pattern)):
        task = int(path.stem.rpartition("-")[2])
        result[task] = [
            json.loads(line)
            for line in path.read_text().splitlines(keepends=True)
            if line.endswith("\n")
        ]
    return result


def hook_counts(folder: Path) -> dict[int, dict[str, Any]]:
    result = {}
    for path in folder.glob("hooks-*.json"):
        result[int(path.stem.rpartition("-")[2])] = json.loads(path.read_text())
    return result


def scrape(url: str) -> list[Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return [s for f in text_string_to_metric_families(text) for s in f.samples]


# ------------------------------------------------------------------ word count ('-')


@pytest.fixture(scope="module")
def word_count(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    out = tmp_path_factory.mktemp("word_count")
    file = PROJECT / "word_count_topology.py"
    proc = cli.verb(
        "submit", str(file), "-", "HeronWordCount", str(WORDS),
        "--package-root", str(ROOT), "--config-property", f"test.output.dir={out}",
    )  # fmt: skip
    try:
        assert "Topology 'HeronWordCount' is running" in proc.stdout

        def verdicts() -> int:
            return sum(
                1 for lines in read_jsonl(out, "word_spout-*.jsonl").values() for r in lines
                if r[0] in ("ack", "fail")
            )  # fmt: skip

        wait_for(lambda: verdicts() == 2 * WORDS, 60, "an ack or fail for every spout emit")
        yield {"name": "HeronWordCount", "out": out}
    finally:
        cli.verb("kill", "HeronWordCount", check=False)


def test_the_builder_names_the_topology_and_every_word_is_counted_once(
    cli: Cli, word_count: dict[str, Any]
) -> None:
    assert "HeronWordCount" in cli.verb("list").stdout
    counted = read_jsonl(word_count["out"], "count_bolt-*.jsonl")
    assert sum(len(lines) for lines in counted.values()) == 2 * WORDS
    words_by_task = {task: {word for word, _ in lines} for task, lines in counted.items()}
    tasks = list(words_by_task)
    assert len(tasks) == 2 and not words_by_task[tasks[0]] & words_by_task[tasks[1]]
    emitted = Counter(
        r[2] for lines in read_jsonl(word_count["out"], "word_spout-*.jsonl").values()
        for r in lines if r[0] == "emit"
    )  # fmt: skip
    assert Counter(w for lines in counted.values() for w, _ in lines) == emitted


def receivers(out: Path) -> tuple[dict[str, int], list[int], int]:
    """(count task of each word, consume tasks, the half-ack task) as recorded."""
    count_task = {
        word: task for task, lines in read_jsonl(out, "count_bolt-*.jsonl").items()
        for word, _ in lines
    }  # fmt: skip
    consumers = sorted(read_jsonl(out, "consume_bolt-*.jsonl"))
    destinations = {
        task for lines in read_jsonl(out, "word_spout-*.jsonl").values() for r in lines
        if r[0] == "emit" for task in r[3]
    }  # fmt: skip
    (half_ack_task,) = destinations - set(count_task.values()) - set(consumers)
    return count_task, consumers, half_ack_task


def test_need_task_ids_returns_the_tasks_that_got_the_tuple(word_count: dict[str, Any]) -> None:
    out = word_count["out"]
    count_task, consumers, half_ack_task = receivers(out)
    consumed = read_jsonl(out, "consume_bolt-*.jsonl")
    # the custom grouping sends everything to the first consume task, nothing elsewhere
    assert [len(consumed[t]) for t in consumers] == [2 * WORDS, 0, 0]
    for lines in read_jsonl(out, "word_spout-*.jsonl").values():
        for _, _, word, tasks in (r for r in lines if r[0] == "emit"):
            assert sorted(tasks) == sorted([count_task[word], half_ack_task, consumers[0]])


def test_half_acking_acks_one_tuple_tree_in_two_and_fails_the_other(
    word_count: dict[str, Any],
) -> None:
    verdicts: dict[str, list[str]] = {}
    for lines in read_jsonl(word_count["out"], "word_spout-*.jsonl").values():
        for r in lines:
            if r[0] in ("ack", "fail"):
                verdicts.setdefault(r[1], []).append(r[0])
    assert len(verdicts) == 2 * WORDS and all(len(v) == 1 for v in verdicts.values())
    assert Counter(v[0] for v in verdicts.values()) == {"ack": WORDS, "fail": WORDS}


def test_global_metrics_are_exported_as_a_counter(cli: Cli, word_count: dict[str, Any]) -> None:
    urls = [c["metrics_url"] for c in cli.status(word_count["name"])["containers"]]

    def counted() -> float:
        return sum(
            s.value for url in urls for s in scrape(url)
            if s.name == "heron_user_auto_total" and s.labels.get("key") == "count"
            and s.labels.get("component") == "count_bolt"
        )  # fmt: skip

    wait_for(
        lambda: counted() == 2 * WORDS, 20, f"heron_user_auto_total{{key=count}} == {2 * WORDS}"
    )


def test_task_hooks_see_every_event_of_their_task(cli: Cli, word_count: dict[str, Any]) -> None:
    out = word_count["out"]
    spouts = read_jsonl(out, "word_spout-*.jsonl")
    counted = read_jsonl(out, "count_bolt-*.jsonl")
    # a spout's hooks run right after its own ack/fail, which the fixture waited for
    wait_for(
        lambda: all(
            sum(hook_counts(out)[t]["counts"].get(k, 0) for k in ("spout_ack", "spout_fail"))
            == WORDS
            for t in spouts
        ),
        10,
        "the spout hooks to see every verdict",
    )
    hooks = hook_counts(out)
    half_ack_task = receivers(out)[2]
    # registered in initialize (spouts) or by topology.auto.task.hooks (the bolts)
    assert set(hooks) == set(spouts) | set(counted) | {half_ack_task}
    for hook in hooks.values():
        assert hook["bad"] == [] and hook["counts"]["prepare"] == 1
    for task, lines in spouts.items():
        counts = hooks[task]["counts"]
        fails = sum(1 for r in lines if r[0] == "fail")
        assert counts["emit"] == WORDS
        assert (counts["spout_ack"], counts.get("spout_fail", 0)) == (WORDS - fails, fails)
        emitted_to = {json.dumps([r[2]]): r[3] for r in lines if r[0] == "emit"}
        assert hooks[task]["out_tasks"] == emitted_to  # EmitInfo.out_tasks: the destinations
    for task, lines in counted.items():
        counts = hooks[task]["counts"]
        assert (counts["bolt_execute"], counts["bolt_ack"]) == (len(lines), len(lines))
    half = hooks[half_ack_task]["counts"]
    assert (half["bolt_execute"], half["bolt_ack"], half["bolt_fail"]) == (
        2 * WORDS,
        WORDS,
        WORDS,
    )
    # clean_up when the tasks stop
    cli.verb("kill", word_count["name"])
    assert all(h["counts"]["clean_up"] == 1 for h in hook_counts(out).values())


# ------------------------------------------------------------ multi-stream (class)


def test_multi_stream_topology_class_with_its_name_as_heron_passes_it(
    cli: Cli, tmp_path: Path
) -> None:
    file = PROJECT / "multi_stream_topology.py"
    cli.verb(
        "submit", str(file), "MultiStream", "HeronMultiStream", "--package-root", str(ROOT),
        "--config-property", f"test.output.dir={tmp_path}",
    )  # fmt: skip
    try:
        per_task = {"default": 30, "error": 10}  # an error after every third word

        def aggregated() -> dict[int, Counter[str]]:
            got = read_jsonl(tmp_path, "stream_aggregator-*.jsonl")
            return {t: Counter(stream for stream, _ in lines) for t, lines in got.items()}

        wait_for(
            lambda: len(aggregated()) == 2 and all(c == per_task for c in aggregated().values()),
            60,
            f"every stream_aggregator task (Grouping.ALL) to get {per_task}",
        )
        wait_for(lambda: sum(map(len, read_jsonl(tmp_path, "count_bolt-*.jsonl").values())) == 30)
    finally:
        cli.verb("kill", "HeronMultiStream", check=False)


# ------------------------------------------------- wrapper harness from a pex archive


@pytest.fixture(scope="module")
def heronpy_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """heronpy 0.20.5 from PyPI, as a wheel to put on PYTHONPATH (its own
    dependencies are not installed: heronpy_lite must never import it)."""
    folder = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "heronpy==0.20.5",
         "-d", str(folder)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    wheels = list(folder.glob("heronpy-0.20.5-*.whl"))
    if proc.returncode != 0 or not wheels:
        if os.environ.get("CI") == "true":
            pytest.fail(f"pip download heronpy==0.20.5 failed: {proc.stderr}")
        pytest.skip(f"heronpy 0.20.5 cannot be downloaded here: {proc.stderr.strip()[-200:]}")
    return wheels[0]


def build_pex(path: Path, wheel: Path) -> Path:
    """A pex as Heron's build makes one: the project's code at the root, PEX-INFO
    naming the entry point, the pex bootstrap as __main__.py (here: one that fails
    if run), and the dependencies, the real heronpy among them, under .deps/."""
    with zipfile.ZipFile(path, "w") as pex:
        for file in sorted(PROJECT.rglob("*.py")):
            pex.write(file, str(file.relative_to(ROOT)))
        pex.writestr("PEX-INFO", json.dumps({"entry_point": "heronproj.harness_main"}))
        pex.writestr("__main__.py", "raise SystemExit('the pex bootstrap ran')\n")
        with zipfile.ZipFile(wheel) as dist:
            for name in dist.namelist():
                pex.writestr(f".deps/{wheel.name}/{name}", dist.read(name))
    return path


def test_wrapper_harness_from_a_pex_with_the_real_heronpy_installed(
    cli: Cli, tmp_path: Path, heronpy_wheel: Path
) -> None:
    pex = build_pex(tmp_path / "harness.pex", heronpy_wheel)
    out = tmp_path / "out"
    real = Cli(cli.home)
    real.env = {**cli.env, "PYTHONPATH": str(heronpy_wheel)}
    # the real heronpy is importable in such a process, outside heronpy_lite's loader
    probe = subprocess.run(
        [sys.executable, "-c", "import heronpy_lite.api, heronpy; print(heronpy.__file__)"],
        env=real.env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.strip().startswith(str(heronpy_wheel))
    name = "DoubleThenIdentity_harness"
    real.verb("submit", str(pex), "-", "-t", name, "-n", "10", "--config-property",
              f"test.output.dir={out}")  # fmt: skip
    try:
        results = out / "results.json"
        wait_for(results.exists, 60, "the aggregator's results")
        # ab-spout: A, B x5; doubled: A, B x10 through identity; count (fields)
        # -> sum (none): the number of distinct words
        assert json.loads(results.read_text()) == [2] + ["A"] * 10 + ["B"] * 10
        spout = json.loads(next(out.glob("spout-*.json")).read_text())
        assert spout["heronpy"] == "heronpy_lite"
        assert spout["spout_module"] == "heronpy_lite.api.spout.spout"
        pex_path = Path(spout["pex_path"])
        assert pex_path == cli.home / "topologies" / name / "harness.pex"
        assert zipfile.is_zipfile(pex_path)
    finally:
        real.verb("kill", name, check=False)


# ------------------------------------------------------ stateful word count ('-')


def test_heron_stateful_word_count_runs_effectively_once_with_exact_state(
    cli: Cli, tmp_path: Path
) -> None:
    """Heron's stateful example's shape (message ids and acks in EFFECTIVELY_ONCE
    code, ``put`` at ``pre_save``, a tick frequency on the bolt): once every word
    is counted, the state the bolts save holds the exact counts."""
    words, out = 3_000, tmp_path / "out"
    name = "HeronStatefulWordCount"
    file = PROJECT / "stateful_word_count_topology.py"
    cli.verb("submit", str(file), "-", name, str(words), "--package-root", str(ROOT),
             "--config-property", f"test.output.dir={out}")  # fmt: skip
    try:

        def saved() -> Counter[str] | None:
            total: Counter[str] = Counter()
            for path in out.glob("state-*.json"):
                total.update(json.loads(path.read_text())["state"])
            return total if sum(total.values()) >= 2 * words else None

        counts = wait_for(saved, 60, "every word in the saved state")
        cycle = ["hello", "bye", "good", "bad", "heron", "storm"]
        expected = Counter(cycle[i % 6] for i in range(words) for _ in range(2))  # two spouts
        assert counts == expected
        status = cli.status(name)
        assert status["checkpoints"]["latest"] >= 1
        assert status["checkpoints"]["failed"] == 0
    finally:
        cli.verb("kill", name, check=False)
