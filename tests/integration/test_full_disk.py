"""A full disk, for real: the working root on a 16 MiB tmpfs that this module
mounts (CI runs as root) and fills while a topology runs at least once.

While the disk is full: a metrics manager and a stream manager are killed
(``kill -9``) and come back, and every process keeps running (the scheduler
did not: it died of its scrape-targets write, taking the topology with it; a
restarted stream manager crash-looped on its port file); tuples keep being
acked; ``status`` works and says the disk is full; a second ``submit`` fails
with one line and leaves no node; no temporary file stays behind. Once
space is freed: every tree is acked and every acked tuple is at the sink
(its output folder is not on the tmpfs), ``kill`` leaves no process, no node
and no file but the logs, and the name of the failed submit is free.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from cli_harness import TOPOLOGIES, Cli, read_sinks
from support import pid_alive, wait_for

RELIABLE = TOPOLOGIES / "reliable.py"
TMPFS_SIZE = "16m"
N = 2400


def _mount(where: Path) -> None:
    where.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755", "tmpfs", str(where)],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small tmpfs of our own, unmounted afterwards (whatever is left running on it
    stopped first)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the full-disk test needs root to mount a tmpfs (CI runs as root)")
        pytest.skip("the full-disk test needs root to mount a tmpfs")
    where = (tmp_path_factory.mktemp("disk") / "root").resolve()
    _mount(where)
    try:
        yield where
    finally:
        try:
            for pid in processes(where):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not processes(where), 10, "nothing left running on the tmpfs")
        finally:
            subprocess.run(["umount", str(where)], check=False, capture_output=True)
            if os.path.ismount(where):  # still busy: detach it now, gone once unused
                subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; the file that does it."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * size)
    free = shutil.disk_usage(disk).free
    assert free == 0, f"{free} bytes still free"
    # and nothing can be written, not even one byte in a new file
    with pytest.raises(OSError) as err, open(disk / "probe", "wb", buffering=0) as probe:
        probe.write(b"x")
    assert err.value.errno == errno.ENOSPC
    (disk / "probe").unlink(missing_ok=True)
    return filler


def processes(home: Path, name: str | None = None) -> dict[int, list[str]]:
    """pid -> command line of every live process started under ``home`` (every
    engine process has it as HERONPY_LITE_HOME), of topology ``name`` if given."""
    found = {}
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if p.environ().get("HERONPY_LITE_HOME") != str(home):
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        argv = p.info["cmdline"] or []
        if name is None or ("--topology" in argv and argv[argv.index("--topology") + 1] == name):
            found[p.info["pid"]] = argv
    return found


def role(procs: dict[int, list[str]], module: str, container: int | None = None) -> list[int]:
    out = []
    for pid, argv in procs.items():
        if f"heronpy_lite.{module}" not in argv:
            continue
        if container is not None and argv[argv.index("--container") + 1] != str(container):
            continue
        out.append(pid)
    return sorted(out)


def listed(cli: Cli) -> list[str]:
    """The names ``list`` shows (under its header)."""
    return [line.split()[0] for line in cli.verb("list").stdout.splitlines()[1:] if line]


def temporary_files(home: Path) -> set[str]:
    return {str(p) for p in home.rglob("*") if ".tmp" in p.name}


def acked(folder: Path) -> Counter[int]:
    out: Counter[int] = Counter()
    for path in folder.glob("spout-*.events"):
        with open(path) as f:
            out.update(e[1] for e in map(json.loads, f) if e[0] == "ack")
    return out


def test_every_process_survives_a_full_disk_and_kill_cleans_up(disk: Path, tmp_path: Path) -> None:
    cli = Cli(disk)
    out = tmp_path / "out"
    props = [
        "topology.reliability.mode=ATLEAST_ONCE",
        f"test.tuples={N}",
        "test.rate=200",
        "topology.message.timeout.secs=5",
        f"test.output.dir={out}",
    ]
    argv = [a for p in props for a in ("--config-property", p)]
    cli.verb("submit", str(RELIABLE), "Chain", *argv)
    before: dict[int, list[str]] = {}
    try:
        wait_for(lambda: len(acked(out)) >= 300, 60, "tuples acked before the disk fills")
        before = processes(disk, "Chain")
        scheduler = role(before, "scheduler.local")
        assert len(scheduler) == 1

        filler = fill(disk)

        # kill -9 of a metrics manager: the scheduler used to die of its targets file
        (metricsmgr,) = role(before, "metrics", 1)
        os.kill(metricsmgr, signal.SIGKILL)
        wait_for(
            lambda: [p for p in role(processes(disk, "Chain"), "metrics", 1) if p != metricsmgr],
            30,
            "the metrics manager restarted",
        )
        # kill -9 of a stream manager: its successor used to crash-loop on its port file
        (stmgr,) = role(before, "stmgr", 2)
        os.kill(stmgr, signal.SIGKILL)
        new_stmgr = wait_for(
            lambda: [p for p in role(processes(disk, "Chain"), "stmgr", 2) if p != stmgr],
            30,
            "the stream manager restarted",
        )
        acked_then = len(acked(out))
        # tuples keep being acked through the new stream manager, on a full disk
        wait_for(lambda: len(acked(out)) >= acked_then + 300, 60, "acks while the disk is full")
        now = processes(disk, "Chain")
        assert role(now, "stmgr", 2) == new_stmgr, "the new stream manager keeps running"
        assert role(now, "scheduler.local") == scheduler, "the scheduler keeps running"
        assert len(role(now, "scheduler.executor")) == 3
        assert len(role(now, "instance")) == 4

        status = cli.verb("status", "Chain")
        assert "has 0 KiB free: processes keep running" in status.stdout

        # a submit on the full disk: one line, nothing left behind
        failed = cli.verb("submit", str(RELIABLE), "Pending", "--name", "Later", check=False)
        assert failed.returncode == 1
        assert failed.stderr.count("\n") == 1 and failed.stderr.startswith("error: "), failed
        assert "No space left on device" in failed.stderr
        assert listed(cli) == ["Chain"]

        # no temporary file stays behind: each one seen now is gone soon (a write
        # that failed removed it, or one in progress finished)
        first = temporary_files(disk)
        wait_for(lambda: not first & temporary_files(disk), 10, "no temporary file left")

        filler.unlink()
        wait_for(lambda: set(acked(out)) == set(range(N)), 120, f"all {N} trees acked")
    finally:
        kill = cli.verb("kill", "Chain", check=False)
    assert kill.returncode == 0, kill.stderr
    # every acked tuple is at the sink, and each tree was acked exactly once
    assert acked(out) == Counter(range(N))
    sink = {r[0] for rs in read_sinks(out).get("sink", {}).values() for r in rs}
    assert sink >= set(range(N))
    # kill leaves nothing: no process, no node, no temporary file
    assert processes(disk, "Chain") == {}
    assert not any(pid_alive(p) for p in before)
    state = disk / "state"
    assert [p for p in state.rglob("*") if p.is_file()] == []
    assert temporary_files(disk) == set()
    # the failed submit's name is free
    with cli.submitted(RELIABLE, "Pending", name="Later", output=out):
        assert listed(cli) == ["Later"]
    assert processes(disk, "Later") == {}
