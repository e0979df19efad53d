"""The ZooKeeper harness: a real server, and the CLI pointed at it.

`ZooKeeperServer` runs Debian's ``zookeeper`` package (the JVM, on a free
loopback port, with its own data directory) and waits until it answers
``ruok``; `stop`/`start` let a test take it away for a while (same port, same
data). `ZkCli` runs ``python -m heronpy_lite`` against the ``localzk``
cluster with the server's address and the test's root on every command, as
a user would. The rest reads what the gated test topologies record.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from cli_harness import Cli
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from support import free_port

TOPOLOGIES = Path(__file__).parent / "zookeeper" / "topologies"
JAVA_LIB = Path("/usr/share/java")
ZOOKEEPER_JAR = JAVA_LIB / "zookeeper.jar"
#: zookeeper.jar's manifest names the rest of its runtime (netty, jute,
#: metrics, ...); these are listed too so the class path is explicit, and
#: slf4j-simple makes the server log to its output file.
CLASSPATH_JARS = ("zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar")


class ZooKeeperServer:
    """One standalone ZooKeeper, started and stopped by the tests."""

    def __init__(self, folder: Path, host: str = "127.0.0.1") -> None:
        self.folder = folder
        self.host = host  # the multi-host suite's: the bridge address
        self.port = free_port()
        self.data = folder / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.config = folder / "zoo.cfg"
        # tickTime 500 ms: sessions may be as short as 1 s, expiry is checked
        # every 0.5 s; the 4-letter words are how we know it is up
        self.config.write_text(
            "tickTime=500\n"
            f"dataDir={self.data}\n"
            f"clientPort={self.port}\n"
            f"clientPortAddress={host}\n"
            "maxClientCnxns=0\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=ruok,srvr\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def connection(self) -> str:
        return f"{self.host}:{self.port}"

    def ruok(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                s.sendall(b"ruok")
                return s.recv(16) == b"imok"
        except OSError:
            return False

    def start(self, timeout: float = 60.0) -> None:
        classpath = ":".join(
            str(JAVA_LIB / jar) for jar in CLASSPATH_JARS if (JAVA_LIB / jar).exists()
        )
        java = shutil.which("java") or "java"
        with open(self.folder / "zookeeper.out", "ab") as out:
            self.proc = subprocess.Popen(
                [
                    java,
                    "-Xmx256m",
                    "-cp",
                    classpath,
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                    str(self.config),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        proc = self.proc
        deadline = time.monotonic() + timeout
        while not self.ruok():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"ZooKeeper exited with {proc.returncode}: "
                    f"{(self.folder / 'zookeeper.out').read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ZooKeeper did not answer ruok within {timeout}s")
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @contextlib.contextmanager
    def client(self, timeout: float = 10.0) -> Iterator[KazooClient]:
        zk = KazooClient(self.connection, timeout=timeout)
        zk.start(timeout=timeout)
        try:
            yield zk
        finally:
            zk.stop()
            zk.close()

    def tree(self, root: str) -> dict[str, dict[str, Any]]:
        """Every node under ``root``: relative path -> {"data": JSON or None, "ephemeral": bool}."""
        result: dict[str, dict[str, Any]] = {}
        with self.client() as zk:

            def walk(path: str) -> None:
                try:
                    children = zk.get_children(path)
                except NoNodeError:
                    return
                for child in children:
                    full = f"{path}/{child}"
                    try:
                        raw, stat = zk.get(full)
                    except NoNodeError:
                        continue
                    try:
                        data = json.loads(raw) if raw else None
                    except ValueError:
                        data = raw
                    result[full[len(root) + 1 :]] = {
                        "data": data,
                        "ephemeral": stat.ephemeralOwner != 0,
                    }
                    walk(full)

            walk(root)
        return result


def zookeeper_available() -> str:
    """Why ZooKeeper cannot run here, or '' if it can."""
    if not ZOOKEEPER_JAR.exists():
        return f"{ZOOKEEPER_JAR} not found (apt-get install zookeeper)"
    if shutil.which("java") is None:
        return "java not found (apt-get install zookeeper pulls it in)"
    return ""


def root_for(request: pytest.FixtureRequest) -> str:
    return "/heronpy_lite_tests/" + re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)


class ZkCli(Cli):
    """``heronpy-lite`` against the ``localzk`` cluster, under one root: `run` takes a
    verb and its arguments and adds the cluster and its options."""

    cluster = "localzk"

    def __init__(self, home: Path, server: ZooKeeperServer, root: str) -> None:
        super().__init__(home)
        self.server = server
        self.root = root

    @property
    def cluster_args(self) -> list[str]:
        return [
            "--config-property",
            f"heron.statemgr.connection.string={self.server.connection}",
            "--config-property",
            f"heron.statemgr.root.path={self.root}",
        ]

    def run(
        self, verb: str, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self.verb(verb, *args, check=check, timeout=timeout)

    def tree(self) -> dict[str, dict[str, Any]]:
        return self.server.tree(self.root)

    def nodes_of(self, name: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.tree().items() if k.split("/")[1:2] == [name]}


def tmaster_processes(info: dict[str, Any]) -> list[psutil.Process]:
    """The tmaster processes of container 0 (active and standby), from ``status``."""
    executor = psutil.Process(info["containers"][0]["executor_pid"])
    return [p for p in executor.children() if "heronpy_lite.tmaster" in " ".join(p.cmdline())]


def every_pid(info: dict[str, Any]) -> set[int]:
    """The scheduler, every executor and all their descendants, from ``status``."""
    pids = {info["scheduler_pid"]}
    for c in info["containers"]:
        executor = psutil.Process(c["executor_pid"])
        pids.add(executor.pid)
        pids.update(p.pid for p in executor.children(recursive=True))
    return pids


def open_gate(folder: Path, count: int) -> None:
    """Let the gated spouts emit up to ``count`` tuples in all (see topologies/gated.py)."""
    tmp = folder / "gate.tmp"
    tmp.write_text(str(count))
    tmp.replace(folder / "gate")


def received(folder: Path, component: str = "sink") -> list[list[Any]]:
    """Every [spout task, seq] the sink tasks recorded, in file order."""
    rows: list[list[Any]] = []
    for path in sorted(folder.glob(f"{component}-*.jsonl")):
        with open(path) as f:
            rows.extend(json.loads(line) for line in f if line.endswith("\n"))
    return rows


def seqs(folder: Path) -> list[int]:
    return sorted(seq for _, seq in received(folder))


def kill_all(processes: list[psutil.Process]) -> None:
    """``kill -9`` a group of processes as if their host died: all at once.

    They are stopped first, so none reacts to another's death (an executor
    removing its dead child's node, a child's SIGTERM on its parent's death)
    before it is killed too.
    """
    for p in processes:
        p.send_signal(signal.SIGSTOP)
    for p in processes:
        p.kill()
