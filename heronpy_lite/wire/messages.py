"""Control messages: typed, msgpack-encoded, validated on the way in.

Each message is a frozen dataclass with a wire name ``TYPE``. `encode` turns
one into a CONTROL frame; `decode` turns a CONTROL payload back into the
right class, raising `RemoteProtocolError` for an unknown type or fields
that do not fit. Nothing here is ever unpickled: msgpack only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgpack

from heronpy_lite.errors import LocalProtocolError, RemoteProtocolError
from heronpy_lite.wire.frames import DEFAULT_MAX_FRAME_BYTES, encode_control


@dataclass(frozen=True, slots=True)
class Message:
    TYPE: ClassVar[str] = ""


_REGISTRY: dict[str, type[Message]] = {}


def _message(cls: type[Message]) -> type[Message]:
    _REGISTRY[cls.TYPE] = cls
    return cls


@_message
@dataclass(frozen=True, slots=True)
class AuthHello(Message):
    """Either end, first on every link when authentication is on: a fresh nonce
    (see `handshake.py`)."""

    TYPE: ClassVar[str] = "auth_hello"
    nonce: bytes


@_message
@dataclass(frozen=True, slots=True)
class AuthProof(Message):
    """Either end, after the other's `AuthHello`: an HMAC of both nonces under the
    topology's secret, proving it knows the secret."""

    TYPE: ClassVar[str] = "auth_proof"
    mac: bytes


@_message
@dataclass(frozen=True, slots=True)
class RegisterStmgr(Message):
    """stmgr -> tmaster: this container's stream manager is up at host:port."""

    TYPE: ClassVar[str] = "register_stmgr"
    topology: str
    container: int
    host: str
    port: int
    pid: int
    restarts: int
    task_ids: list[int]
    #: EFFECTIVELY_ONCE: the epoch the stream manager is in (-1: none yet)
    epoch: int = -1


@_message
@dataclass(frozen=True, slots=True)
class PhysicalPlanUpdate(Message):
    """tmaster -> stmgr -> instance: the current physical plan (see `plan.py`)."""

    TYPE: ClassVar[str] = "pplan"
    plan: dict[str, Any]


@_message
@dataclass(frozen=True, slots=True)
class Rejected(Message):
    """Any peer: your registration is refused; the reason is for the log."""

    TYPE: ClassVar[str] = "rejected"
    reason: str


@_message
@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    """stmgr -> tmaster, periodically, with the stmgr's statistics for ``status``
    (backpressure: culprits, paused components, seconds of each)."""

    TYPE: ClassVar[str] = "heartbeat"
    container: int
    stats: dict[str, Any] = field(default_factory=dict)


@_message
@dataclass(frozen=True, slots=True)
class HelloStmgr(Message):
    """stmgr -> stmgr: first frame on a data connection between containers."""

    TYPE: ClassVar[str] = "hello_stmgr"
    topology: str
    container: int
    #: EFFECTIVELY_ONCE: the sender's epoch (its frames belong to it)
    epoch: int = 0


@_message
@dataclass(frozen=True, slots=True)
class BackpressureNotice(Message):
    """stmgr -> every peer stmgr: ``component`` started/stopped congesting here."""

    TYPE: ClassVar[str] = "backpressure"
    container: int
    component: str
    start: bool


@_message
@dataclass(frozen=True, slots=True)
class SpoutThrottle(Message):
    """stmgr -> a local spout instance: stop (or resume) calling ``next_tuple``.

    Backpressure, not deactivation: ``deactivate()`` is not called.
    """

    TYPE: ClassVar[str] = "spout_throttle"
    throttled: bool


@_message
@dataclass(frozen=True, slots=True)
class MetricsSnapshot(Message):
    """a stmgr or instance -> its container's metrics manager, periodically.

    ``source`` identifies the process (``stmgr``, ``task-<id>``); a
    newer snapshot of a source replaces the older one. Each sample is
    ``[name, kind, labels, value]``: kind ``counter`` or ``gauge`` with a
    number, or ``summary`` with ``[count, sum]`` (see `wire/metric_names.py`).

    ``time`` is the producer's clock (seconds since the epoch) when it took
    the samples: rates are computed between two snapshots of one source
    from their own times, never from when they arrived or were scraped.
    ``exceptions`` are the producer's recent user-code exceptions, one map
    per distinct exception (``where``, ``type``, ``message``, ``traceback``,
    ``count``, ``first``, ``last``). Both are optional on the wire: a
    producer that sends neither is stamped on arrival.
    """

    TYPE: ClassVar[str] = "metrics"
    source: str
    samples: list[Any]
    time: float = 0.0
    exceptions: list[Any] = field(default_factory=list)


@_message
@dataclass(frozen=True, slots=True)
class RegisterInstance(Message):
    """instance -> stmgr: first frame from an instance process."""

    TYPE: ClassVar[str] = "register_instance"
    topology: str
    task_id: int
    component: str
    pid: int
    restarts: int


@_message
@dataclass(frozen=True, slots=True)
class InstanceStatus(Message):
    """instance -> stmgr -> tmaster: lifecycle state of one task.

    ``state`` is one of ``starting``, ``running``, ``failed``;
    ``error`` holds the user's exception as one line when ``failed``.
    """

    TYPE: ClassVar[str] = "instance_status"
    task_id: int
    component: str
    state: str
    pid: int
    restarts: int
    error: str = ""


@_message
@dataclass(frozen=True, slots=True)
class ControlRequest(Message):
    """cli -> tmaster: ``activate``, ``deactivate`` or ``status``."""

    TYPE: ClassVar[str] = "control_request"
    command: str
    args: dict[str, Any] = field(default_factory=dict)


