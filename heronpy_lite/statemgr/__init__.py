"""State managers: `open_state_manager` picks the backend."""

from __future__ import annotations

from pathlib import Path

from heronpy_lite.config import EngineConfig, home
from heronpy_lite.errors import ConfigError
from heronpy_lite.statemgr.base import StateManager


def open_state_manager(
    kind: str,
    root: str = "",
    connection: str = "",
    *,
    session_timeout: float = 10.0,
    timeout: float = 5.0,
    auth_file: str = "",
) -> StateManager:
    """A state manager of ``kind``: ``localfs`` or ``zookeeper``.

    ``session_timeout``, ``timeout`` (how long a call waits for the server) and
    ``auth_file`` (``heron.statemgr.zookeeper.auth.file``: digest credentials, and
    ACLs on every node created) apply to ZooKeeper only. Raises StateManagerError
    if it cannot connect.
    """
    if kind == "localfs":
        from heronpy_lite.statemgr.localfs import LocalFileStateManager

        return LocalFileStateManager(Path(root) if root else home() / "state")
    if kind == "zookeeper":
        from heronpy_lite.statemgr.zookeeper import ZooKeeperStateManager

        return ZooKeeperStateManager(
            connection,
            root,
            session_timeout=session_timeout,
            timeout=timeout,
            credentials=read_credentials(auth_file) if auth_file else None,
        )
    raise ConfigError(f"state manager {kind!r} is not available")


def state_manager_for(engine: EngineConfig) -> StateManager:
    return open_state_manager(
        engine.statemgr_class,
        engine.statemgr_root_path,
        engine.statemgr_connection_string,
        session_timeout=engine.zk_session_timeout_secs,
        timeout=engine.zk_timeout_secs,
        auth_file=engine.zk_auth_file,
    )


def read_credentials(path: str) -> tuple[str, str]:
    """``user:password`` from the first line of ``path`` (ConfigError if it is not)."""
    try:
        line = Path(path).expanduser().read_text().strip().splitlines()
    except OSError as exc:
        raise ConfigError(
            f"cannot read heron.statemgr.zookeeper.auth.file {path}: {exc.strerror or exc}"
        ) from None
    user, sep, password = (line[0] if line else "").partition(":")
    if not sep or not user or not password:
        raise ConfigError(
            f"heron.statemgr.zookeeper.auth.file {path} must hold one line user:password"
        )
    return user, password


__all__ = ["StateManager", "open_state_manager", "read_credentials", "state_manager_for"]
