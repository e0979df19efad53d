"""EFFECTIVELY_ONCE through the CLI with real processes: a stateful word count
over a replayable spout whose committed counts are exactly the input's after
kill -9 of a bolt, a spout, a stream manager, a whole container and the
tmaster, one after another mid-run; checkpoints declined (and counted) when
alignment passes its bound under backpressure, and the counts still exact; a
restart of the whole topology from its last checkpoint; a damaged checkpoint
file detected, and the one before it restored instead; and what submit
refuses."""

from __future__ import annotations

import json
from pathlib import Path

from cli_harness import TOPOLOGIES, Cli
from stateful_harness import (
    STATEFUL,
    checkpoint_status,
    committed,
    expected_counts,
    kill_and_recover,
    props,
    run_with_kills,
    wait_for_all_counted,
)
from support import wait_for


def test_counts_are_exact_after_kill_9_of_each_process_mid_run(cli: Cli, tmp_path: Path) -> None:
    run_with_kills(
        cli,
        tmp_path,
        ["count", "words", "stmgr", "container", "tmaster"],
        words=12_000,
        rate=500,  # 24 s: five kills and recoveries fit in it on a loaded machine
    )


def test_alignment_past_its_bound_declines_the_checkpoint_and_loses_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    """The counter's input through a slow relay falls behind its direct input, so
    its markers come late and the direct input is held meanwhile: with a 4 KiB
    bound the checkpoints are declined, counted and logged; a kill -9 under
    that load is recovered; nothing is lost or counted twice; once the relay
    has caught up, checkpoints complete again."""
    words = 5_000
    extra = props(
        test_words=words,
        test_rate=1000,
        test_relay_secs=0.002,
        heron_stateful_alignment_buffer_bytes=4096,
        heron_stateful_checkpoint_timeout_secs=5,
    )
    name = "StatefulDeclined"
    with cli.submitted(
        TOPOLOGIES / "stateful.py", "SlowPathWordCount", *extra, name=name, output=tmp_path
    ):
        wait_for(lambda: checkpoint_status(cli, name).get("declined", 0) >= 1, 60, "a decline")
        kill_and_recover(cli, name, "count")  # and recovery goes on under backpressure
        counts = wait_for_all_counted(tmp_path, 2 * words, timeout=120)
        assert counts == expected_counts(words) + expected_counts(words)
        logs = "".join(p.read_text() for p in cli.log_dir(name).glob("stmgr-*.log"))
        assert "declined" in logs and "passed its bound" in logs
        assert "declined" in cli.verb("status", name).stdout


def test_a_restart_of_the_whole_topology_resumes_from_its_last_checkpoint(
    cli: Cli, tmp_path: Path
) -> None:
    words = 6_000
    name = "StatefulRestart"
    extra = props(test_words=words, test_rate=1500)
    with cli.submitted(STATEFUL, "StatefulWordCount", *extra, name=name, output=tmp_path):
        wait_for(lambda: checkpoint_status(cli, name).get("latest", -1) >= 2, 45, "checkpoints")
        before = checkpoint_status(cli, name)
        cli.verb("restart", name)  # every container: every process goes
        wait_for(
            lambda: checkpoint_status(cli, name).get("restored_from", -1) >= before["latest"],
            60,
            "a restore from the last checkpoint",
        )
        counts = wait_for_all_counted(tmp_path, words)
        assert counts == expected_counts(words)


def test_a_damaged_checkpoint_file_is_detected_and_the_previous_one_restored(
    cli: Cli, tmp_path: Path
) -> None:
    words = 6_000
    name = "StatefulDamaged"
    extra = props(
        test_words=words,
        test_rate=1000,
        heron_stateful_checkpoint_root=str(tmp_path / "store"),
    )
    with cli.submitted(STATEFUL, "StatefulWordCount", *extra, name=name, output=tmp_path / "out"):
        wait_for(lambda: checkpoint_status(cli, name).get("latest", -1) >= 2, 45, "checkpoints")
        # stop checkpoints from moving on while the latest one is damaged
        cli.verb("deactivate", name)
        latest = checkpoint_status(cli, name)["latest"]
        victim = next((tmp_path / "store" / name / "2").glob(f"{latest:012d}.*"))
        victim.write_bytes(victim.read_bytes()[:-3] + b"bad")
        kill_and_recover(cli, name, "count")
        status = checkpoint_status(cli, name)
        assert status["restored_from"] < latest
        cli.verb("activate", name)
        counts = wait_for_all_counted(tmp_path / "out", words)
        assert counts == expected_counts(words)
        logs = "".join(p.read_text() for p in cli.log_dir(name).glob("*.log"))
        assert "fails its checksum" in logs and "falling back" in logs


def test_submit_refuses_effectively_once_without_state(cli: Cli, tmp_path: Path) -> None:
    proc = cli.verb(
        "submit",
        str(TOPOLOGIES / "reliable.py"),
        "Chain",
        "--config-property",
        "topology.reliability.mode=EFFECTIVELY_ONCE",
        check=False,
    )
    assert proc.returncode == 1
    assert "EFFECTIVELY_ONCE needs a stateful topology" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_committed_counts_are_always_a_consistent_cut(cli: Cli, tmp_path: Path) -> None:
    """Every commit holds the counts as of one checkpoint: the words the spout had
    emitted by then, each exactly once (checked on every commit seen while it runs)."""
    words = 5_000
    name = "StatefulCut"
    extra = props(test_words=words, test_rate=1500)
    expected = expected_counts(words)
    with cli.submitted(STATEFUL, "StatefulWordCount", *extra, name=name, output=tmp_path):
        seen = 0

        def every_commit_a_cut() -> bool:
            nonlocal seen
            counts, checkpoints = committed(tmp_path)
            if len(set(checkpoints)) == 1 and len(checkpoints) == 2:
                # the same checkpoint everywhere: a prefix of the input, once each
                total = sum(counts.values())
                prefix = expected_counts(total)
                assert counts == prefix, f"checkpoint {checkpoints[0]}: not the first {total}"
                seen += 1
            return sum(counts.values()) >= words

        wait_for(every_commit_a_cut, 60, "every word committed", interval=0.1)
        assert seen >= 2
        assert committed(tmp_path)[0] == expected
        info = json.loads(cli.verb("status", name, "--format", "json").stdout)["checkpoints"]
        assert info["completed"] >= 2 and info["failed"] == 0
