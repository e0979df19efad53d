"""The sans-IO wire protocol: frames, control messages, tuple batches, plans."""

from __future__ import annotations

import dataclasses
import json
import struct
from typing import Any

import msgpack
import pytest

from heronpy_lite.errors import LocalProtocolError, RemoteProtocolError
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.frames import (
    DEFAULT_MAX_FRAME_BYTES,
    KIND_CONTROL,
    KIND_DATA,
    ControlFrame,
    DataFrame,
    FrameDecoder,
    MarkerFrame,
    encode_control,
    encode_data,
    encode_marker,
)
from heronpy_lite.wire.plan import (
    PAUSED,
    RUNNING,
    PackingPlan,
    PhysicalPlan,
    StmgrLocation,
    TaskPlacement,
)
from heronpy_lite.wire.tuples import unpack_batch


def raw_frame(kind: int, payload: bytes) -> bytes:
    """A frame built by hand (length prefix + kind + payload), bypassing the encoders."""
    return struct.pack(">IB", 1 + len(payload), kind) + payload


# --------------------------------------------------------------------------- frames


def test_data_frame_round_trip_keeps_header_fields_body_and_raw_bytes():
    encoded = encode_data(7, 3, "words", b"the body")
    frames = FrameDecoder().feed(encoded)
    assert len(frames) == 1
    (frame,) = frames
    assert isinstance(frame, DataFrame)
    assert (frame.dst_task, frame.src_task, frame.stream) == (7, 3, "words")
    assert bytes(frame.body) == b"the body"
    assert frame.frame == encoded


def test_data_frame_with_unicode_stream_empty_body_and_large_task_ids():
    encoded = encode_data(2**32 - 1, 2**31, "flüsse-€", b"")
    (frame,) = FrameDecoder().feed(encoded)
    assert isinstance(frame, DataFrame)
    assert frame.dst_task == 2**32 - 1
    assert frame.src_task == 2**31
    assert frame.stream == "flüsse-€"
    assert bytes(frame.body) == b""


def test_data_frame_layout_matches_the_documented_header():
    encoded = encode_data(5, 9, "s", b"xy", tuples=7)
    # length:u32 kind:u8 dst:u32 src:u32 tuples:u32 stream_len:u16 stream body
    header = struct.pack(">IBIIIH", 1 + 4 + 4 + 4 + 2 + 1 + 2, KIND_DATA, 5, 9, 7, 1)
    assert encoded == header + b"sxy"
    (frame,) = FrameDecoder().feed(encoded)
    assert isinstance(frame, DataFrame) and frame.tuples == 7


def test_control_frame_round_trip():
    payload = b"\x81\xa1t\xa9heartbeat"
    encoded = encode_control(payload)
    assert encoded == struct.pack(">IB", 1 + len(payload), KIND_CONTROL) + payload
    (frame,) = FrameDecoder().feed(encoded)
    assert isinstance(frame, ControlFrame)
    assert frame.payload == b"\x81\xa1t\xa9heartbeat"


def test_control_frame_with_empty_payload():
    (frame,) = FrameDecoder().feed(encode_control(b""))
    assert frame == ControlFrame(b"")


def test_feed_byte_by_byte_yields_each_frame_exactly_when_it_completes():
    first = encode_data(1, 2, "default", b"abc")
    second = encode_control(b"payload")
    stream = first + second
    decoder = FrameDecoder()
    got: list[tuple[int, object]] = []
    for i in range(len(stream)):
        for frame in decoder.feed(stream[i : i + 1]):
            got.append((i, frame))
    assert [i for i, _ in got] == [len(first) - 1, len(stream) - 1]
    data, control = (f for _, f in got)
    assert isinstance(data, DataFrame)
    assert bytes(data.body) == b"abc"
    assert control == ControlFrame(b"payload")
    assert decoder.buffered == 0


def test_feed_keeps_an_incomplete_frame_buffered_until_the_rest_arrives():
    encoded = encode_data(4, 1, "default", b"0123456789")
    decoder = FrameDecoder()
    assert decoder.feed(encoded[:3]) == []  # not even a length yet
    assert decoder.buffered == 3
    assert decoder.feed(encoded[3:-1]) == []
    assert decoder.buffered == len(encoded) - 1
    (frame,) = decoder.feed(encoded[-1:])
    assert bytes(frame.body) == b"0123456789"
    assert decoder.buffered == 0


