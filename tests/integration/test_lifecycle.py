"""Lifecycle through the CLI: status, deactivate/activate, user errors,
restarts after initialize failures and kill -9, garbage on a stmgr port, kill."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
from cli_harness import TOPOLOGIES, Cli, closed_by_peer, count_lines, read_sinks
from support import pid_alive, wait_for

from heronpy_lite.security import authenticate_socket
from heronpy_lite.wire.frames import ControlFrame, FrameDecoder, encode_data
from heronpy_lite.wire.messages import HelloStmgr, RegisterInstance, Rejected, decode, encode


@pytest.fixture(scope="module")
def topo(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("control")
    with cli.submitted(TOPOLOGIES / "control.py", "Control", output=out, name="Control") as name:
        yield {"name": name, "out": out}


def instance(info: dict[str, Any], component: str) -> dict[str, Any]:
    for c in info["containers"]:
        for i in c.get("instances", []):
            if i["component"] == component:
                return i
    raise KeyError(component)


def events(out: Path) -> list[Any]:
    path = next(out.glob("spout-events-*.log"), None)
    if path is None:
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def test_list_and_status_show_the_running_topology(cli: Cli, topo: dict[str, Any]) -> None:
    assert "Control" in cli.run("list", "local").stdout
    info = cli.status(topo["name"])
    assert info["state"] == "RUNNING"
    assert [c["container"] for c in info["containers"]] == [0, 1, 2]
    assert info["containers"][0]["tmaster"]["port"] > 0
    for c in info["containers"][1:]:
        assert c["stmgr"]["port"] > 0 and c["stmgr"]["pid"] > 0
    text = cli.run("status", "local", topo["name"]).stdout
    assert "tmaster" in text and "stmgr" in text and "sink[1]" in text


def test_initialize_failure_restarts_the_instance_and_status_shows_it(
    cli: Cli, topo: dict[str, Any]
) -> None:
    flaky = wait_for(
        lambda: (i := instance(cli.status(topo["name"]), "flaky"))["state"] == "running" and i,
        30,
        "flaky bolt running",
    )
    assert flaky["restarts"] >= 1
    assert "first start fails on purpose" in flaky["error"]


def test_user_exceptions_and_bad_emits_are_logged_and_the_bolt_keeps_running(
    cli: Cli, topo: dict[str, Any]
) -> None:
    out = topo["out"]
    wait_for(lambda: count_lines(out, "after_bad-") >= 100, 30, "100 tuples after BadBolt")
    forwarded = [v[1] for rs in read_sinks(out)["after_bad"].values() for *_, v in rs]
    assert forwarded and all(s % 10 not in (0, 1) for s in forwarded)
    # every seq up to the last forwarded one, except the bad ones, got through
    last = max(forwarded)
    assert sorted(forwarded) == [s for s in range(last + 1) if s % 10 not in (0, 1)]
    log = next(cli.log_dir(topo["name"]).glob("instance-bad-*.log")).read_text()
    assert "ValueError: bad tuple 0" in log
    assert "emits 1 values on stream 'default', which declares 3 fields" in log


def test_deactivate_stops_the_spout_and_activate_resumes_it(cli: Cli, topo: dict[str, Any]) -> None:
    name, out = topo["name"], topo["out"]
    wait_for(lambda: count_lines(out, "sink-") > 50, 30, "tuples flowing")
    assert "deactivated" in cli.run("deactivate", "local", name).stdout
    stopped_at = wait_for(
        lambda: [e[1] for e in events(out) if e[0] == "deactivate"], 10, "spout.deactivate() called"
    )[-1]
    # everything emitted before deactivate drains to the sink, then nothing more
    wait_for(lambda: count_lines(out, "sink-") == stopped_at, 10, "in-flight tuples drained")
    assert cli.status(name)["state"] == "PAUSED"
    with pytest.raises(AssertionError):
        wait_for(lambda: count_lines(out, "sink-") > stopped_at, 1.0, "no new tuples")
    assert "activated" in cli.run("activate", "local", name).stdout
    wait_for(lambda: [e for e in events(out) if e[0] == "activate"], 10, "spout.activate()")
    wait_for(lambda: count_lines(out, "sink-") > stopped_at + 20, 10, "tuples flowing again")
    cli.run("deactivate", "local", name)
    stopped_again = wait_for(
        lambda: [e[1] for e in events(out) if e[0] == "deactivate"][1:], 10, "second deactivate"
    )[-1]
    wait_for(lambda: count_lines(out, "sink-") == stopped_again, 10, "drained again")
    seqs = sorted(v[1] for rs in read_sinks(out)["sink"].values() for *_, v in rs)
    assert seqs == list(range(stopped_again))  # nothing lost, nothing duplicated
    cli.run("activate", "local", name)


def test_kill_9_of_an_instance_is_followed_by_its_restart(cli: Cli, topo: dict[str, Any]) -> None:
    name, out = topo["name"], topo["out"]
    before = instance(cli.status(name), "after_bad")
    os.kill(before["pid"], signal.SIGKILL)
    after = wait_for(
        lambda: (
            (i := instance(cli.status(name), "after_bad"))["pid"] != before["pid"]
            and i["state"] == "running"
            and i
        ),
        30,
        "restart",
    )
    assert after["restarts"] == before["restarts"] + 1
    seen = count_lines(out, "after_bad-")
    wait_for(lambda: count_lines(out, "after_bad-") > seen + 20, 20, "tuples after restart")


def test_garbage_on_a_stmgr_port_closes_that_connection_only(
    cli: Cli, topo: dict[str, Any]
) -> None:
    name, out = topo["name"], topo["out"]
    stmgr = cli.status(name)["containers"][1]["stmgr"]
    for garbage in (b"\xff" * 64, b"\x00\x00\x00\x05\x09hello", b"\x7f\xff\xff\xff\x01"):
        with socket.create_connection((stmgr["host"], stmgr["port"]), timeout=5) as sock:
            sock.sendall(garbage)
            assert closed_by_peer(sock)  # the stmgr closed it
    # someone with the secret: a well-framed batch whose body is not msgpack, to the sink
    secret = cli.secret(name)
    sink_task = instance(cli.status(name), "sink")["task_id"]
    with socket.create_connection((stmgr["host"], stmgr["port"]), timeout=5) as sock:
        authenticate_socket(sock, secret)
        sock.sendall(encode(RegisterInstance(name, 999, "intruder", 1, 0)))
        (reply,) = FrameDecoder().feed(sock.recv(1000))
        assert isinstance(reply, ControlFrame)
        assert isinstance(decode(reply.payload), Rejected)  # task 999 is not in this container
    with socket.create_connection((stmgr["host"], stmgr["port"]), timeout=5) as sock:
        authenticate_socket(sock, secret)
        sock.sendall(encode(HelloStmgr(name, 2)))
        sock.sendall(encode_data(sink_task, 2, "default", b"\xc1\xc1 not msgpack"))
    tmaster = cli.status(name)["containers"][0]["tmaster"]
    with socket.create_connection((tmaster["host"], tmaster["port"]), timeout=5) as sock:
        sock.sendall(b"\x00\x00\x00\x03\x01ab")  # a DATA frame to the tmaster
        assert closed_by_peer(sock)
    seen = count_lines(out, "sink-")
    wait_for(lambda: count_lines(out, "sink-") > seen + 20, 20, "tuples still flowing")
    info = cli.status(name)
    assert info["containers"][1]["stmgr"]["pid"] == stmgr["pid"]
    assert info["containers"][0]["tmaster"]["pid"] == tmaster["pid"]
    assert instance(info, "sink")["restarts"] == 0
    wait_for(
        lambda: any(
            "dropped a batch from task 2" in p.read_text()
            for p in cli.log_dir(name).glob("instance-sink-*.log")
        ),
        10,
        "the bad batch logged by the sink",
    )
    log = (cli.log_dir(name) / "stmgr-1.log").read_text()
    assert "protocol error" in log


def test_kill_9_of_a_stream_manager_is_followed_by_its_restart(
    cli: Cli, topo: dict[str, Any]
) -> None:
    name, out = topo["name"], topo["out"]
    before = cli.status(name)["containers"][2]["stmgr"]
    os.kill(before["pid"], signal.SIGKILL)

    def recovered() -> Any:
        info = cli.status(name)
        stmgr = info["containers"][2]["stmgr"]
        instances = info["containers"][2]["instances"]
        return stmgr["pid"] != before["pid"] and all(i["state"] == "running" for i in instances)

    wait_for(recovered, 30, "stmgr 2 restarted and its instances reconnected")
    assert cli.status(name)["containers"][2]["stmgr"]["port"] == before["port"]
    seen = count_lines(out, "sink-")
    wait_for(lambda: count_lines(out, "sink-") > seen + 50, 20, "tuples flowing through both")
    counts = {t: len(r) for t, r in read_sinks(out)["sink"].items()}
    wait_for(
        lambda: all(len(r) > counts[t] for t, r in read_sinks(out)["sink"].items()),
        20,
        "both sink tasks receiving",
    )


def test_restart_of_the_tmaster_container_keeps_the_topology_controllable(
    cli: Cli, topo: dict[str, Any]
) -> None:
    name, out = topo["name"], topo["out"]
    old = cli.status(name)["containers"][0]["tmaster"]
    before = len([e for e in events(out) if e[0] == "deactivate"])
    assert "Restarting container(s) 0" in cli.run("restart", "local", name, "0").stdout
    wait_for(
        lambda: (
            (cli.status(name)["containers"][0]["tmaster"] or {}).get("pid")
            not in (None, old["pid"])
        ),
        30,
        "a new tmaster",
    )
    wait_for(
        lambda: cli.run("deactivate", "local", name, check=False).returncode == 0,
        30,
        "the new tmaster accepts deactivate",
    )
    wait_for(
        lambda: len([e for e in events(out) if e[0] == "deactivate"]) == before + 1,
        20,
        "the spout deactivated by the new tmaster",
    )
    assert cli.status(name)["state"] == "PAUSED"
    cli.run("activate", "local", name)
    seen = count_lines(out, "sink-")
    wait_for(lambda: count_lines(out, "sink-") > seen + 20, 20, "tuples flowing again")


def test_restart_of_a_container_restarts_its_processes(cli: Cli, topo: dict[str, Any]) -> None:
    name, out = topo["name"], topo["out"]
    before = cli.status(name)["containers"][1]
    old_pids = {
        before["executor_pid"],
        before["stmgr"]["pid"],
        *(i["pid"] for i in before["instances"]),
    }
    cli.run("restart", "local", name, "1")

    def restarted() -> Any:
        c = cli.status(name)["containers"][1]
        pids = {
            c["executor_pid"],
            (c["stmgr"] or {}).get("pid"),
            *(i["pid"] for i in c["instances"]),
        }
        return not pids & old_pids and all(i["state"] == "running" for i in c["instances"])

    wait_for(restarted, 40, "container 1 restarted")
    assert all(not pid_alive(p) for p in old_pids)
    seen = count_lines(out, "sink-")
    wait_for(lambda: count_lines(out, "sink-") > seen + 20, 20, "tuples flowing again")


def test_deploy_deactivated_then_activate_and_kill_leaves_no_process_behind(
    cli: Cli, tmp_path: Path
) -> None:
    with cli.submitted(
        TOPOLOGIES / "control.py",
        "Control",
        "--deploy-deactivated",
        name="KillMe",
        output=tmp_path,
    ) as name:
        assert cli.status(name)["state"] == "PAUSED"
        with pytest.raises(AssertionError):
            wait_for(lambda: count_lines(tmp_path, "sink-") > 0, 1.0, "no tuple while paused")
        cli.run("activate", "local", name)
        wait_for(lambda: count_lines(tmp_path, "sink-") > 10, 20, "tuples after activate")
        pids = cli.pids(name)
        assert len(pids) >= 11  # scheduler, 3 executors, tmaster, 2 stmgrs, 5 instances
        assert all(pid_alive(p) for p in pids)
        assert "killed" in cli.run("kill", "local", name).stdout
        assert [p for p in pids if pid_alive(p)] == []
        assert "KillMe" not in cli.run("list", "local").stdout
        assert not list((cli.home / "state").glob(f"*/{name}"))
