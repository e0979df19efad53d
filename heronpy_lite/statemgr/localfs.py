"""The local-directory state manager: one file per node under a root folder.

Writes go to a temporary file renamed into place, so readers never see half
a document; a create (`create_topology`'s claim) writes a temporary file and
hard-links it into place, which fails if the node exists. A write that fails
(a full disk) leaves the node as it was and removes its temporary file: no
empty node, nothing left behind. Ephemeral nodes record the writer's pid and
read as absent once that process is gone (the local stand-in for a ZooKeeper
session).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from heronpy_lite.errors import StateManagerError
from heronpy_lite.liveness import pid_alive
from heronpy_lite.statemgr.base import StateManager

_OWNER = b"\n#owner-pid "
_TMP = ".tmp-"


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class LocalFileStateManager(StateManager):
    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateManagerError(f"cannot create state directory {root}: {exc}") from exc

    def _path(self, path: str) -> Path:
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise StateManagerError(f"invalid state path {path!r}")
        return self.root.joinpath(*parts)

    def _read(self, path: str) -> bytes | None:
        try:
            data = self._path(path).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None
        except OSError as exc:
            raise StateManagerError(f"cannot read {path}: {exc}") from exc
        body, sep, owner = data.partition(_OWNER)
        if sep and not pid_alive(int(owner)):
            return None
        return body

    def _staged(self, target: Path, data: bytes) -> str:
        """A complete temporary copy of ``data`` beside ``target`` (removed if it
        cannot be written whole)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_TMP)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except BaseException:
            _remove(tmp)
            raise
        return tmp

    def _write(self, path: str, data: bytes, ephemeral: bool = False) -> None:
        target = self._path(path)
        if ephemeral:
            data += _OWNER + str(os.getpid()).encode()
        try:
            tmp = self._staged(target, data)
            try:
                os.replace(tmp, target)
            except BaseException:
                _remove(tmp)
                raise
        except OSError as exc:
            raise StateManagerError(f"cannot write {path}: {exc}") from exc

    def _create(self, path: str, data: bytes) -> bool:
        target = self._path(path)
        try:
            tmp = self._staged(target, data)
            try:
                os.link(tmp, target)  # atomic, and only if absent
            finally:
                _remove(tmp)
        except FileExistsError:
            return False
        except OSError as exc:
            raise StateManagerError(f"cannot create {path}: {exc}") from exc
        return True

    def _delete(self, path: str) -> None:
        target = self._path(path)
        try:
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        except OSError as exc:
            raise StateManagerError(f"cannot delete {path}: {exc}") from exc

    def _children(self, path: str) -> list[str]:
        folder = self._path(path)
        try:
            return [p.name for p in folder.iterdir() if not p.name.startswith(_TMP)]
        except (FileNotFoundError, NotADirectoryError):
            return []


__all__ = ["LocalFileStateManager"]