def test_several_frames_in_one_feed_come_out_in_order():
    parts = [
        encode_data(1, 9, "a", b"1"),
        encode_control(b"c1"),
        encode_data(2, 9, "b", b"22"),
        encode_data(3, 9, "c", b"333"),
        encode_control(b"c2"),
    ]
    extra = encode_data(4, 9, "d", b"4444")
    decoder = FrameDecoder()
    frames = decoder.feed(b"".join(parts) + extra[:6])
    assert len(frames) == 5
    assert [type(f).__name__ for f in frames] == [
        "DataFrame",
        "ControlFrame",
        "DataFrame",
        "DataFrame",
        "ControlFrame",
    ]
    assert [f.dst_task for f in frames if isinstance(f, DataFrame)] == [1, 2, 3]
    assert [bytes(f.body) for f in frames if isinstance(f, DataFrame)] == [b"1", b"22", b"333"]
    assert [f.payload for f in frames if isinstance(f, ControlFrame)] == [b"c1", b"c2"]
    assert decoder.buffered == 6
    (last,) = decoder.feed(extra[6:])
    assert last.dst_task == 4


def test_decoded_body_is_independent_of_later_feeds():
    decoder = FrameDecoder()
    (frame,) = decoder.feed(encode_data(1, 2, "s", b"keep me"))
    decoder.feed(encode_data(1, 2, "s", b"other bytes") * 3)
    assert bytes(frame.body) == b"keep me"


def test_zero_length_frame_is_a_remote_protocol_error():
    with pytest.raises(RemoteProtocolError, match="frame length 0"):
        FrameDecoder().feed(b"\x00\x00\x00\x00")


def test_unknown_frame_kind_is_a_remote_protocol_error():
    with pytest.raises(RemoteProtocolError, match="unknown frame kind 9"):
        FrameDecoder().feed(raw_frame(9, b"whatever"))


def test_data_frame_shorter_than_its_header_is_rejected():
    with pytest.raises(RemoteProtocolError, match="shorter than its header"):
        FrameDecoder().feed(raw_frame(KIND_DATA, b"\x00\x00\x00\x01"))


def test_data_frame_whose_stream_name_runs_past_the_frame_is_rejected():
    payload = struct.pack(">IIIH", 1, 2, 0, 50) + b"short"
    with pytest.raises(RemoteProtocolError, match="runs past the frame"):
        FrameDecoder().feed(raw_frame(KIND_DATA, payload))


def test_data_frame_with_non_utf8_stream_name_is_rejected():
    payload = struct.pack(">IIIH", 1, 2, 1, 2) + b"\xff\xfe" + b"body"
    with pytest.raises(RemoteProtocolError, match="not UTF-8"):
        FrameDecoder().feed(raw_frame(KIND_DATA, payload))


def test_oversized_frame_is_rejected_from_its_length_alone():
    decoder = FrameDecoder(max_frame_bytes=1024)
    with pytest.raises(RemoteProtocolError, match=r"frame length 1025 outside 1\.\.1024"):
        decoder.feed(struct.pack(">I", 1025))  # only the length prefix has arrived


def test_a_frame_above_the_limit_after_complete_ones_is_held_until_the_limit_rises():
    decoder = FrameDecoder(max_frame_bytes=64)
    small, large = encode_control(b"hello"), encode_control(b"x" * 500)
    (frame,) = decoder.feed(small + large[:100])
    assert isinstance(frame, ControlFrame) and frame.payload == b"hello" and decoder.held
    decoder.max_frame_bytes = 1024  # the link said who it is
    assert decoder.feed(b"") == [] and not decoder.held
    (big,) = decoder.feed(large[100:])
    assert big.payload == b"x" * 500
    held = FrameDecoder(max_frame_bytes=64)
    held.feed(small + large[:10])
    with pytest.raises(RemoteProtocolError, match="outside"):
        held.feed(b"")  # not raised: refused as any other


def test_decoder_stays_poisoned_after_a_protocol_error():
    decoder = FrameDecoder(max_frame_bytes=1024)
    with pytest.raises(RemoteProtocolError) as first:
        decoder.feed(struct.pack(">I", 10_000))
    # even a perfectly valid frame (or nothing at all) is refused from now on
    with pytest.raises(RemoteProtocolError) as second:
        decoder.feed(encode_control(b"fine"))
    assert second.value is first.value
    with pytest.raises(RemoteProtocolError):
        decoder.feed(b"")


