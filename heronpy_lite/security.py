"""The topology's secret, TLS, and the rule that binds beyond loopback only
with authentication (docs/decisions/0032-authenticated-links.md).

- **The secret.** `submit` makes 32 random bytes per topology. The CLI keeps
  them in ``$HERONPY_LITE_HOME/secrets/`` (mode 0600, in a 0700 folder) to
  make control requests; the scheduler hands them to every container in the
  environment variable `SECRET_ENV`, which every process of the container
  inherits. They are never written to the state manager.
- **The handshake** (`wire/handshake.py`) proves on every link that both
  ends know the secret before any other frame is accepted.
- **TLS** (optional): with ``heron.network.tls.certfile``, ``.keyfile`` and
  ``.cafile``, every listening socket speaks TLS with that certificate and
  asks for a client certificate signed by the CA, and every client
  verifies the server's against the CA (no host name check: the addresses
  are the ones the state manager gives, and the handshake authenticates the
  topology).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import socket
import ssl
from pathlib import Path
from typing import Any

from heronpy_lite.config import EngineConfig, home
from heronpy_lite.errors import AuthenticationFailed, ConfigError, RemoteProtocolError
from heronpy_lite.network import WILDCARDS, is_loopback
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.frames import ControlFrame, FrameDecoder
from heronpy_lite.wire.handshake import Handshake

SECRET_ENV = "HERONPY_LITE_TOPOLOGY_SECRET"
SECRET_BYTES = 32


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def check_bind(engine: EngineConfig) -> None:
    """ConfigError if the bind host is not loopback while authentication is off."""
    host = engine.bind_host
    if not engine.authentication and (host in WILDCARDS or not is_loopback(host)):
        raise ConfigError(
            f"refusing to listen on {host or '*'} with heron.network.authentication false: "
            "anyone who can reach it could inject tuples; turn authentication on or bind "
            "127.0.0.1"
        )


def check_tls(engine: EngineConfig) -> None:
    files = (engine.tls_certfile, engine.tls_keyfile, engine.tls_cafile)
    if any(files) and not all(files):
        raise ConfigError("TLS needs all of heron.network.tls.certfile, .keyfile and .cafile")
    for path in files:
        if path and not Path(path).is_file():
            raise ConfigError(f"TLS file {path} does not exist")


def process_secret(engine: EngineConfig) -> bytes | None:
    """The secret this engine process was handed (None with authentication off)."""
    if not engine.authentication:
        return None
    value = os.environ.get(SECRET_ENV, "")
    try:
        secret = bytes.fromhex(value)
    except ValueError:
        secret = b""
    if not secret:
        raise ConfigError(
            f"authentication is on but this process was given no secret (${SECRET_ENV})"
        )
    return secret


def secret_env(secret: bytes | None) -> dict[str, str]:
    """What to add to a container's environment to hand it ``secret``."""
    return {SECRET_ENV: secret.hex()} if secret else {}


# -- the CLI's copy --


def secret_file(engine: EngineConfig, cluster: str, topology: str) -> Path:
    """Where the CLI keeps ``topology``'s secret: one folder per cluster and state
    manager location, so two ZooKeeper roots never share a name's secret."""
    where = f"{engine.statemgr_class}|{engine.statemgr_connection_string}|"
    where += engine.statemgr_root_path
    digest = hashlib.sha256(where.encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", cluster)
    return home() / "secrets" / f"{safe}-{digest}" / topology


def store_secret(path: Path, secret: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")
    tmp.replace(path)


def load_secret(
    engine: EngineConfig, cluster: str, topology: str, *, required: bool = True
) -> bytes | None:
    """The CLI's copy of the secret (None with authentication off). If this machine has
    none: ConfigError, or None when not ``required``."""
    if not engine.authentication:
        return None
    path = secret_file(engine, cluster, topology)
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        if not required:
            return None
        raise ConfigError(
            f"no secret for {topology!r} on this machine ({path}): control requests need "
            "the secret that submit kept; copy that file here (mode 0600)"
        ) from None


def forget_secret(engine: EngineConfig, cluster: str, topology: str) -> None:
    secret_file(engine, cluster, topology).unlink(missing_ok=True)


# -- TLS --


def server_tls(engine: EngineConfig) -> ssl.SSLContext | None:
    if not engine.tls_certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=engine.tls_cafile)
    context.load_cert_chain(engine.tls_certfile, engine.tls_keyfile)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def server_options(engine: EngineConfig) -> dict[str, Any]:
    """``asyncio.start_server`` keywords: TLS when it is configured."""
    context = server_tls(engine)
    if context is None:
        return {}
    return {"ssl": context, "ssl_handshake_timeout": engine.handshake_timeout_secs}


def client_tls(engine: EngineConfig) -> ssl.SSLContext | None:
    if not engine.tls_certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=engine.tls_cafile)
    context.check_hostname = False
    context.load_cert_chain(engine.tls_certfile, engine.tls_keyfile)
    return context


# -- clients that do nothing but the handshake first --


async def authenticate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    secret: bytes,
    *,
    timeout: float,
    accepting: bool = False,
) -> None:
    """Run the handshake on a fresh connection (AuthenticationFailed, RemoteProtocolError
    or TimeoutError if it fails); afterwards the connection carries frames."""
    handshake = Handshake(secret, accepting=accepting)
    writer.write(handshake.hello())
    decoder = FrameDecoder(4096)
    async with asyncio.timeout(timeout):
        while not handshake.done:
            data = await reader.read(4096)
            if not data:
                raise ConnectionResetError("closed during the handshake")
            frames = decoder.feed(data)
            for i, frame in enumerate(frames):
                if not isinstance(frame, ControlFrame):
                    raise AuthenticationFailed("authentication failed: a frame before it")
                for reply in handshake.receive(m.decode(frame.payload)):
                    writer.write(reply)
                if handshake.done and (i + 1 < len(frames) or decoder.buffered):
                    raise RemoteProtocolError("frames pipelined into the handshake")
        await writer.drain()


def authenticate_socket(sock: socket.socket, secret: bytes) -> None:
    """`authenticate` for a blocking socket (the CLI); uses the socket's timeout."""
    handshake = Handshake(secret, accepting=False)
    sock.sendall(handshake.hello())
    decoder = FrameDecoder(4096)
    while not handshake.done:
        data = sock.recv(4096)
        if not data:
            raise ConnectionResetError("the topology master closed the connection")
        for frame in decoder.feed(data):
            if not isinstance(frame, ControlFrame):
                raise AuthenticationFailed("authentication failed: a frame before it")
            for reply in handshake.receive(m.decode(frame.payload)):
                sock.sendall(reply)


def wrap_client_socket(sock: socket.socket, engine: EngineConfig) -> socket.socket:
    """``sock`` with TLS when it is configured (ssl.SSLError, an OSError, if it fails)."""
    context = client_tls(engine)
    return sock if context is None else context.wrap_socket(sock)
