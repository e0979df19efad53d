"""A task (SpoutInstance, BoltInstance): batching, frames, emit checks, delivery,
acks, once per tuple path (the ``tuple_path`` fixture: the pure-Python reference
and the C extension, see conftest.py)."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from routing_components import (
    MultiStreamSpout,
    Recorder,
    Sink,
    WordSpout,
    make_host,
    one_consumer,
    router_for,
)

from heronpy_lite.api import Bolt, Grouping, HeronTuple, TopologyBuilder
from heronpy_lite.errors import EmitError
from heronpy_lite.instance.task import TaskInstance
from heronpy_lite.wire.frames import DataFrame, FrameDecoder
from heronpy_lite.wire.tuples import unpack_batch

pytestmark = pytest.mark.usefixtures("tuple_path")


def packed(tuples: list[Any]) -> bytes:
    """A DATA body of ``tuples``, as the tuple path writes it."""
    return msgpack.packb(tuples, use_bin_type=True)  # type: ignore[no-any-return]


def decode_outbox(host: TaskInstance) -> list[DataFrame]:
    frames = FrameDecoder().feed(b"".join(host.emitter.outbox))
    assert all(isinstance(f, DataFrame) for f in frames)
    return frames  # type: ignore[return-value]


def delivered(host: TaskInstance) -> dict[int, list[list[Any]]]:
    """dst task -> tuples, in frame order."""
    result: dict[int, list[list[Any]]] = {}
    for frame in decode_outbox(host):
        result.setdefault(frame.dst_task, []).extend(unpack_batch(frame.body))
    return result


def test_emit_batches_per_destination_until_flush():
    host = make_host(one_consumer(Grouping.ALL, par=3), "spout")
    host.component.emit(["a", 1])
    host.component.emit(["b", 2])
    assert host.emitter.outbox == []
    assert host.has_pending
    host.flush()
    frames = decode_outbox(host)
    assert sorted(f.dst_task for f in frames) == [2, 3, 4]  # one frame per destination
    for frame in frames:
        assert frame.src_task == 1
        assert frame.stream == "default"
        assert unpack_batch(frame.body) == [["a", 1], ["b", 2]]
    assert not host.has_pending
    assert host.emitted == {"default": 2}


def test_flush_frames_contain_exactly_the_emitted_tuples():
    host = make_host(one_consumer(Grouping.fields("word"), par=3), "spout")
    emitted = [[f"w{i % 7}", i] for i in range(40)]
    for values in emitted:
        host.component.emit(values)
    host.flush()
    got = delivered(host)
    assert sorted(v for vs in got.values() for v in vs) == sorted(emitted)
    router = router_for(one_consumer(Grouping.fields("word"), par=3))
    for values in emitted:  # each tuple went where the grouping says, in emit order
        (task,) = router.destinations("default", values)
        assert values in got[task]
    for tuples in got.values():
        assert [v[1] for v in tuples] == sorted(v[1] for v in tuples)


def test_flush_with_nothing_pending_produces_no_frame():
    host = make_host(one_consumer(Grouping.SHUFFLE), "spout")
    host.flush()
    assert host.emitter.outbox == []
    host.component.emit(["a", 1])
    host.flush()
    assert len(host.emitter.outbox) == 1
    host.take_output()
    host.flush()
    assert host.emitter.outbox == []


def test_emit_on_a_named_stream_produces_frames_of_that_stream():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", MultiStreamSpout, par=1)
    builder.add_bolt("ctl", Sink, par=1, inputs={spout["control"]: Grouping.ALL})
    host = make_host(builder, "spout")
    host.component.emit(["stop"], stream="control")
    host.component.emit(["w", 1])  # default stream: nobody consumes it
    host.flush()
    (frame,) = decode_outbox(host)
    assert (frame.stream, frame.dst_task) == ("control", 2)
    assert unpack_batch(frame.body) == [["stop"]]


def test_batch_max_tuples_turns_a_full_batch_into_a_frame_at_emit():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout", batch_max_tuples=3)
    host.component.emit(["a", 1])
    host.component.emit(["b", 2])
    assert host.emitter.outbox == []
    host.component.emit(["c", 3])
    assert len(host.emitter.outbox) == 1
    assert unpack_batch(decode_outbox(host)[0].body) == [["a", 1], ["b", 2], ["c", 3]]
    host.component.emit(["d", 4])
    assert len(host.emitter.outbox) == 1
    host.flush()
    assert [unpack_batch(f.body) for f in decode_outbox(host)] == [
        [["a", 1], ["b", 2], ["c", 3]],
        [["d", 4]],
    ]


def test_batch_max_tuples_counts_per_destination():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=2), "spout", batch_max_tuples=2)
    for i in range(3):
        host.component.emit(["w", i])
    assert len(host.emitter.outbox) == 1  # one destination got 2 tuples, the other only 1
    host.component.emit(["w", 3])
    assert len(host.emitter.outbox) == 2


def test_an_emit_of_unserializable_values_raises_and_sends_nothing():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout")
    host.component.emit(["a", 1])
    with pytest.raises(EmitError, match="not msgpack-serializable") as caught:
        host.component.emit(["bad", object()])
    assert isinstance(caught.value.__cause__, TypeError)
    with pytest.raises(EmitError, match="not msgpack-serializable"):
        host.component.emit(["c", {1, 2}])
    host.component.emit(["d", 4])
    host.flush()
    assert delivered(host) == {2: [["a", 1], ["d", 4]]}
    assert host.dropped == 2
    assert host.emitted == {"default": 2}


def test_only_unserializable_emits_produce_no_frame():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout")
    with pytest.raises(EmitError):
        host.component.emit(["bad", object()])
    host.flush()
    assert host.emitter.outbox == []
    assert not host.has_pending


def test_values_are_packed_at_emit_so_later_changes_are_not_sent():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout")
    values = ["a", 1]
    host.component.emit(values)
    values[0] = "changed"
    values.append("extra")
    host.component.emit(("t", 2))  # a tuple of values is as good as a list
    host.flush()
    assert delivered(host) == {2: [["a", 1], ["t", 2]]}


def test_a_batch_over_the_frame_limit_is_split_into_frames_that_fit():
    limit = 1024
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout", max_frame_bytes=limit)
    emitted = [["x" * 100, i] for i in range(40)]  # ~4 KiB in one batch
    for values in emitted:
        host.component.emit(values)
    host.flush()
    assert len(host.emitter.outbox) > 1
    assert all(len(frame) - 4 <= limit for frame in host.emitter.outbox)
    assert delivered(host) == {2: emitted}
    assert host.dropped == 0


def test_a_tuple_too_large_for_a_frame_fails_at_emit_nested_or_not():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout", max_frame_bytes=1024)
    host.component.emit(["small", 1])
    # the limit: 1024 minus the DATA header (15), the stream name (7), the array header (5)
    with pytest.raises(
        EmitError, match="a tuple of 5005 bytes on stream 'default'; the limit is 997"
    ):
        host.component.emit(["x" * 5000, 2])
    with pytest.raises(EmitError, match="a tuple of 5006 bytes"):
        host.component.emit([["x" * 5000], 3])
    with pytest.raises(EmitError, match="a tuple of 998 bytes"):
        host.component.emit(["y" * 993, 4])  # array 1 + str16 3 + 993 + int 1
    host.component.emit(["y" * 992, 5])  # 997 bytes packed: just fits
    host.flush()
    assert delivered(host) == {2: [["small", 1], ["y" * 992, 5]]}
    assert host.dropped == 3
    assert all(len(frame) - 4 <= 1024 for frame in host.emitter.outbox)


def test_open_batches_flush_when_they_hold_too_many_bytes():
    host = make_host(one_consumer(Grouping.SHUFFLE, par=1), "spout", batch_max_bytes=10_000)
    for i in range(3):
        host.component.emit(["y" * 4000, i])
    assert len(host.emitter.outbox) == 1 and host.emitter.open_bytes == 0  # flushed at 12,000 bytes
    assert delivered(host) == {2: [["y" * 4000, i] for i in range(3)]}


def test_need_task_ids_returns_the_destination_tasks():
    host = make_host(one_consumer(Grouping.ALL, par=3), "spout")
    assert host.component.emit(["a", 1], need_task_ids=True) == [2, 3, 4]
    assert host.component.emit(["a", 1]) is None
    direct = make_host(one_consumer(Grouping.DIRECT, par=3), "spout")
    assert direct.component.emit(["a", 1], direct_task=3, need_task_ids=True) == [3]
    direct.flush()
    assert delivered(direct) == {3: [["a", 1]]}


def test_need_task_ids_with_no_consumer_is_an_empty_list():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", MultiStreamSpout, par=1)
    builder.add_bolt("ctl", Sink, par=1, inputs={spout["control"]: Grouping.ALL})
    host = make_host(builder, "spout")
    assert host.component.emit(["w", 1], need_task_ids=True) == []


def test_spout_emit_with_a_tup_id_is_recorded_for_an_immediate_ack():
    host = make_host(one_consumer(Grouping.SHUFFLE), "spout")
    host.component.emit(["a", 1], tup_id="m1")
    host.component.emit(["b", 2])  # no id: nothing to ack
    host.component.emit(["c", 3], tup_id={"offset": 7})
    assert host.emitter.immediate == ["m1", {"offset": 7}]


def test_bolt_emits_are_never_recorded_for_immediate_acks():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", WordSpout, par=1)
    mid = builder.add_bolt("mid", Recorder, par=1, inputs=[spout])
    builder.add_bolt("sink", Sink, par=1, inputs=[mid])
    host = make_host(builder, "mid")
    host.emit(["x"], tup_id="ignored")
    assert host.emitter.immediate == []


def test_host_emit_rejects_undeclared_stream_wrong_arity_and_stray_direct_task():
    host = make_host(one_consumer(Grouping.SHUFFLE), "spout")
    with pytest.raises(EmitError, match="'nope'"):
        host.component.emit(["a", 1], stream="nope")
    with pytest.raises(EmitError, match="emits 1 values"):
        host.component.emit(["a"])
    with pytest.raises(EmitError, match="no consumer"):
        host.component.emit(["a", 1], direct_task=2)
    host.flush()
    assert host.emitter.outbox == []
    assert host.emitted == {}


def test_emit_that_raises_emit_error_delivers_nothing():
    # "shuf" (shuffle) is routed before "direct" (DIRECT): an emit without
    # direct_task must fail as a whole, not reach the shuffle consumer anyway.
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", WordSpout, par=1)  # task 1
    builder.add_bolt("shuf", Sink, par=1, inputs={spout: Grouping.SHUFFLE})  # task 2
    builder.add_bolt("direct", Sink, par=1, inputs={spout: Grouping.DIRECT})  # task 3
    host = make_host(builder, "spout")
    with pytest.raises(EmitError):
        host.component.emit(["lost", 1])
    host.flush()
    assert delivered(host) == {}


def test_process_batch_calls_process_with_heron_tuples():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", MultiStreamSpout, par=2)  # tasks 1, 2
    builder.add_bolt("rec", Recorder, par=1, inputs=[spout, spout["control"]])  # task 3
    host = make_host(builder, "rec")
    host.process_batch(2, "default", packed([["a", 1], ["b", 2]]))
    host.process_batch(1, "control", packed([["stop"]]))
    seen = host.component.seen
    assert len(seen) == 3
    assert all(isinstance(t, HeronTuple) for t in seen)
    assert [(t.component, t.stream, t.task, t.values) for t in seen] == [
        ("spout", "default", 2, ["a", 1]),
        ("spout", "default", 2, ["b", 2]),
        ("spout", "control", 1, ["stop"]),
    ]
    assert all(t.id is None and t.roots is None for t in seen)
    assert all(isinstance(t.creation_time, float) for t in seen)
    assert host.executed == {("spout", "default"): 2, ("spout", "control"): 1}


class Flaky(Bolt):
    def process(self, tup: Any) -> None:
        if tup.values[0] == "bad":
            raise ValueError("boom")
        self.ok = [*getattr(self, "ok", []), tup.values]


def test_a_raising_process_is_counted_and_the_batch_goes_on():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", WordSpout, par=1)
    builder.add_bolt("flaky", Flaky, par=1, inputs=[spout])
    host = make_host(builder, "flaky")
    host.process_batch(1, "default", packed([["a", 1], ["bad", 2], ["c", 3], ["bad", 4]]))
    assert host.component.ok == [["a", 1], ["c", 3]]
    assert host.exceptions == {"ValueError": 2}
    assert host.executed == {("spout", "default"): 4}


def test_ack_and_fail_count_heron_tuples_only():
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", WordSpout, par=1)
    builder.add_bolt("rec", Recorder, par=1, inputs=[spout])
    host = make_host(builder, "rec")
    host.process_batch(1, "default", packed([["a", 1]]))
    (tup,) = host.component.seen
    host.component.ack(tup)
    host.component.fail(tup)
    host.component.ack("not a tuple")
    assert (host.acked, host.failed) == (1, 1)


@pytest.mark.parametrize("reliable", [False, True], ids=["at-most-once", "at-least-once"])
def test_tuples_to_one_task_arrive_in_emit_order_whatever_their_streams(reliable: bool):
    builder = TopologyBuilder("t")
    spout = builder.add_spout("spout", MultiStreamSpout, par=1)  # task 1
    builder.add_bolt("rec", Recorder, par=1, inputs=[spout, spout["control"]])  # task 2
    builder.add_bolt("other", Sink, par=2, inputs={spout: Grouping.SHUFFLE})  # tasks 3, 4
    host = make_host(builder, "spout", reliable=reliable, batch_max_tuples=5)
    emitted = []
    for i in range(40):
        if i % 3 == 2:
            host.component.emit([f"cmd{i}"], stream="control", tup_id=i)
            emitted.append(("control", [f"cmd{i}"]))
        else:
            host.component.emit([f"w{i}", i], tup_id=i)
            emitted.append(("default", [f"w{i}", i]))
    host.flush()
    frames = [f for f in FrameDecoder().feed(b"".join(host.take_output())) if type(f) is DataFrame]
    arrived = [
        (frame.stream, values[:-1] if reliable else values)
        for frame in frames
        if frame.dst_task == 2
        for values in unpack_batch(frame.body)
    ]
    assert arrived == emitted
    # the shuffle consumer of the default stream got its share, in order too
    shares = {
        task: [
            values[1]
            for frame in frames
            if frame.dst_task == task
            for values in unpack_batch(frame.body)
        ]
        for task in (3, 4)
    }
    assert all(share == sorted(share) for share in shares.values())
    assert sorted(shares[3] + shares[4]) == [i for i in range(40) if i % 3 != 2]
