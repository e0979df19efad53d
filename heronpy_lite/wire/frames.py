"""Framing: bytes in, frames out, and frames to bytes. No I/O here.

Theory of operation
-------------------
Every connection (instance <-> stmgr, stmgr <-> stmgr, stmgr <-> tmaster,
cli -> tmaster) carries the same frames::

    frame   := length:u32be  kind:u8  payload            (length = 1 + len(payload))
    DATA    := dst_task:u32be  src_task:u32be  tuples:u32be  stream_len:u16be  stream:utf8  body
    ACK     := the DATA header with an empty stream, and an acking body
               (`acking.py`) for the stream manager hosting spout task dst_task
    MARKER  := the DATA header with an empty stream, and checkpoint:u64be: task
               src_task has taken its state for that checkpoint, and sent
               dst_task everything it emitted before (EFFECTIVELY_ONCE)
    CONTROL := msgpack map {"t": <message type>, ...fields}

A DATA body is the msgpack array of the batch's tuples (see `tuples.py`);
the stream manager routes on ``dst_task``, which sits at a fixed offset,
counts ``tuples`` for its metrics, and forwards the frame's bytes as they
are: it never decodes the body.

`FrameDecoder.feed` takes whatever the socket gave (half a frame, ten frames)
and returns the complete frames in order. A frame whose length is zero or
above the configured limit, an unknown kind, or a malformed header raises
`RemoteProtocolError`: the runner closes that one connection. The limit
can change between feeds (small until a link has authenticated): a frame
above it that follows complete frames is *held* (``held``) rather than
refused, so that the caller can handle the frames before it, raise the
limit if they earned it, and ``feed(b"")`` again. `encode_*`
raise `LocalProtocolError` when we would send something the peer must reject.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from heronpy_lite.errors import LocalProtocolError, RemoteProtocolError

KIND_DATA: Final = 1
KIND_CONTROL: Final = 2
KIND_ACK: Final = 3
KIND_MARKER: Final = 4

#: 32 MiB: room for a batch holding one 8 MiB tuple several times over.
DEFAULT_MAX_FRAME_BYTES: Final = 32 * 1024 * 1024

_LENGTH = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_DATA_HEADER = struct.Struct(">BIIIH")  # kind, dst_task, src_task, tuples, stream_len


@dataclass(slots=True)
class DataFrame:
    """One batch of tuples from ``src_task`` to ``dst_task`` on ``stream``.

    ``frame`` is the complete encoded frame (length prefix included), kept so
    that a stream manager can forward it without re-encoding.
    """

    dst_task: int
    src_task: int
    stream: str
    body: memoryview
    frame: bytes
    tuples: int = 0


@dataclass(slots=True)
class AckFrame:
    """Acking traffic for spout task ``dst_task`` (see `acking.py`)."""

    dst_task: int
    src_task: int
    body: memoryview
    frame: bytes


@dataclass(slots=True)
class MarkerFrame:
    """Checkpoint ``checkpoint``'s marker from ``src_task`` to ``dst_task``: it follows
    everything ``src_task`` sent ``dst_task`` before taking its state for it."""

    dst_task: int
    src_task: int
    checkpoint: int
    frame: bytes


@dataclass(slots=True)
class ControlFrame:
    """A control message payload, still msgpack-encoded (see `messages.py`)."""

    payload: bytes


Frame = DataFrame | AckFrame | MarkerFrame | ControlFrame


def encode_data(
    dst_task: int,
    src_task: int,
    stream: str,
    body: bytes,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    *,
    tuples: int = 0,
) -> bytes:
    stream_bytes = stream.encode()
    if len(stream_bytes) > 0xFFFF:
        raise LocalProtocolError(f"stream name too long: {stream[:40]!r}...")
    length = _DATA_HEADER.size + len(stream_bytes) + len(body)
    if length > max_frame_bytes:
        raise LocalProtocolError(
            f"batch of {length} bytes exceeds the frame limit of {max_frame_bytes} bytes"
        )
    return b"".join(
        (
            _LENGTH.pack(length),
            _DATA_HEADER.pack(KIND_DATA, dst_task, src_task, tuples, len(stream_bytes)),
            stream_bytes,
            body,
        )
    )


def encode_ack(
    dst_task: int, src_task: int, body: bytes, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> bytes:
    length = _DATA_HEADER.size + len(body)
    if length > max_frame_bytes:
        raise LocalProtocolError(
            f"acking batch of {length} bytes exceeds the frame limit of {max_frame_bytes} bytes"
        )
    return b"".join(
        (_LENGTH.pack(length), _DATA_HEADER.pack(KIND_ACK, dst_task, src_task, 0, 0), body)
    )


def encode_marker(dst_task: int, src_task: int, checkpoint: int) -> bytes:
    header = _DATA_HEADER.pack(KIND_MARKER, dst_task, src_task, 0, 0)
    return _LENGTH.pack(len(header) + 8) + header + _U64.pack(checkpoint)


def encode_control(payload: bytes, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    length = 1 + len(payload)
    if length > max_frame_bytes:
        raise LocalProtocolError(
            f"control message of {length} bytes exceeds the frame limit of {max_frame_bytes}"
        )
    return _LENGTH.pack(length) + bytes((KIND_CONTROL,)) + payload


def data_body_limit(stream: str, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> int:
    """The largest body a DATA frame on ``stream`` can carry."""
    return max_frame_bytes - _DATA_HEADER.size - len(stream.encode())


class FrameDecoder:
    """Incremental decoder: ``feed(bytes) -> list[Frame]``.

    After it has raised `RemoteProtocolError` the decoder is poisoned: the
    stream is out of sync and the connection must be closed.
    """

    __slots__ = ("_buf", "_error", "held", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._error: RemoteProtocolError | None = None
        self.max_frame_bytes = max_frame_bytes
        #: the last feed stopped before a frame above the limit (see the module doc)
        self.held = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        pos = 0
        end = len(buf)
        self.held = False
        try:
            while end - pos >= 4:
                (length,) = _LENGTH.unpack_from(buf, pos)
                if length > self.max_frame_bytes and frames:
                    self.held = True
                    break
                if length == 0 or length > self.max_frame_bytes:
                    raise RemoteProtocolError(
                        f"frame length {length} outside 1..{self.max_frame_bytes}"
                    )
                stop = pos + 4 + length
                if stop > end:
                    break
                frames.append(self._parse(buf, pos, stop))
                pos = stop
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        finally:
            if pos:
                del buf[:pos]
        return frames

    @staticmethod
    def _parse(buf: bytearray, pos: int, stop: int) -> Frame:
        kind = buf[pos + 4]
        if kind == KIND_ACK:
            if stop - pos < 4 + _DATA_HEADER.size:
                raise RemoteProtocolError("ACK frame shorter than its header")
            _, dst, src, _, stream_len = _DATA_HEADER.unpack_from(buf, pos + 4)
            if stream_len:
                raise RemoteProtocolError("ACK frame with a stream name")
            frame = bytes(buf[pos:stop])
            return AckFrame(dst, src, memoryview(frame)[4 + _DATA_HEADER.size :], frame)
        if kind == KIND_DATA:
            if stop - pos < 4 + _DATA_HEADER.size:
                raise RemoteProtocolError("DATA frame shorter than its header")
            _, dst, src, tuples, stream_len = _DATA_HEADER.unpack_from(buf, pos + 4)
            body_start = pos + 4 + _DATA_HEADER.size + stream_len
            if body_start > stop:
                raise RemoteProtocolError("DATA frame stream name runs past the frame")
            try:
                stream = buf[pos + 4 + _DATA_HEADER.size : body_start].decode()
            except UnicodeDecodeError as exc:
                raise RemoteProtocolError("DATA frame stream name is not UTF-8") from exc
            frame = bytes(buf[pos:stop])
            return DataFrame(dst, src, stream, memoryview(frame)[body_start - pos :], frame, tuples)
        if kind == KIND_CONTROL:
            return ControlFrame(bytes(buf[pos + 5 : stop]))
        if kind == KIND_MARKER:
            if stop - pos != 4 + _DATA_HEADER.size + _U64.size:
                raise RemoteProtocolError("MARKER frame of the wrong size")
            _, dst, src, _, _ = _DATA_HEADER.unpack_from(buf, pos + 4)
            (checkpoint,) = _U64.unpack_from(buf, pos + 4 + _DATA_HEADER.size)
            return MarkerFrame(dst, src, checkpoint, bytes(buf[pos:stop]))
        raise RemoteProtocolError(f"unknown frame kind {kind}")
