"""The local scheduler is not a single point of failure.

``kill -9`` of the scheduler leaves every container running: an executor
starts a new scheduler, which adopts the running executors, restarts the
ones that die from then on, and serves ``status``, ``restart`` and ``kill``.
Nothing is lost at least once meanwhile, and nothing is orphaned: containers
whose topology is gone end themselves.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
from cli_harness import TOPOLOGIES, Cli, count_lines
from support import pid_alive, wait_for
from test_reliability import AT_LEAST, acked, instance, props, sink_seqs

from heronpy_lite.config import EngineConfig
from heronpy_lite.scheduler.base import scheduler_for
from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.statemgr import open_state_manager

RELIABLE = TOPOLOGIES / "reliable.py"


def executors(info: dict[str, Any]) -> dict[int, int]:
    return {c["container"]: c["executor_pid"] for c in info["containers"]}


def every_pid(cli: Cli, name: str) -> set[int]:
    """The scheduler, every executor and everything they started."""
    info = cli.status(name)
    pids = {info["scheduler_pid"], *executors(info).values()}
    for pid in list(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            pids.update(p.pid for p in psutil.Process(pid).children(recursive=True))
    return pids


def test_kill_9_of_the_scheduler_keeps_the_topology_running_and_controllable(
    cli: Cli, tmp_path: Path
) -> None:
    n = 20_000
    extra = props(
        test_tuples=n,
        test_rate=2500,
        topology_message_timeout_secs=5,
        topology_max_spout_pending=2000,
    )
    with cli.submitted(
        RELIABLE, "Chain", *AT_LEAST, *extra, name="Failover", output=tmp_path
    ) as name:
        wait_for(lambda: count_lines(tmp_path, "sink-") >= 2000, 30, "mid-stream")
        before = cli.status(name)
        first = before["scheduler_pid"]
        os.kill(first, signal.SIGKILL)

        def new_scheduler() -> Any:
            pid = cli.status(name)["scheduler_pid"]
            return pid if pid != first and pid_alive(pid) else None

        second = wait_for(new_scheduler, 15, "a new scheduler")
        # the containers were adopted, not restarted
        assert executors(cli.status(name)) == executors(before)
        wait_for(lambda: len(acked(tmp_path)) == n, 90, f"all {n} trees acked")
        assert set(sink_seqs(tmp_path, "sink")) == set(range(n))  # zero lost
        assert acked(tmp_path) == Counter(range(n))
        assert instance(cli, name, "spout")["restarts"] == 0

        # the new scheduler supervises: a dead executor comes back
        victim = executors(cli.status(name))[1]
        os.kill(victim, signal.SIGKILL)

        def replaced() -> Any:
            info = cli.status(name)
            pid = executors(info)[1]
            running = all(
                i["state"] == "running" for c in info["containers"][1:] for i in c["instances"]
            )
            return pid != victim and pid_alive(pid) and running

        wait_for(replaced, 30, "executor 1 restarted by the new scheduler")
        # restart goes through it too
        old = executors(cli.status(name))[2]
        assert "Restarting container(s) 2" in cli.verb("restart", name, "2").stdout
        wait_for(lambda: executors(cli.status(name))[2] not in (old, None), 30, "container 2 back")
        assert cli.status(name)["scheduler_pid"] == second
        pids = every_pid(cli, name)
        assert len(pids) >= 10
    # kill (by cli.submitted) left nothing behind
    wait_for(lambda: not [p for p in pids if pid_alive(p)], 10, "every process gone")


def test_a_container_whose_topology_is_gone_ends_itself(cli: Cli, tmp_path: Path) -> None:
    extra = props(test_tuples=10**9, test_rate=200)
    with cli.submitted(RELIABLE, "Chain", *extra, name="Orphans", output=tmp_path) as name:
        wait_for(lambda: count_lines(tmp_path, "sink-") >= 10, 30, "tuples flowing")
        pids = every_pid(cli, name)
        scheduler = cli.status(name)["scheduler_pid"]
        # the scheduler dies, and the topology's state goes (no kill could find it)
        os.kill(scheduler, signal.SIGKILL)
        (cli.home / "state" / "topologies" / name).unlink()
        wait_for(lambda: not [p for p in pids if pid_alive(p)], 20, "every process gone")

        def strays() -> list[str]:
            return [
                " ".join(p.info["cmdline"])
                for p in psutil.process_iter(["cmdline", "status"])
                if name in " ".join(p.info["cmdline"] or [])
                and p.info["status"] != psutil.STATUS_ZOMBIE
            ]

        # a scheduler an executor started as it went finds no topology and exits too
        wait_for(lambda: not strays(), 10, "no process of the topology anywhere")


def test_update_runs_the_topology_with_a_new_packing_plan(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = props(test_tuples=10**9, test_rate=200)
    with cli.submitted(RELIABLE, "Chain", *extra, name="Update", output=tmp_path) as name:
        wait_for(lambda: count_lines(tmp_path, "sink-") >= 10, 30, "tuples flowing")
        monkeypatch.setenv("HERONPY_LITE_HOME", str(cli.home))
        sm = open_state_manager("localfs")
        try:
            engine = EngineConfig.from_config(sm.get_topology(name)["config"])
            packing = pack_round_robin(name, [("spout", 1), ("relay", 2), ("sink", 1)], 3)
            scheduler_for(sm, name, engine, cli.secret(name)).update(packing)
        finally:
            sm.close()

        def on_three_containers() -> Any:
            info = cli.status(name)
            return len(info["containers"]) == 4 and all(
                c["stmgr"] and all(i["state"] == "running" for i in c["instances"])
                for c in info["containers"][1:]
            )

        wait_for(on_three_containers, 60, "the topology on 3 containers")
        seen = count_lines(tmp_path, "sink-")
        wait_for(lambda: count_lines(tmp_path, "sink-") > seen + 20, 20, "tuples flowing again")
