"""Checkpoint storage: every task's state for every checkpoint, on a disk path.

Theory of operation
-------------------
Each stateful task writes its own state, for each checkpoint it takes part
in, as one file under ``<root>/<topology>/<task id>/``:

- ``<id>.full``: the whole state;
- ``<id>.delta``: what changed since the task's previous file (keys set,
  keys deleted, whether it was cleared first).

The state as of checkpoint C is the latest full file at or before C, with
every delta after it up to C applied in order (`load`). A task writes a full
file at its first checkpoint after it starts or restores, and then every
``full_every`` checkpoints or whenever a delta would not be smaller than
half the state (`StateWriter` decides). Files of checkpoints that never
completed are harmless: after a restore to C the next file is full, so no
chain ever reaches across the files written between C and the restore.

A file is a fixed header (magic, format version, CRC-32 of the payload, its
length) and a msgpack payload. Writes are atomic (a temporary file in the
same directory, fsync, rename, fsync of the directory): a reader sees a
whole file or none. Reads check the magic, the length and the checksum; a
file that fails any raises `CorruptCheckpoint` naming it, and the engine
falls back to an older checkpoint.

Keys and values are msgpack types. A key that is a tuple comes back a tuple
(keys are stored as [key, value] pairs and key arrays made hashable again);
a value that is a tuple comes back a list, as tuples on the wire do.

The store is plain files on a path: a local disk for one machine, a shared
mount (NFS, a cluster file system) across hosts.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from heronpy_lite.errors import CorruptCheckpoint, StateError

_MAGIC = b"HLCKPT"
_VERSION = 1
_HEADER = struct.Struct(">6sHIQ")  # magic, version, crc32, payload length
_NAME = re.compile(r"^(\d{12})\.(full|delta)$")
FULL, DELTA = "full", "delta"


def pack_state_items(items: Iterable[tuple[Any, Any]]) -> bytes:
    """[key, value] pairs as msgpack; `StateError` names the first key msgpack refuses."""
    packer = msgpack.Packer(use_bin_type=True, autoreset=True)
    parts = []
    count = 0
    for key, value in items:
        try:
            parts.append(packer.pack([key, value]))
        except (TypeError, ValueError, OverflowError) as exc:
            raise StateError(
                f"state key {key!r}: its value is not a msgpack type ({exc}); state values "
                "must be None, bool, int, float, str, bytes, or lists and dicts of them"
            ) from exc
        count += 1
    return _array_header(count) + b"".join(parts)


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def _hashable(key: Any) -> Any:
    """A key as it was: arrays (packed tuples) back to tuples, recursively."""
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key


def unpack_state_items(data: bytes) -> dict[Any, Any]:
    pairs = msgpack.unpackb(data, raw=False, strict_map_key=False)
    return {_hashable(k): v for k, v in pairs}


@dataclass(frozen=True, slots=True)
class StoredFile:
    checkpoint: int
    kind: str
    path: Path


class CheckpointStore:
    """The files of one topology under ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path, topology: str) -> None:
        self.root = Path(root)
        self.topology = topology
        self.dir = self.root / topology

    def task_dir(self, task: int) -> Path:
        return self.dir / str(task)

    # -- writing --

    def write(self, task: int, checkpoint: int, kind: str, payload: bytes) -> int:
        """Store one file atomically; the bytes written."""
        if kind not in (FULL, DELTA):
            raise ValueError(f"kind is full or delta, not {kind!r}")
        folder = self.task_dir(task)
        folder.mkdir(parents=True, exist_ok=True)
        data = _HEADER.pack(_MAGIC, _VERSION, zlib.crc32(payload), len(payload)) + payload
        final = folder / f"{checkpoint:012d}.{kind}"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(folder)
        return len(data)

    # -- reading --

    def files(self, task: int) -> list[StoredFile]:
        """The task's files, oldest first (temporary files left by a crash ignored)."""
        folder = self.task_dir(task)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            match = _NAME.match(name)
            if match:
                found.append(StoredFile(int(match.group(1)), match.group(2), folder / name))
        return sorted(found, key=lambda f: f.checkpoint)

    def chain(self, task: int, checkpoint: int) -> list[StoredFile]:
        """The files that make the task's state at ``checkpoint``: the latest full one
        at or before it and the deltas after that one. `CorruptCheckpoint` if the
        task has no file for ``checkpoint`` or no full one before it."""
        files = [f for f in self.files(task) if f.checkpoint <= checkpoint]
        if not files or files[-1].checkpoint != checkpoint:
            raise CorruptCheckpoint(f"task {task} has no state file for checkpoint {checkpoint}")
        for i in range(len(files) - 1, -1, -1):
            if files[i].kind == FULL:
                return files[i:]
        raise CorruptCheckpoint(f"task {task} has no full state at or before {checkpoint}")

    def load(self, task: int, checkpoint: int) -> dict[Any, Any]:
        """The task's state at ``checkpoint``; `CorruptCheckpoint` if any file of its
        chain is missing or damaged."""
        state: dict[Any, Any] = {}
        for stored in self.chain(task, checkpoint):
            payload = msgpack.unpackb(read_checked(stored.path), raw=False)
            if stored.kind == FULL:
                state = unpack_state_items(payload["items"])
            else:
                if payload.get("cleared"):
                    state.clear()
                state.update(unpack_state_items(payload["items"]))
                for key in payload["deleted"]:
                    state.pop(_hashable(key), None)
        return state

    # -- forgetting --

    def prune(self, task: int, keep: Iterable[int]) -> int:
        """Remove the task's files that no chain of the ``keep`` checkpoints needs;
        the number removed."""
        keep = list(keep)
        if not keep:
            return 0
        oldest = min(keep)
        files = self.files(task)
        base = None
        for stored in files:
            if stored.checkpoint <= oldest and stored.kind == FULL:
                base = stored.checkpoint
        if base is None:
            return 0
        removed = 0
        for stored in files:
            if stored.checkpoint < base:
                with contextlib.suppress(FileNotFoundError):
                    stored.path.unlink()
                    removed += 1
        return removed

    def drop(self) -> None:
        """Every file of the topology (kill)."""
        shutil.rmtree(self.dir, ignore_errors=True)