def test_decoder_poisoned_by_unknown_kind_refuses_later_frames():
    decoder = FrameDecoder()
    with pytest.raises(RemoteProtocolError):
        decoder.feed(raw_frame(0, b"x"))
    with pytest.raises(RemoteProtocolError):
        decoder.feed(encode_control(b"fine"))


def test_frame_exactly_at_the_limit_is_accepted():
    limit = 1024
    stream = "s"
    body = b"x" * (limit - 15 - len(stream))  # 15 = kind + dst + src + tuples + stream_len
    encoded = encode_data(1, 2, stream, body, max_frame_bytes=limit)
    (frame,) = FrameDecoder(max_frame_bytes=limit).feed(encoded)
    assert bytes(frame.body) == body
    with pytest.raises(LocalProtocolError):
        encode_data(1, 2, stream, body + b"x", max_frame_bytes=limit)


def test_encode_data_of_an_oversized_batch_is_a_local_protocol_error():
    with pytest.raises(LocalProtocolError, match="exceeds the frame limit of 1024"):
        encode_data(1, 2, "default", b"x" * 2000, max_frame_bytes=1024)


def test_encode_data_default_limit_is_32_mib():
    assert DEFAULT_MAX_FRAME_BYTES == 32 * 1024 * 1024
    with pytest.raises(LocalProtocolError):
        encode_data(1, 2, "s", bytes(DEFAULT_MAX_FRAME_BYTES))


def test_encode_data_with_a_stream_name_longer_than_u16_is_a_local_protocol_error():
    with pytest.raises(LocalProtocolError, match="stream name too long"):
        encode_data(1, 2, "s" * 0x10000, b"")


def test_encode_control_of_an_oversized_payload_is_a_local_protocol_error():
    encode_control(b"x" * 1023, max_frame_bytes=1024)  # 1 + 1023 fits
    with pytest.raises(LocalProtocolError, match="exceeds the frame limit"):
        encode_control(b"x" * 1024, max_frame_bytes=1024)


@pytest.mark.parametrize("dst", [0, 1, 42, 65536, 2**32 - 1])
def test_a_data_frame_s_destination_reads_back(dst):
    encoded = encode_data(dst, 17, "some-stream", b"body")
    (frame,) = FrameDecoder().feed(encoded)
    assert (frame.dst_task, frame.src_task, frame.stream, frame.frame) == (
        dst,
        17,
        "some-stream",
        encoded,
    )


# ------------------------------------------------------------------ control messages

SAMPLE_PLAN = {
    "packing": {"topology": "t", "num_containers": 1, "tasks": [[1, "spout", 0, 1]]},
    "state": "RUNNING",
    "stmgrs": [[1, "127.0.0.1", 5000, 42]],
    "instances": [],
}

MESSAGES = [
    m.AuthHello(b"n" * 16),
    m.AuthProof(b"p" * 32),
    m.RegisterStmgr("wc", 2, "127.0.0.1", 6001, 1234, 3, [1, 3, 5]),
    m.PhysicalPlanUpdate(SAMPLE_PLAN),
    m.Rejected("wrong topology"),
    m.Heartbeat(1),
    m.HelloStmgr("wc", 2),
    m.BackpressureNotice(2, "count", True),
    m.SpoutThrottle(True),
    m.MetricsSnapshot("task-3", [["heron_emitted_total", "counter", {"stream": "s"}, 5]]),
    m.MetricsSnapshot("stmgr", [], 1700000000.25, [{"type": "ValueError", "count": 2}]),
    m.RegisterInstance("wc", 7, "count", 4321, 0),
    m.InstanceStatus(7, "count", "failed", 4321, 2, "ValueError: boom"),
    m.InstanceStatus(7, "count", "running", 4321, 0),
    m.ControlRequest("activate"),
    m.ControlRequest("status", {"verbose": True, "tasks": [1, 2]}),
    m.ControlResponse(True),
    m.ControlResponse(False, "no such topology", {"known": ["a", "b"], "n": 2}),
    m.RegisterStmgr("wc", 2, "127.0.0.1", 6001, 1234, 3, [1, 3, 5], 4),
    m.HelloStmgr("wc", 2, 7),
    m.StartCheckpoint(12),
    m.StateStored(12, 3, 2048, "delta", 0.015),
    m.CheckpointFailed(12, "stmgr 1", "alignment of task 3 passed its bound"),
    m.CheckpointComplete(12, [10, 11, 12]),
    m.Restore(11, 5),
    m.Restore(-1, 6),
    m.Restored(5, 3),
    m.Restored(5, 4, "no state file for checkpoint 11"),
    m.EpochStart(5),
    m.RestoreDone(5, 1, [[3, "damaged"]]),
    m.Resume(5),
]


