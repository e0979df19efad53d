"""The rough edges a new user hit (issue 16, item 5), each through the CLI as a
user runs it: a failed submit that reports at once and cleans up even when
Ctrl-C is pressed twice; progress and the right message for
``--deploy-deactivated`` on a terminal; a typo in a key's prefix; log
rotation; ``sys.exit`` in ``process``; ``kill`` emptying the file_sd file;
``--verbose`` after the verb."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli_harness import TOPOLOGIES, Cli
from support import pid_alive, wait_for

EDGES = TOPOLOGIES / "edges.py"


def test_a_failed_submit_reports_at_once_and_leaves_nothing(cli: Cli) -> None:
    began = time.monotonic()
    # with the old wait on its unreaped scheduler, this took kill.timeout + 5 = 35 s more
    proc = cli.verb(
        "submit",
        str(EDGES),
        "FailsToStart",
        "--config-property",
        "heron.kill.timeout.secs=30",
        check=False,
    )
    elapsed = time.monotonic() - began
    assert proc.returncode == 1
    assert "keeps failing: initialize() raised RuntimeError: no database" in proc.stderr
    assert elapsed < 30, elapsed
    assert "No topologies" in cli.verb("list").stdout


def test_a_second_ctrl_c_does_not_cut_the_clean_up_short(cli: Cli) -> None:
    # a spout sleeping 2 s in next_tuple takes that long to stop: time for a second Ctrl-C
    slow = ["--config-property", "test.next_tuple.sleep=2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "heronpy_lite", "submit", "local", str(EDGES), "Edges", *slow],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    scheduler = cli.home / "state" / "schedulers" / "Edges"
    spout_log = cli.log_dir("Edges") / "instance-chatty-1.log"
    try:
        wait_for(
            lambda: spout_log.exists() and "initialized" in spout_log.read_text(),
            30,
            "the spout running",
        )
        pid = json.loads(scheduler.read_text())["pid"]
        proc.send_signal(signal.SIGINT)
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "stopping what was started" in line, line
        proc.send_signal(signal.SIGINT)  # the user presses Ctrl-C again
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and "still stopping" in rest, rest
    assert "No topologies" in cli.verb("list").stdout
    wait_for(lambda: not pid_alive(pid), 10, "the scheduler gone")


def _on_a_terminal(cli: Cli, *args: str) -> tuple[int, str]:
    """Run ``heronpy-lite ARGS`` with a pseudo-terminal as stdout and stderr."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "heronpy_lite", *args],
        env=cli.env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the other end closed
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        proc.wait(10)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode(errors="replace")


def test_a_deactivated_deploy_on_a_terminal_and_its_life(cli: Cli) -> None:
    code, out = _on_a_terminal(
        cli,
        "submit",
        "local",
        str(EDGES),
        "Edges",
        "--deploy-deactivated",
        "--config-property",
        "topolgy.stmgrs=1",  # a typo in the prefix
        "--config-property",
        "test.exit=true",
        "--config-property",
        "heron.logging.maximum.size.mb=0.01",
        "--config-property",
        "heron.logging.maximum.files=2",
    )
    try:
        assert code == 0, out
        assert "did you mean 'topology.stmgrs'?" in out
        assert "\r\x1b[Kstarting Edges: " in out and "instances running" in out  # progress
        assert "is deployed deactivated" in out and "is running" not in out
        assert "heronpy-lite activate local Edges" in out
        assert cli.status("Edges")["state"] == "PAUSED"

        cli.verb("activate", "Edges")

        # sys.exit(3) in process(): status says so, and the executor restarts the bolt
        def exited() -> str:
            info = cli.status("Edges")
            (bolt,) = [i for i in info["containers"][1]["instances"] if i["component"] == "exiter"]
            return str(bolt["error"] or "")

        error = wait_for(exited, 60, "the bolt's SystemExit in status")
        assert error.startswith("SystemExit(3) raised in process() at edges.py:"), error

        # the chatty spout's log rotated: 10 KB files, two old ones kept
        logs = cli.log_dir("Edges")
        spout_log = logs / "instance-chatty-1.log"
        wait_for(lambda: (logs / "instance-chatty-1.log.2").exists(), 60, "two rotations")
        assert not (logs / "instance-chatty-1.log.3").exists()
        for path in [spout_log, *logs.glob("instance-chatty-1.log.*")]:
            assert path.stat().st_size < 12_000, path

        targets = Path(cli.status("Edges")["scrape_targets_file"])
        wait_for(lambda: targets.exists() and json.loads(targets.read_text()), 30, "targets")
    finally:
        cli.verb("kill", "Edges")
    assert not targets.exists()  # kill takes its endpoints out of Prometheus' sight


def test_verbose_is_accepted_after_the_verb(cli: Cli) -> None:
    proc = cli.run("status", "local", "NoSuchTopology", "--verbose", check=False)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "no topology named 'NoSuchTopology'" in proc.stderr
    quiet = cli.run("status", "local", "NoSuchTopology", check=False)
    assert "Traceback" not in quiet.stderr