class StateWriter:
    """What one task writes for each checkpoint: a full file or a delta.

    A full file at the first checkpoint after the task starts or restores,
    then every ``full_every`` checkpoints, or when the changes are at least
    half the state (a delta would save nothing and lengthen the chain).
    """

    def __init__(self, full_every: int = 10) -> None:
        self.full_every = max(1, full_every)
        self._since_full: int | None = None  # None: the next file is full

    def restarted(self) -> None:
        """The task (re)started from a checkpoint: its next file is full."""
        self._since_full = None

    def payload(self, state: Any) -> tuple[str, bytes]:
        """(kind, payload) for ``state`` (a `HashMapState`) now; its record of
        changes starts empty again. `StateError` names a key msgpack refuses."""
        cleared, updated, deleted = state.take_changes()
        full = (
            self._since_full is None
            or self._since_full + 1 >= self.full_every
            or 2 * (len(updated) + len(deleted)) >= max(len(state), 1)
        )
        if full:
            self._since_full = 0
            body = {"items": pack_state_items(state.snapshot().items())}
            return FULL, msgpack.packb(body, use_bin_type=True)
        assert self._since_full is not None
        self._since_full += 1
        body = {
            "cleared": cleared,
            "items": pack_state_items(updated.items()),
            "deleted": deleted,
        }
        try:
            return DELTA, msgpack.packb(body, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise StateError(f"a deleted state key is not a msgpack type: {exc}") from exc


def store_root(engine: Any) -> Path:
    """Where a topology's state files go: ``heron.stateful.checkpoint.root``, or
    ``<working root>/checkpoints``."""
    from heronpy_lite.config import home

    return Path(engine.checkpoint_root) if engine.checkpoint_root else home() / "checkpoints"


def read_checked(path: Path) -> bytes:
    """A stored file's payload; `CorruptCheckpoint` if it is not whole and intact."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptCheckpoint(f"cannot read {path}: {exc}") from exc
    if len(data) < _HEADER.size:
        raise CorruptCheckpoint(f"{path} is shorter than its header")
    magic, version, crc, length = _HEADER.unpack_from(data)
    payload = data[_HEADER.size :]
    if magic != _MAGIC or version != _VERSION:
        raise CorruptCheckpoint(f"{path} is not a checkpoint file of this version")
    if len(payload) != length:
        raise CorruptCheckpoint(f"{path} holds {len(payload)} bytes, its header says {length}")
    if zlib.crc32(payload) != crc:
        raise CorruptCheckpoint(f"{path} fails its checksum")
    return payload


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