def test_sample_messages_cover_every_message_class():
    # dataclass(slots=True) rebuilds each class, so compare by name
    names = {type(msg).__name__ for msg in MESSAGES}
    assert names == {cls.__name__ for cls in m.Message.__subclasses__()}
    assert len({type(msg).TYPE for msg in MESSAGES}) == len(names)


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda msg: type(msg).__name__)
def test_control_message_round_trip_through_a_frame(msg):
    (frame,) = FrameDecoder().feed(m.encode(msg))
    assert isinstance(frame, ControlFrame)
    decoded = m.decode(frame.payload)
    assert type(decoded) is type(msg)
    assert decoded == msg


def test_control_message_payload_is_a_msgpack_map_with_the_type_tag():
    encoded = m.encode(m.Heartbeat(3))
    (frame,) = FrameDecoder().feed(encoded)
    assert msgpack.unpackb(frame.payload) == {"t": "heartbeat", "container": 3, "stats": {}}


def test_a_metrics_snapshot_without_time_or_exceptions_still_decodes():
    """Producers from before the snapshots carried their time (rolling upgrades)."""
    payload = msgpack.packb({"t": "metrics", "source": "task-1", "samples": []})
    assert m.decode(payload) == m.MetricsSnapshot("task-1", [], 0.0, [])
    with pytest.raises(RemoteProtocolError):
        m.decode(msgpack.packb({"t": "metrics", "source": "x", "samples": [], "time": "now"}))


def test_encode_message_over_the_frame_limit_is_a_local_protocol_error():
    with pytest.raises(LocalProtocolError):
        m.encode(m.Rejected("x" * 2000), max_frame_bytes=1024)


@pytest.mark.parametrize(
    "payload",
    [b"\xc1", b"\x92\x01", b"\x01\x02", b""],
    ids=["reserved-byte", "truncated-array", "trailing-data", "empty"],
)
def test_decode_of_non_msgpack_is_a_remote_protocol_error(payload):
    with pytest.raises(RemoteProtocolError, match="not msgpack"):
        m.decode(payload)


@pytest.mark.parametrize("value", [[1, 2], "heartbeat", 7, None])
def test_decode_of_a_non_map_is_a_remote_protocol_error(value):
    with pytest.raises(RemoteProtocolError, match="not a map"):
        m.decode(msgpack.packb(value))


@pytest.mark.parametrize(
    "fields",
    [{"t": "no_such_message"}, {"container": 1}, {"t": None, "container": 1}, {"t": 5}],
    ids=["unknown-name", "missing-tag", "null-tag", "int-tag"],
)
def test_decode_of_an_unknown_type_is_a_remote_protocol_error(fields):
    with pytest.raises(RemoteProtocolError, match="unknown type"):
        m.decode(msgpack.packb(fields))


@pytest.mark.parametrize("tag", [["heartbeat"], {"a": 1}], ids=["list-tag", "map-tag"])
def test_decode_of_an_unhashable_type_tag_is_a_remote_protocol_error(tag):
    # A peer can put any msgpack value under "t"; an array or map is unhashable.
    with pytest.raises(RemoteProtocolError):
        m.decode(msgpack.packb({"t": tag, "container": 1}))


@pytest.mark.parametrize(
    "fields",
    [
        {"t": "heartbeat"},
        {"t": "heartbeat", "container": 1, "extra": 2},
        {"t": "register_instance", "topology": "wc", "task_id": 1},
        {"t": "heartbeat", 1: 2},
        {"t": "heartbeat", "container": 1, "TYPE": "heartbeat"},
    ],
    ids=["missing-field", "unexpected-field", "missing-several", "non-str-key", "classvar"],
)
def test_decode_of_bad_fields_is_a_remote_protocol_error(fields):
    with pytest.raises(RemoteProtocolError, match="bad"):
        m.decode(msgpack.packb(fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"t": "heartbeat", "container": "one"},
        {
            "t": "register_stmgr",
            "topology": "wc",
            "container": 1,
            "host": "127.0.0.1",
            "port": "not-a-port",
            "pid": 1,
            "restarts": 0,
            "task_ids": [1],
        },
    ],
    ids=["heartbeat-container-str", "register-stmgr-port-str"],
)
def test_decode_of_wrongly_typed_fields_is_a_remote_protocol_error(fields):
    # The module promises typed messages "validated on the way in": a field
    # whose value has the wrong type does not fit its message class.
    with pytest.raises(RemoteProtocolError):
        m.decode(msgpack.packb(fields))


