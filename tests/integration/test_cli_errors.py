"""Bad input through the CLI: one clear line, non-zero exit, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cli_harness import EXAMPLES, TOPOLOGIES, Cli

BAD = TOPOLOGIES / "bad" / "unknown_input.py"


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        ("UnknownInput", "input component 'nosuch' does not exist"),
        ("UnknownStream", "component 'spout' declares no stream 'other'"),
        ("UndeclaredField", "fields(count) on spout:default, which has no field 'count'"),
        ("ZeroPar", "par must be an int >= 1, got 0"),
        (
            "not_a_topology",
            "'not_a_topology' is a int, not a Topology subclass, a TopologyBuilder",
        ),
        ("Missing", "defines no 'Missing'"),
    ],
)
def test_invalid_topologies_fail_with_one_line(cli: Cli, attr: str, message: str) -> None:
    proc = cli.run("submit", "local", str(BAD), attr, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert message in lines[0]
    assert "No topologies" in cli.run("list", "local").stdout
    assert not (cli.home / "topologies" / attr).exists()


def test_a_topology_class_without_spout_fails_at_import_as_in_heronpy(cli: Cli) -> None:
    no_spout = TOPOLOGIES / "bad" / "no_spout.py"
    proc = cli.run("submit", "local", str(no_spout), "NoSpout", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: no_spout.py failed to import: TopologyError: A Topology requires at least one "
        f"Spout (at {no_spout}, line 11)"
    )


def test_import_error_shows_the_users_exception(cli: Cli) -> None:
    bad = TOPOLOGIES / "bad" / "import_error.py"
    proc = cli.run("submit", "local", str(bad), "X", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: import_error.py failed to import: ImportError: "
        f"no module named 'left_pad' (raised by the user's file) (at {bad}, line 1)"
    )
    verbose = cli.run(
        "--verbose",
        "submit",
        "local",
        str(TOPOLOGIES / "bad" / "import_error.py"),
        "X",
        check=False,
    )
    assert "Traceback" in verbose.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "local", "nosuch.py", "X"], "does not exist"),
        (["submit", "nowhere", str(BAD), "UnknownInput"], "unknown cluster 'nowhere'"),
        (
            ["submit", "local", str(BAD), "ZeroPar", "--config-property", "topology.stmgrz=2"],
            "unknown config key 'topology.stmgrz'",
        ),
        (
            ["submit", "local", str(BAD), "ZeroPar", "--config-property", "topology.stmgrs=zero"],
            "'topology.stmgrs' must be an int >= 1, got 'zero'",
        ),
        (["kill", "local", "NoSuchTopology"], "no topology named 'NoSuchTopology'"),
        (["activate", "local", "NoSuchTopology"], "no topology named 'NoSuchTopology'"),
        (["status", "local", "NoSuchTopology"], "no topology named 'NoSuchTopology'"),
    ],
)
def test_bad_commands_fail_with_one_line(cli: Cli, args: list[str], message: str) -> None:
    proc = cli.run(*args, check=False)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr


def test_submit_of_an_existing_name_fails_and_leaves_it_running(cli: Cli) -> None:
    example = EXAMPLES / "exclamation.py"
    with cli.submitted(example, "ExclamationTopology") as name:
        proc = cli.run("submit", "local", str(example), "ExclamationTopology", check=False)
        assert proc.returncode == 1
        assert "already exists" in proc.stderr
        assert cli.status(name)["state"] == "RUNNING"


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    read, write = os.pipe()
    os.close(read)  # `heronpy-lite ... | head` once head has exited
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "heronpy_lite", "version"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")
