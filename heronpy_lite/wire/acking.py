"""Acking messages: the body of an ACK frame. No I/O here.

Theory of operation
-------------------
At-least-once follows Storm's XOR scheme. A spout emit with a ``tup_id``
creates a *root* (a random 64-bit key) and, for every destination copy, a
random *edge id*; the tuple carries ``(spout_task, root, edge)``. A bolt
that emits anchored to input ``a`` draws a fresh edge id per destination,
XORs it into ``a``'s ack value and into the new tuple's id for each of
``a``'s roots; acking ``a`` then sends ``edge(a) ^ ackval(a)`` per root.
Every edge id enters the XOR of its root exactly twice (once when created,
once when its tuple is acked), so the root's XOR is 0 exactly when the whole
tree is done.

All of it travels as `AckBatch` in ACK frames, addressed to the spout task
whose stream manager keeps the XOR (`stmgr/acking.py`):

- ``init``    spout -> its stmgr: (root, XOR of the root's first edges)
- ``update``  bolt  -> the spout's stmgr: (root, XOR contribution)
- ``fail``    bolt  -> the spout's stmgr: root
- ``acked``   stmgr -> spout: root   (tree complete)
- ``failed``  stmgr -> spout: root   (tree failed or timed out)

The body is a msgpack array of five binary strings, each a flat array of
unsigned 64-bit little-endian ints (init and update alternate root and
value): packing and checking them costs nothing per int.
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass, field

import msgpack

from heronpy_lite.errors import LocalProtocolError, RemoteProtocolError

MASK64 = (1 << 64) - 1


@dataclass(slots=True)
class AckBatch:
    init: list[int] = field(default_factory=list)
    update: list[int] = field(default_factory=list)
    fail: list[int] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.init or self.update or self.fail or self.acked or self.failed)

    def encode(self) -> bytes:
        parts = [_to_bytes(p) for p in (self.init, self.update, self.fail, self.acked, self.failed)]
        body: bytes = msgpack.packb(parts, use_bin_type=True)
        return body

    @classmethod
    def decode(cls, body: bytes | memoryview) -> AckBatch:
        try:
            parts = msgpack.unpackb(body, raw=False)
        except Exception as exc:  # msgpack raises several unrelated types
            raise RemoteProtocolError(f"acking body is not msgpack: {exc}") from exc
        if (
            not isinstance(parts, list)
            or len(parts) != 5
            or not all(isinstance(p, bytes) and len(p) % 8 == 0 for p in parts)
        ):
            raise RemoteProtocolError("malformed acking body")
        init, update, fail, acked, failed = (_from_bytes(p) for p in parts)
        if len(init) % 2 or len(update) % 2:
            raise RemoteProtocolError("malformed acking body: odd init or update list")
        return cls(init, update, fail, acked, failed)


_SWAP = sys.byteorder != "little"


def _to_bytes(values: list[int]) -> bytes:
    try:
        packed = array("Q", values)
    except OverflowError as exc:
        raise LocalProtocolError(f"acking value out of 64-bit range: {exc}") from exc
    if _SWAP:
        packed.byteswap()
    return packed.tobytes()


def _from_bytes(data: bytes) -> list[int]:
    values = array("Q")
    values.frombytes(data)
    if _SWAP:
        values.byteswap()
    return values.tolist()
