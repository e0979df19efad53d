"""Tuple batches: the body of a DATA frame.

A body is one msgpack array whose items are the tuples' value lists. Values
must be msgpack types (None, bool, int, float, str, bytes, list, dict);
tuples arrive as lists. Batches are packed once at flush time and unpacked
once at the receiving instance; nothing in between looks inside.
"""

from __future__ import annotations

from typing import Any

import msgpack

from heronpy_lite.errors import RemoteProtocolError

_packer = msgpack.Packer(use_bin_type=True, autoreset=True)


def pack_batch(tuples: list[Any]) -> bytes:
    """msgpack body for a list of value lists; TypeError for a foreign type."""
    return _packer.pack(tuples)  # type: ignore[no-any-return]


def pack_one(values: Any) -> bytes:
    """Pack one tuple's values alone (used to find the culprit of a failed batch)."""
    return _packer.pack(values)  # type: ignore[no-any-return]


def unpack_batch(body: bytes | memoryview) -> list[Any]:
    try:
        tuples = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise RemoteProtocolError(f"tuple batch is not msgpack: {exc}") from exc
    if not isinstance(tuples, list):
        raise RemoteProtocolError("tuple batch is not an array")
    return tuples
