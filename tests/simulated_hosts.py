"""Simulated hosts for multi-host tests: network namespaces on one bridge.

`Hosts` makes a bridge in the root namespace (the "bridge host", where the
tests, the CLI and ZooKeeper run, at ``<subnet>.1``) and one network
namespace per host, joined to it by a veth pair (``<subnet>.11``,
``.12``, ...). Traffic goes only to loopback and these addresses. Processes
start inside a host with ``nsenter --net=/run/netns/NAME`` (not ``ip netns
exec``, which remounts /sys and breaks slurmd's cgroup plugin); they share
the file system, as hosts with a shared mount would. `kill_host` is
``kill -9`` of everything in one host at once. Everything is deleted by
`stop`, whatever state the test left it in.

`SlurmCluster` runs a real Slurm on them: munged (its own key and socket),
slurmctld on the bridge host, one slurmd per host, in a folder of the
test's; ``SLURM_CONF`` (in `env`) points every client command at it.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support import free_port, wait_for


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def namespaces_available() -> str:
    """Why network namespaces cannot be made here, or ''."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("nsenter") is None:
        return "ip (iproute2) and nsenter (util-linux) are needed"
    probe = f"hlprobe{os.getpid() % 10000}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return ""


def free_subnet() -> str:
    """A ``10.118.X`` /24 no interface of this machine is on (several suites, each with
    its own bridge, may run at once on one machine): picked at random among the free."""
    used = _ip("-4", "-o", "addr", "show").stdout
    free = [x for x in range(16, 250) if f" 10.118.{x}." not in used]
    if not free:
        raise RuntimeError("no free 10.118.X/24 subnet for simulated hosts")
    return f"10.118.{random.choice(free)}"