def test_message_defaults_apply_when_optional_fields_are_absent():
    msg = m.decode(msgpack.packb({"t": "control_request", "command": "status"}))
    assert msg == m.ControlRequest("status", {})
    status = m.decode(
        msgpack.packb(
            {
                "t": "instance_status",
                "task_id": 1,
                "component": "c",
                "state": "running",
                "pid": 2,
                "restarts": 0,
            }
        )
    )
    assert isinstance(status, m.InstanceStatus)
    assert status.error == ""


def test_messages_are_frozen():
    msg = m.Heartbeat(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.container = 2  # type: ignore[misc]


# ----------------------------------------------------------------------- tuple batches


def pack_batch(tuples: list[Any]) -> bytes:
    """A body as the tuple path builds it (its packing is tested in test_tuplepath.py)."""
    return msgpack.packb(tuples, use_bin_type=True)  # type: ignore[no-any-return]


def test_tuple_batch_round_trip_of_every_msgpack_type():
    batch = [
        [None, True, False],
        [0, -1, 2**63 - 1, -(2**63), 2**64 - 1],
        [1.5, -0.0, "text", "ünïcødé", ""],
        [b"\x00\xffbytes", b""],
        [[1, [2, [3]]], {"k": [1, 2], "n": None, 3: "int key"}],
        [],
    ]
    assert unpack_batch(pack_batch(batch)) == batch


def test_tuples_come_back_as_lists():
    assert unpack_batch(pack_batch([("a", 1), ("b", (2, 3))])) == [["a", 1], ["b", [2, 3]]]


def test_empty_batch_round_trip():
    assert unpack_batch(pack_batch([])) == []


def test_unpack_batch_accepts_a_memoryview_body():
    encoded = encode_data(1, 2, "s", pack_batch([["x", 1], ["y", 2]]))
    (frame,) = FrameDecoder().feed(encoded)
    assert isinstance(frame.body, memoryview)
    assert unpack_batch(frame.body) == [["x", 1], ["y", 2]]


@pytest.mark.parametrize("body", [b"\xc1", b"\x92\x01", b"\x01\x02"])
def test_unpack_batch_of_non_msgpack_is_a_remote_protocol_error(body):
    with pytest.raises(RemoteProtocolError, match="not msgpack"):
        unpack_batch(body)


@pytest.mark.parametrize("value", [{"a": 1}, 5, "str", None])
def test_unpack_batch_of_a_non_array_is_a_remote_protocol_error(value):
    with pytest.raises(RemoteProtocolError, match="not an array"):
        unpack_batch(msgpack.packb(value))


# ------------------------------------------------------------------------------- plans


def sample_packing() -> PackingPlan:
    return PackingPlan(
        topology="wc",
        num_containers=2,
        tasks=(
            TaskPlacement(1, "words", 0, 1),
            TaskPlacement(2, "words", 1, 2),
            TaskPlacement(3, "count", 0, 1),
            TaskPlacement(4, "count", 1, 2),
            TaskPlacement(5, "count", 2, 1),
        ),
    )


def sample_physical(state: str = RUNNING) -> PhysicalPlan:
    return PhysicalPlan(
        packing=sample_packing(),
        stmgrs={
            1: StmgrLocation(1, "127.0.0.1", 7001, 101),
            2: StmgrLocation(2, "127.0.0.1", 7002, 102),
        },
        state=state,
        instances={
            3: {"state": "failed", "pid": 9, "restarts": 1, "error": "boom"},
            1: {"state": "running", "pid": 8, "restarts": 0, "error": ""},
        },
    )


def test_packing_plan_round_trip_through_dict_msgpack_and_json():
    plan = sample_packing()
    assert PackingPlan.from_dict(plan.to_dict()) == plan
    assert PackingPlan.from_dict(msgpack.unpackb(msgpack.packb(plan.to_dict()))) == plan
    assert PackingPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_packing_plan_queries():
    plan = sample_packing()
    assert [t.task_id for t in plan.tasks_in(1)] == [1, 3, 5]
    assert [t.task_id for t in plan.tasks_in(2)] == [2, 4]
    assert plan.tasks_in(0) == []
    assert plan.component_tasks("count") == [3, 4, 5]
    assert plan.component_tasks("nope") == []


@pytest.mark.parametrize("state", [RUNNING, PAUSED])
def test_physical_plan_round_trip_through_dict_msgpack_and_json(state):
    plan = sample_physical(state)
    assert PhysicalPlan.from_dict(plan.to_dict()) == plan
    assert PhysicalPlan.from_dict(msgpack.unpackb(msgpack.packb(plan.to_dict()))) == plan
    assert PhysicalPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_physical_plan_round_trip_inside_a_control_message():
    plan = sample_physical()
    (frame,) = FrameDecoder().feed(m.encode(m.PhysicalPlanUpdate(plan.to_dict())))
    msg = m.decode(frame.payload)
    assert isinstance(msg, m.PhysicalPlanUpdate)
    assert PhysicalPlan.from_dict(msg.plan) == plan


def test_physical_plan_without_instances_defaults_to_empty():
    d = sample_physical().to_dict()
    del d["instances"]
    assert PhysicalPlan.from_dict(d).instances == {}


def test_physical_plan_queries():
    plan = sample_physical()
    assert plan.topology == "wc"
    assert plan.container_of() == {1: 1, 2: 2, 3: 1, 4: 2, 5: 1}


@pytest.mark.parametrize(
    "d",
    [
        None,
        [],
        "packing",
        {},
        {"topology": "t", "num_containers": 1},
        {"topology": "t", "num_containers": "one", "tasks": []},
        {"topology": "t", "num_containers": 1, "tasks": [[1, "c", 0]]},
        {"topology": "t", "num_containers": 1, "tasks": [[1, "c", 0, 1, 9]]},
        {"topology": "t", "num_containers": 1, "tasks": [["x", "c", 0, 1]]},
        {"topology": "t", "num_containers": 1, "tasks": None},
        {"topology": "t", "num_containers": 1, "tasks": [None]},
    ],
)
def test_malformed_packing_plan_is_a_remote_protocol_error(d):
    with pytest.raises(RemoteProtocolError, match="malformed packing plan"):
        PackingPlan.from_dict(d)


def _physical_with(**changes):
    d = sample_physical().to_dict()
    d.update(changes)
    return d


@pytest.mark.parametrize(
    "d",
    [
        None,
        [],
        {},
        _physical_with(stmgrs=[[1, "h", 1]]),
        _physical_with(stmgrs=[[1, "h", "port", 1]]),
        _physical_with(stmgrs=None),
        _physical_with(instances=[[1, 5]]),
        _physical_with(instances=[[1, "x"]]),
        _physical_with(instances=[["one", {}]]),
        {"stmgrs": [], "state": "RUNNING"},
    ],
)
def test_malformed_physical_plan_is_a_remote_protocol_error(d):
    with pytest.raises(RemoteProtocolError, match="malformed physical plan"):
        PhysicalPlan.from_dict(d)


def test_physical_plan_with_a_malformed_packing_is_a_remote_protocol_error():
    with pytest.raises(RemoteProtocolError, match="malformed packing plan"):
        PhysicalPlan.from_dict(_physical_with(packing={"topology": "t"}))


@pytest.mark.parametrize("checkpoint", [0, 1, 2**40, 2**64 - 1])
def test_a_marker_frame_reads_back(checkpoint):
    encoded = encode_marker(7, 3, checkpoint)
    (frame,) = FrameDecoder().feed(encoded)
    assert isinstance(frame, MarkerFrame)
    assert (frame.dst_task, frame.src_task, frame.checkpoint, frame.frame) == (
        7,
        3,
        checkpoint,
        encoded,
    )


def test_a_marker_frame_of_the_wrong_size_is_a_protocol_error():
    bad = encode_marker(7, 3, 1)[:-1]
    bad = (len(bad) - 4).to_bytes(4, "big") + bad[4:]
    with pytest.raises(RemoteProtocolError, match="MARKER frame"):
        FrameDecoder().feed(bad)
