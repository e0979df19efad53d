"""Authenticated links, with real processes: every listening port of a running
topology refuses a client that does not know the topology's secret, and one
that knows a wrong one, with one log line and nothing else disturbed; the
secret is nowhere in the state manager; binding beyond loopback with
authentication off is refused at submit. And, with authentication off (on
loopback), the plan hijack of issue 19 fails: a stranger registering as a
container's stream manager or a task's instance is refused, no tuple reaches
it, and every acked tuple is at the sink.
"""

from __future__ import annotations

import random
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_harness import TOPOLOGIES, Cli, closed_by_peer, count_lines
from support import wait_for
from test_reliability import AT_LEAST, acked, props, sink_seqs

from heronpy_lite.errors import AuthenticationFailed
from heronpy_lite.security import authenticate_socket
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.acking import AckBatch
from heronpy_lite.wire.frames import ControlFrame, DataFrame, FrameDecoder, encode_ack

RELIABLE = TOPOLOGIES / "reliable.py"
N = 5000


def ports(cli: Cli, name: str) -> dict[str, tuple[str, int]]:
    """Every port the topology listens on: tmaster, stream managers, metrics snapshots."""
    info = cli.status(name)
    found = {"tmaster": (info["containers"][0]["tmaster"]["host"], 0)}
    found["tmaster"] = (found["tmaster"][0], info["containers"][0]["tmaster"]["port"])
    for c in info["containers"]:
        if c["container"]:
            found[f"stmgr {c['container']}"] = (c["stmgr"]["host"], c["stmgr"]["port"])
        port_file = cli.home / "topologies" / name / f"metricsmgr-{c['container']}.port"
        found[f"metrics {c['container']}"] = ("127.0.0.1", int(port_file.read_text()))
    return found


def pids(cli: Cli, name: str) -> list[int]:
    return sorted(cli.pids(name))


