"""State managers: `open_state_manager` picks the backend."""

from __future__ import annotations

from pathlib import Path

from heronpy_lite.config import EngineConfig, home
from heronpy_lite.errors import ConfigError
from heronpy_lite.statemgr.base import StateManager


def open_state_manager(kind: str, root: str = "", connection: str = "") -> StateManager:
    """A state manager of ``kind`` (``localfs``; ``zookeeper`` comes with its issue)."""
    if kind == "localfs":
        from heronpy_lite.statemgr.localfs import LocalFileStateManager

        return LocalFileStateManager(Path(root) if root else home() / "state")
    raise ConfigError(f"state manager {kind!r} is not available")


def state_manager_for(engine: EngineConfig) -> StateManager:
    return open_state_manager(
        engine.statemgr_class, engine.statemgr_root_path, engine.statemgr_connection_string
    )


__all__ = ["StateManager", "open_state_manager", "state_manager_for"]
