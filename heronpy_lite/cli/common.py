"""What the CLI verbs share: the cluster arguments and the cluster's state
manager, and a blocking client for the tmaster's control port (sans-IO
decoder over a plain socket)."""

from __future__ import annotations

import argparse
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

from heronpy_lite import config, security
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import ControlError, ProtocolError, TopologyNotFoundError
from heronpy_lite.statemgr import StateManager, state_manager_for
from heronpy_lite.statemgr.base import TMASTERS
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.frames import ControlFrame, FrameDecoder


def engine_for(
    cluster: str, config_path: str | None = None, properties: dict[str, Any] | None = None
) -> EngineConfig:
    return EngineConfig.from_config(config.resolve(cluster, config_path, properties))


def add_cluster_args(p: argparse.ArgumentParser) -> None:
    """CLUSTER, and the config options that say where its state lives.

    Every verb takes them, so a cluster whose state manager is configured on
    the command line (``localzk`` with a ZooKeeper address and root) is
    addressed the same way by submit, list, status, kill, ...
    """
    p.add_argument("cluster", help="cluster name: a file in config/clusters (local, localzk)")
    p.add_argument("--config-path", help="folder of YAML files overriding the defaults")
    p.add_argument(
        "--config-property",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, repeatable; e.g. heron.statemgr.connection.string=HOST:PORT "
        "and heron.statemgr.root.path=/root for localzk",
    )


def engine_from_args(args: argparse.Namespace) -> EngineConfig:
    return engine_for(args.cluster, args.config_path, config.parse_properties(args.config_property))


@contextlib.contextmanager
def state_manager(args: argparse.Namespace) -> Iterator[StateManager]:
    """The cluster's state manager, closed afterwards (StateManagerError if unreachable)."""
    sm = state_manager_for(engine_from_args(args))
    try:
        yield sm
    finally:
        sm.close()


def require_topology(sm: StateManager, name: str) -> dict[str, Any]:
    try:
        return sm.get_topology(name)
    except TopologyNotFoundError:
        raise TopologyNotFoundError(f"no topology named {name!r} is running") from None


def topology_engine(record: dict[str, Any]) -> EngineConfig:
    """The engine config a topology runs with (its record's: what submit resolved)."""
    return EngineConfig.from_config(record["config"])


def secret_of(
    args: argparse.Namespace, engine: EngineConfig, *, required: bool = True
) -> bytes | None:
    """The CLI's copy of topology ``args.name``'s secret (None with authentication off)."""
    return security.load_secret(engine, args.cluster, args.name, required=required)


def control(
    sm: StateManager,
    name: str,
    command: str,
    timeout: float = 10.0,
    *,
    engine: EngineConfig | None = None,
    secret: bytes | None = None,
) -> m.ControlResponse:
    """Send one control request to the topology's tmaster and return its answer,
    after the handshake when there is a ``secret`` (and over TLS if ``engine``
    configures it)."""
    location = sm.get(TMASTERS, name)
    if location is None:
        raise ControlError(f"the topology master of {name!r} is not running")
    try:
        with socket.create_connection((location["host"], location["port"]), timeout) as raw:
            sock = security.wrap_client_socket(raw, engine) if engine is not None else raw
            if secret is not None:
                security.authenticate_socket(sock, secret)
            sock.sendall(m.encode(m.ControlRequest(command)))
            decoder = FrameDecoder()
            while True:
                data = sock.recv(65536)
                if not data:
                    raise ControlError(f"the topology master of {name!r} closed the connection")
                for frame in decoder.feed(data):
                    if isinstance(frame, ControlFrame):
                        msg = m.decode(frame.payload)
                        if isinstance(msg, m.ControlResponse):
                            return msg
    except (OSError, ProtocolError) as exc:
        raise ControlError(f"cannot reach the topology master of {name!r}: {exc}") from exc