@_message
@dataclass(frozen=True, slots=True)
class ControlResponse(Message):
    """tmaster -> cli: outcome of a `ControlRequest`."""

    TYPE: ClassVar[str] = "control_response"
    ok: bool
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


# -- EFFECTIVELY_ONCE (see tmaster/checkpoints.py for the protocol) --


@_message
@dataclass(frozen=True, slots=True)
class StartCheckpoint(Message):
    """tmaster -> every stmgr -> its spout instances: take your state for
    ``checkpoint``, then send its markers after what you emitted before."""

    TYPE: ClassVar[str] = "start_checkpoint"
    checkpoint: int


@_message
@dataclass(frozen=True, slots=True)
class StateStored(Message):
    """instance -> its stmgr -> tmaster: ``task_id``'s state for ``checkpoint`` is
    stored (``size`` bytes, a ``kind`` "full"/"delta"/"none" file, in ``seconds``)."""

    TYPE: ClassVar[str] = "state_stored"
    checkpoint: int
    task_id: int
    size: int
    kind: str
    seconds: float


@_message
@dataclass(frozen=True, slots=True)
class CheckpointFailed(Message):
    """instance or stmgr -> tmaster: ``checkpoint`` cannot complete (a state that
    cannot be stored, an alignment over its bound); ``where`` says who."""

    TYPE: ClassVar[str] = "checkpoint_failed"
    checkpoint: int
    where: str
    reason: str


@_message
@dataclass(frozen=True, slots=True)
class CheckpointComplete(Message):
    """tmaster -> every stmgr -> its instances: ``checkpoint`` is globally complete;
    ``kept``: the checkpoints whose files must stay (the complete ones still kept,
    and the one the current epoch started from); older files may go. The rest
    are the coordinator's figures, which the stream managers export as metrics."""

    TYPE: ClassVar[str] = "checkpoint_complete"
    checkpoint: int
    kept: list[int]
    duration: float = 0.0  # seconds from start to the last state stored
    size: int = 0  # bytes stored for it, every task together
    failed: int = 0  # checkpoints abandoned so far (failed, declined, timed out)


@_message
@dataclass(frozen=True, slots=True)
class Restore(Message):
    """tmaster -> every stmgr -> its instances: roll back to ``checkpoint`` (-1: to
    the empty state) and enter ``epoch``; nothing of an older epoch counts."""

    TYPE: ClassVar[str] = "restore"
    checkpoint: int
    epoch: int
    #: each component's task ids when ``checkpoint`` was taken (after a rescale
    #: not as now: instance/stateful.py finds each task's state by it)
    layout: dict[str, Any] = field(default_factory=dict)


@_message
@dataclass(frozen=True, slots=True)
class Restored(Message):
    """instance -> its stmgr: ``task_id`` holds the state ``Restore`` named and is in
    ``epoch``; what it sends from now on belongs to it. ``error``: it could not
    load that state (a missing or damaged file)."""

    TYPE: ClassVar[str] = "restored"
    epoch: int
    task_id: int
    error: str = ""


@_message
@dataclass(frozen=True, slots=True)
class EpochStart(Message):
    """stmgr -> a peer, on its connection to it: what follows is of ``epoch``."""

    TYPE: ClassVar[str] = "epoch_start"
    epoch: int


@_message
@dataclass(frozen=True, slots=True)
class RestoreDone(Message):
    """stmgr -> tmaster: every local instance answered ``Restore`` for ``epoch``;
    ``failed`` lists [task, error] of those that could not load their state."""

    TYPE: ClassVar[str] = "restore_done"
    epoch: int
    container: int
    failed: list[Any]


@_message
@dataclass(frozen=True, slots=True)
class Resume(Message):
    """tmaster -> every stmgr -> its spouts: every instance is in ``epoch``: go on."""

    TYPE: ClassVar[str] = "resume"
    epoch: int


def encode(msg: Message, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """A complete CONTROL frame holding ``msg``."""
    fields = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
    fields["t"] = msg.TYPE
    return encode_control(msgpack.packb(fields, use_bin_type=True), max_frame_bytes)


def decode(payload: bytes) -> Message:
    """The message in a CONTROL payload; `RemoteProtocolError` if malformed."""
    try:
        fields = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise RemoteProtocolError(f"control payload is not msgpack: {exc}") from exc
    if not isinstance(fields, dict):
        raise RemoteProtocolError("control payload is not a map")
    tag = fields.pop("t", None)
    cls = _REGISTRY.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise RemoteProtocolError("control message of unknown type")
    for name, value in fields.items():
        check = _field_checks(cls).get(name)
        if check is not None and not check(value):
            raise RemoteProtocolError(f"bad {cls.TYPE} message: field {name!r} = {value!r:.60}")
    try:
        return cls(**fields)
    except TypeError as exc:
        raise RemoteProtocolError(f"bad {cls.TYPE} message: {exc}") from exc


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "bytes": lambda v: isinstance(v, bytes),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "list[Any]": lambda v: isinstance(v, list),
    "list[int]": lambda v: (
        isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
    ),
    "dict[str, Any]": lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
}


_FIELD_CHECKS: dict[str, dict[str, Callable[[Any], bool]]] = {}


def _field_checks(cls: type[Message]) -> dict[str, Callable[[Any], bool]]:
    """Per field, a check of the wire value against the field's annotation."""
    cached = _FIELD_CHECKS.get(cls.TYPE)
    if cached is not None:
        return cached
    checks = {}
    for f in dataclasses.fields(cls):
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        if annotation not in _CHECKS:
            raise LocalProtocolError(f"{cls.__name__}.{f.name}: no wire check for {annotation}")
        checks[f.name] = _CHECKS[annotation]
    _FIELD_CHECKS[cls.TYPE] = checks
    return checks
