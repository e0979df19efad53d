"""The standby tmaster: ``kill -9`` of the active one, then of the whole
tmaster container, while tuples flow. A finite at-most-once topology still
delivers every tuple exactly once: the data path never needs the tmaster."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from support import pid_alive, wait_for
from zk_harness import (
    TOPOLOGIES,
    ZkCli,
    ZooKeeperServer,
    kill_all,
    open_gate,
    received,
    seqs,
    tmaster_processes,
)

#: the topology's session timeout: how long the node of a tmaster whose whole
#: container died outlives it
SESSION_TIMEOUT = 3


def active_tmaster(cli: ZkCli, name: str) -> dict[str, Any]:
    return cli.nodes_of(name).get(f"tmasters/{name}", {}).get("data") or {}


def log_of(cli: ZkCli, name: str, pid: int) -> str:
    for path in cli.log_dir(name).glob("tmaster-*.log"):
        text = path.read_text()
        if f"[{pid}]" in text:
            return "\n".join(line for line in text.splitlines() if f"[{pid}]" in line)
    return ""


def registered_with(cli: ZkCli, name: str, pid: int) -> bool:
    """Both stmgrs registered with tmaster ``pid``, and it broadcast the plan."""
    text = log_of(cli, name, pid)
    return all(f"stmgr of container {c} registered" in text for c in (1, 2)) and (
        "physical plan broadcast" in text
    )


@pytest.fixture(scope="module")
def topo(zookeeper: ZooKeeperServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    cli = ZkCli(tmp_path_factory.mktemp("home"), zookeeper, "/heronpy_lite_tests/failover")
    out = tmp_path_factory.mktemp("failover")
    with cli.submitted(
        TOPOLOGIES / "gated.py",
        "Gated",
        "--config-property",
        "test.rate=400",
        "--config-property",
        "test.tuples=4000",
        "--config-property",
        f"heron.statemgr.zookeeper.session.timeout.secs={SESSION_TIMEOUT}",
        name="Failover",
        output=out,
    ) as name:
        yield {"cli": cli, "name": name, "out": out}


def test_kill_9_of_the_active_tmaster_hands_over_to_the_standby(topo: dict[str, Any]) -> None:
    cli, name, out = topo["cli"], topo["name"], topo["out"]
    active = active_tmaster(cli, name)["pid"]
    pids = [p.pid for p in tmaster_processes(cli.status(name))]
    assert active in pids and len(pids) == 2
    (standby,) = [p for p in pids if p != active]
    assert "standby tmaster of Failover" in log_of(cli, name, standby)

    open_gate(out, 1500)  # about 4 s of tuples at 400/s
    wait_for(lambda: len(received(out)) >= 100, 20, "tuples flowing")
    killed_at = time.monotonic()
    os.kill(active, signal.SIGKILL)
    wait_for(lambda: active_tmaster(cli, name).get("pid") == standby, 15, "the standby active")
    took_over = time.monotonic() - killed_at
    wait_for(lambda: registered_with(cli, name, standby), 15, "stmgrs registered with it")
    reregistered = time.monotonic() - killed_at
    print(
        f"\ntmaster kill -9: standby active after {took_over:.2f}s, "
        f"stmgrs registered after {reregistered:.2f}s"
    )
    assert took_over < 5

    wait_for(lambda: len(received(out)) >= 1500, 30, "every tuple")
    assert seqs(out) == list(range(1500))
    # the killed one comes back, as the new standby; the new active answers control
    wait_for(
        lambda: (
            len(procs := tmaster_processes(cli.status(name))) == 2
            and active not in [p.pid for p in procs]
        ),
        20,
        "a new standby",
    )
    (new_standby,) = [p.pid for p in tmaster_processes(cli.status(name)) if p.pid != standby]
    wait_for(lambda: "standby tmaster" in log_of(cli, name, new_standby), 20, "it waits")
    assert "deactivated" in cli.run("deactivate", name).stdout
    assert cli.status(name)["state"] == "PAUSED"
    assert "activated" in cli.run("activate", name).stdout


def test_kill_9_of_the_whole_tmaster_container_hands_over_after_the_session_timeout(
    topo: dict[str, Any],
) -> None:
    cli, name, out = topo["cli"], topo["name"], topo["out"]
    info = cli.status(name)
    executor = psutil.Process(info["containers"][0]["executor_pid"])
    victims = [executor, *executor.children(recursive=True)]
    old_active = active_tmaster(cli, name)["pid"]
    assert old_active in [p.pid for p in victims]
    open_gate(out, 4000)
    wait_for(lambda: len(received(out)) >= 1600, 20, "tuples flowing")
    killed_at = time.monotonic()
    kill_all(victims)
    wait_for(
        lambda: active_tmaster(cli, name).get("pid") not in (None, old_active), 30, "a new tmaster"
    )
    took_over = time.monotonic() - killed_at
    new_active = active_tmaster(cli, name)["pid"]
    wait_for(lambda: registered_with(cli, name, new_active), 15, "stmgrs registered with it")
    print(
        f"\ntmaster container kill -9: new tmaster active after {took_over:.2f}s "
        f"(session timeout {SESSION_TIMEOUT}s)"
    )
    assert all(not pid_alive(p.pid) for p in victims)
    assert took_over < SESSION_TIMEOUT + 10
    wait_for(lambda: len(received(out)) >= 4000, 30, "every tuple")
    assert seqs(out) == list(range(4000))
    assert cli.status(name)["containers"][0]["executor_restarts"] == 1