class Hosts:
    """Simulated hosts ``names`` on one bridge (see the module's docstring); ``subnet``
    (``A.B.C``) is picked among the free ones unless given."""

    def __init__(self, names: list[str], subnet: str | None = None) -> None:
        tag = secrets.token_hex(2)
        subnet = subnet or free_subnet()
        self.subnet = subnet
        self.bridge = f"hlbr{tag}"
        self.bridge_address = f"{subnet}.1"
        self.names = names
        self.namespaces = {name: f"hl{tag}{name}" for name in names}
        self.addresses = {name: f"{subnet}.{11 + i}" for i, name in enumerate(names)}
        self._veths = {name: f"hv{tag}{i}" for i, name in enumerate(names)}

    def start(self) -> None:
        """Make the bridge and the namespaces (whatever was made is deleted if it fails)."""
        try:
            self._make()
        except BaseException:
            self.stop()
            raise

    def _make(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.bridge_address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for name in self.names:
            ns, veth = self.namespaces[name], self._veths[name]
            _ip("netns", "add", ns)
            _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
            _ip("link", "set", f"{veth}p", "netns", ns)
            _ip("link", "set", veth, "master", self.bridge, "up")
            _ip("-n", ns, "addr", "add", f"{self.addresses[name]}/24", "dev", f"{veth}p")
            _ip("-n", ns, "link", "set", f"{veth}p", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def stop(self) -> None:
        for name in self.names:
            self.kill_host(name)
            _ip("netns", "del", self.namespaces[name], check=False)
        _ip("link", "del", self.bridge, check=False)

    def nsenter(self, name: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.namespaces[name]}"]

    def popen(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*self.nsenter(name), *argv], **kwargs)

    def pids(self, name: str) -> list[int]:
        out = _ip("netns", "pids", self.namespaces[name], check=False).stdout
        return [int(p) for p in out.split()]

    def host_of(self, pid: int) -> str | None:
        for name in self.names:
            if pid in self.pids(name):
                return name
        return None

    def kill_host(self, name: str) -> list[int]:
        """``kill -9`` of every process in ``name`` at once (stopped first, so none
        reacts to another's death)."""
        pids = self.pids(name)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids


def _wait_port(host: str, port: int, timeout: float = 30.0) -> None:
    def up() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return True
        return False

    wait_for(up, timeout, f"{host}:{port} to listen")


class SlurmCluster:
    def __init__(self, folder: Path, hosts: Hosts) -> None:
        self.folder = folder
        self.hosts = hosts
        self.conf = folder / "slurm.conf"
        self.socket = folder / "munge" / "munge.socket"
        self.ctld_port = free_port()
        self.slurmd_port = free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self._logs: list[Any] = []

    def _log(self) -> Any:
        out = open(self.folder / "log" / "daemons.out", "ab")  # noqa: SIM115 (the daemons')
        self._logs.append(out)
        return out

    def _write(self) -> None:
        f = self.folder
        for d in ("munge", "state", "spool", "log"):
            (f / d).mkdir(parents=True, exist_ok=True, mode=0o700)
        key = f / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        nodes = "\n".join(
            f"NodeName={n} NodeAddr={self.hosts.addresses[n]} CPUs=2 RealMemory=2000 State=UNKNOWN"
            for n in self.hosts.names
        )
        self.conf.write_text(
            f"""ClusterName=heronpy
SlurmctldHost={socket.gethostname().split(".")[0]}({self.hosts.bridge_address})
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={f / "state"}
SlurmdSpoolDir={f / "spool"}/%n
SlurmctldPidFile={f / "slurmctld.pid"}
SlurmdPidFile={f / "spool"}/slurmd-%n.pid
SlurmctldLogFile={f / "log" / "slurmctld.log"}
SlurmdLogFile={f / "log"}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core,CR_LLN
SchedulerType=sched/builtin
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SlurmdTimeout=5
SlurmctldTimeout=10
MessageTimeout=5
JobRequeue=1
KillWait=5
InactiveLimit=0
MinJobAge=30
{nodes}
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""
        )

    def start(self) -> None:
        self._write()
        f = self.folder
        log = self._log()
        self.procs["munged"] = subprocess.Popen(
            [
                "munged",
                "--foreground",
                "--force",
                f"--socket={self.socket}",
                f"--key-file={f / 'munge' / 'munge.key'}",
                f"--pid-file={f / 'munge' / 'munged.pid'}",
                f"--log-file={f / 'log' / 'munged.log'}",
                f"--seed-file={f / 'munge' / 'munged.seed'}",
            ],
            stdout=log,
            stderr=log,
        )
        wait_for(self.socket.exists, 20, "munged's socket")
        self.procs["slurmctld"] = subprocess.Popen(
            ["slurmctld", "-D", "-i", "-f", str(self.conf)], stdout=log, stderr=log, env=self.env
        )
        _wait_port(self.hosts.bridge_address, self.ctld_port)
        for name in self.hosts.names:
            self.start_slurmd(name)
        wait_for(
            lambda: self.node_states() == dict.fromkeys(self.hosts.names, "idle"), 60, "idle nodes"
        )

    def start_slurmd(self, name: str) -> None:
        old = self.procs.get(f"slurmd {name}")
        if old is not None:
            old.wait(10)  # killed with its host: reap it
        log = self._log()
        self.procs[f"slurmd {name}"] = self.hosts.popen(
            name,
            ["slurmd", "-D", "-N", name, "-f", str(self.conf)],
            stdout=log,
            stderr=log,
            env=self.env,
        )

    def run(self, *argv: str) -> str:
        return subprocess.run(
            list(argv), capture_output=True, text=True, env=self.env, timeout=30
        ).stdout

    def node_states(self) -> dict[str, str]:
        out = self.run("sinfo", "--noheader", "--Node", "--format=%N %t")
        states = {}
        for line in out.splitlines():
            if line.strip():
                node, state = line.split()
                states[node] = state.rstrip("*~#")
        return states

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for out in self._logs:
            out.close()


@contextlib.contextmanager
def slurm_on_hosts(folder: Path, names: list[str]) -> Iterator[tuple[Hosts, SlurmCluster]]:
    hosts = Hosts(names)
    hosts.start()
    cluster = SlurmCluster(folder, hosts)
    try:
        cluster.start()
        yield hosts, cluster
    finally:
        cluster.stop()
        hosts.stop()