@pytest.fixture(scope="module")
def secured(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    out = tmp_path_factory.mktemp("secured")
    extra = props(test_tuples=10**9, test_rate=300)
    with cli.submitted(RELIABLE, "Chain", *extra, name="Secured", output=out) as name:
        wait_for(lambda: count_lines(out, "sink-") > 20, 30, "tuples flowing")
        yield {"name": name, "out": out}


def test_every_port_refuses_a_client_without_the_secret_or_with_a_wrong_one(
    cli: Cli, secured: dict[str, Any]
) -> None:
    name, out = secured["name"], secured["out"]
    before = pids(cli, name)
    listening = ports(cli, name)
    assert len(listening) == 6  # tmaster, 2 stream managers, 3 metrics managers
    for what, address in listening.items():
        # what a stranger would send first on each port, without any handshake
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(m.encode(m.ControlRequest("deactivate")))
            sock.sendall(m.encode(m.MetricsSnapshot("task-1", [])))
            assert closed_by_peer(sock), what
        with socket.create_connection(address, timeout=5) as sock:
            sock.settimeout(5)
            with pytest.raises((AuthenticationFailed, ConnectionError)):
                authenticate_socket(sock, b"not the secret".ljust(32))
            assert closed_by_peer(sock), what
    assert cli.status(name)["state"] == "RUNNING"  # the deactivate was not obeyed
    logs = {p.name: p.read_text() for p in cli.log_dir(name).glob("*.log")}
    failures = sum(text.count("authentication failed: wrong secret") for text in logs.values())
    assert failures == len(listening)  # one line each
    seen = count_lines(out, "sink-")
    wait_for(lambda: count_lines(out, "sink-") > seen + 20, 20, "tuples still flowing")
    assert pids(cli, name) == before  # nothing restarted


def test_the_secret_is_kept_by_the_cli_only(cli: Cli, secured: dict[str, Any]) -> None:
    name = secured["name"]
    (path,) = cli.home.glob(f"secrets/*/{name}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    secret = cli.secret(name)
    for node in (cli.home / "state").rglob("*"):
        if node.is_file():
            data = node.read_bytes()
            assert secret.hex().encode() not in data and secret not in data, node
    # and it works: the CLI's control requests authenticate with it
    assert "deactivated" in cli.verb("deactivate", name).stdout
    assert "activated" in cli.verb("activate", name).stdout


def test_binding_beyond_loopback_without_authentication_is_refused(
    cli: Cli, tmp_path: Path
) -> None:
    proc = cli.verb(
        "submit",
        str(RELIABLE),
        "Chain",
        "--name",
        "Open",
        "--config-property",
        "heron.network.bind.host=0.0.0.0",
        "--config-property",
        "heron.network.authentication=false",
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: refusing to listen on 0.0.0.0 with heron.network.authentication false: "
        "anyone who can reach it could inject tuples; turn authentication on or bind 127.0.0.1"
    ]
    assert "Open" not in cli.verb("list").stdout


def holds(container: dict[str, Any], component: str) -> bool:
    return any(i["component"] == component for i in container["instances"])


class Hijacker:
    """Issue 19's attack, written here: every 0.3 s register as the stream manager of
    ``container`` at the tmaster with our own listening address, and as its task at
    its stream manager; count every tuple anyone sends us."""

    def __init__(self, name: str, container: int, tmaster: tuple[str, int]) -> None:
        self.name, self.container, self.tmaster = name, container, tmaster
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.rejections: list[str] = []
        self.stolen_tuples = 0
        self.stop = threading.Event()

    def listen(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                decoder = FrameDecoder()
                try:
                    while data := conn.recv(65536):
                        for frame in decoder.feed(data):
                            if isinstance(frame, DataFrame):
                                self.stolen_tuples += frame.tuples
                except OSError:
                    pass

    def register(self) -> None:
        port = self.server.getsockname()[1]
        register = m.RegisterStmgr(self.name, self.container, "127.0.0.1", port, 4242, 0, [])
        while not self.stop.wait(0.3):
            try:
                with socket.create_connection(self.tmaster, timeout=2) as sock:
                    sock.sendall(m.encode(register))
                    for frame in FrameDecoder().feed(sock.recv(65536)):
                        assert isinstance(frame, ControlFrame)
                        reply = m.decode(frame.payload)
                        if isinstance(reply, m.Rejected):
                            self.rejections.append(reply.reason)
            except OSError:
                pass


def test_the_plan_cannot_be_hijacked_and_nothing_is_acked_but_lost(
    cli: Cli, tmp_path: Path
) -> None:
    extra = props(
        test_tuples=N,
        test_rate=500,
        topology_message_timeout_secs=3,
        topology_max_spout_pending=2000,
        heron_network_authentication="false",
    )
    with cli.submitted(
        RELIABLE, "Chain", *AT_LEAST, *extra, name="Hijack", output=tmp_path
    ) as name:
        wait_for(lambda: count_lines(tmp_path, "sink-") >= 200, 30, "mid-stream")
        info = cli.status(name)
        sink_container = next(
            c
            for c in info["containers"][1:]
            if any(i["component"] == "sink" for i in c["instances"])
        )
        spout_container = next(
            c
            for c in info["containers"][1:]
            if any(i["component"] == "spout" for i in c["instances"])
        )
        tmaster = info["containers"][0]["tmaster"]
        hijacker = Hijacker(name, sink_container["container"], (tmaster["host"], tmaster["port"]))
        threads = [threading.Thread(target=t) for t in (hijacker.listen, hijacker.register)]
        for thread in threads:
            thread.start()
        try:
            # the sink's task, claimed at its own stream manager
            sink_task = next(
                i["task_id"] for i in sink_container["instances"] if i["component"] == "sink"
            )
            stmgr = sink_container["stmgr"]
            with socket.create_connection((stmgr["host"], stmgr["port"]), timeout=5) as sock:
                sock.sendall(m.encode(m.RegisterInstance(name, sink_task, "sink", 4243, 0)))
                (reply,) = FrameDecoder().feed(sock.recv(65536))
                assert isinstance(reply, ControlFrame)
                rejected = m.decode(reply.payload)
                assert isinstance(rejected, m.Rejected) and "connected already" in rejected.reason
            # acks forged in the name of a task that never sees the spout's tuples
            spout_task = next(
                i["task_id"] for i in spout_container["instances"] if i["component"] == "spout"
            )
            peer = sink_container["container"]
            forged = AckBatch(update=[random.getrandbits(64), random.getrandbits(64)])
            stmgr = spout_container["stmgr"]
            with socket.create_connection((stmgr["host"], stmgr["port"]), timeout=5) as sock:
                sock.sendall(m.encode(m.HelloStmgr(name, peer)))
                sock.sendall(encode_ack(spout_task, spout_task, forged.encode()))
                assert closed_by_peer(sock)
            wait_for(lambda: len(hijacker.rejections) >= 3, 30, "three hijack attempts")
            assert len(acked(tmp_path)) < N  # the attack ran while tuples flowed
            wait_for(lambda: len(acked(tmp_path)) == N, 90, f"all {N} trees acked")
        finally:
            hijacker.stop.set()
            for thread in threads:
                thread.join()
            hijacker.server.close()
        assert len(hijacker.rejections) >= 3
        assert all("live stream manager" in r for r in hijacker.rejections)
        assert hijacker.stolen_tuples == 0
        # the plan still names the real stream manager of that container
        now = cli.status(name)["containers"][sink_container["container"]]["stmgr"]
        assert now == sink_container["stmgr"]
    at_sink = set(sink_seqs(tmp_path, "sink"))
    assert set(acked(tmp_path)) == set(range(N)) == at_sink  # nothing acked but lost
