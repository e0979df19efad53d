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
) -> StateManager:
    """A state manager of ``kind``: ``localfs`` or ``zookeeper``.

    ``session_timeout`` and ``timeout`` (how long a call waits for the server)
    apply to ZooKeeper only. Raises StateManagerError if it cannot connect.
    """
    if kind == "localfs":
        from heronpy_lite.statemgr.localfs import LocalFileStateManager

        return LocalFileStateManager(Path(root) if root else home() / "state")
    if kind == "zookeeper":
        from heronpy_lite.statemgr.zookeeper import ZooKeeperStateManager

        return ZooKeeperStateManager(
            connection, root, session_timeout=session_timeout, timeout=timeout
        )
    raise ConfigError(f"state manager {kind!r} is not available")


def state_manager_for(engine: EngineConfig) -> StateManager:
    return open_state_manager(
        engine.statemgr_class,
        engine.statemgr_root_path,
        engine.statemgr_connection_string,
        session_timeout=engine.zk_session_timeout_secs,
        timeout=engine.zk_timeout_secs,
    )


__all__ = ["StateManager", "open_state_manager", "state_manager_for"]
