"""Failure detection of containers: a stream manager that stops
heartbeating is dropped from the physical plan and comes back by
registering again; a whole container killed with ``kill -9`` is restarted
by the scheduler, re-registers from its new address, and the topology's
output is complete without restarting the topology."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from support import pid_alive, wait_for
from zk_harness import TOPOLOGIES, ZkCli, ZooKeeperServer, kill_all, open_gate, received, seqs

HEARTBEAT_TIMEOUT = 2


@pytest.fixture(scope="module")
def topo(zookeeper: ZooKeeperServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    cli = ZkCli(tmp_path_factory.mktemp("home"), zookeeper, "/heronpy_lite_tests/containers")
    out = tmp_path_factory.mktemp("containers")
    with cli.submitted(
        TOPOLOGIES / "gated.py",
        "Gated",
        "--config-property",
        "heron.stmgr.heartbeat.interval.secs=0.5",
        "--config-property",
        f"heron.tmaster.stmgr.heartbeat.timeout.secs={HEARTBEAT_TIMEOUT}",
        name="Containers",
        output=out,
    ) as name:
        yield {"cli": cli, "name": name, "out": out}


def plan_stmgrs(cli: ZkCli, name: str) -> dict[int, list[Any]]:
    """Container -> [container, host, port, pid] in the plan the tmaster published."""
    plan = cli.nodes_of(name)[f"pplans/{name}"]["data"]
    return {int(s[0]): s for s in plan["stmgrs"]}


def test_a_stmgr_that_stops_heartbeating_is_dropped_and_registers_again(
    topo: dict[str, Any],
) -> None:
    cli, name, out = topo["cli"], topo["name"], topo["out"]
    open_gate(out, 200)
    wait_for(lambda: len(received(out)) >= 200, 30, "200 tuples")
    stmgr = cli.status(name)["containers"][2]["stmgr"]
    os.kill(stmgr["pid"], signal.SIGSTOP)  # alive, connected, silent
    try:
        wait_for(lambda: 2 not in plan_stmgrs(cli, name), HEARTBEAT_TIMEOUT + 15, "stmgr 2 dropped")
        assert cli.status(name)["containers"][2]["stmgr"] is None
    finally:
        os.kill(stmgr["pid"], signal.SIGCONT)
    wait_for(lambda: 2 in plan_stmgrs(cli, name), 20, "stmgr 2 registered again")
    assert plan_stmgrs(cli, name)[2][3] == stmgr["pid"]
    tmaster_log = (cli.log_dir(name) / "tmaster-a.log").read_text() + (
        cli.log_dir(name) / "tmaster-b.log"
    ).read_text()
    assert "stmgr of container 2 sent no heartbeat" in tmaster_log
    open_gate(out, 400)
    wait_for(lambda: len(received(out)) >= 400, 30, "400 tuples")
    assert seqs(out) == list(range(400))


def test_kill_9_of_a_whole_container_restarts_it_and_loses_nothing(
    topo: dict[str, Any],
) -> None:
    cli, name, out = topo["cli"], topo["name"], topo["out"]
    open_gate(out, 600)
    wait_for(lambda: len(received(out)) >= 600, 30, "600 tuples")
    before = cli.status(name)["containers"][2]
    executor = psutil.Process(before["executor_pid"])
    victims = [executor, *executor.children(recursive=True)]
    assert before["stmgr"]["pid"] in [p.pid for p in victims]
    assert {i["pid"] for i in before["instances"]} <= {p.pid for p in victims}
    # nothing in flight (the gate is closed): at-most-once loses only that
    kill_all(victims)
    old = {p.pid for p in victims}

    def back() -> bool:
        c = cli.status(name)["containers"][2]
        stmgr = c["stmgr"] or {}
        return (
            c["executor_pid"] not in (None, *old)
            and stmgr.get("pid") not in (None, *old)
            and all(i["state"] == "running" and i["pid"] not in old for i in c["instances"])
        )

    wait_for(back, 40, "container 2 restarted and registered")
    assert all(not pid_alive(p) for p in old)
    after = cli.status(name)["containers"][2]
    assert after["executor_restarts"] == before["executor_restarts"] + 1
    assert plan_stmgrs(cli, name)[2][3] == after["stmgr"]["pid"]
    open_gate(out, 1200)
    wait_for(lambda: len(received(out)) >= 1200, 30, "1200 tuples")
    assert seqs(out) == list(range(1200))
