"""Tuple batches: the body of a DATA frame.

A body is one msgpack array of entries, one per tuple. At most once an entry
is the tuple's values array; at least once it is the values followed by one
more item, the tuple's anchors: a binary string of little-endian u64 (spout
task, root, edge id) triples, empty for a tuple outside any tree. Values must
be msgpack types (None, bool, int, float, str, bytes, list, dict); tuples
arrive as lists. Each entry is packed when its tuple is emitted
(`heronpy_lite.instance.tuplepath`) and the batch is unpacked once at the
receiving instance; nothing in between looks inside.
"""

from __future__ import annotations

from typing import Any

import msgpack

from heronpy_lite.errors import RemoteProtocolError


def unpack_batch(body: bytes | memoryview) -> list[Any]:
    try:
        tuples = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise RemoteProtocolError(f"tuple batch is not msgpack: {exc}") from exc
    if not isinstance(tuples, list):
        raise RemoteProtocolError("tuple batch is not an array")
    return tuples
