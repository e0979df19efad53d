"""The XOR acking scheme, without processes: the tracker with time passed in,
the acking wire body, and a spout -> bolt -> bolt tree driven through real
tasks, their frames decoded and fed to the tracker by hand. Tracker tests
run against both trackers (``tracker_impl``), tree tests against both tuple
paths as well (``tuple_path``), see conftest.py."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from routing_components import make_host

from heronpy_lite.api import Bolt, Grouping, Spout, TopologyBuilder
from heronpy_lite.api.topology import definition_of
from heronpy_lite.errors import RemoteProtocolError
from heronpy_lite.stmgr import acking
from heronpy_lite.wire.acking import AckBatch
from heronpy_lite.wire.frames import AckFrame, DataFrame, FrameDecoder, encode_ack

# ------------------------------------------------------------------ tracker


class Tracker:
    """The tracker's AckBatch-level calls, made through either implementation's
    body-level ones (what the stream manager calls)."""

    def __init__(self, impl: Any, timeout: float | None, now: float) -> None:
        self.impl = impl(timeout, now)

    def apply(self, task: int, batch: AckBatch, now: float) -> dict[int, AckBatch]:
        body = self.impl.apply_body(task, batch.encode(), now)
        return {} if body is None else {task: AckBatch.decode(body)}

    def expire(self, now: float) -> dict[int, AckBatch]:
        return {task: AckBatch.decode(body) for task, body in self.impl.expire_bodies(now)}

    def __len__(self) -> int:
        return len(self.impl)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.impl, name)


def test_a_tree_completes_when_its_xor_returns_to_zero(tracker_impl: Any) -> None:
    t = Tracker(tracker_impl, 30, now=0.0)
    assert t.apply(7, AckBatch(init=[100, 0b1010]), 0.0) == {}
    assert t.apply(7, AckBatch(update=[100, 0b1000]), 1.0) == {}
    assert t.apply(7, AckBatch(update=[100, 0b0010]), 2.0) == {7: AckBatch(acked=[100])}
    assert len(t) == 0 and t.acked == 1


def test_updates_before_the_init_do_not_complete_a_tree(tracker_impl: Any) -> None:
    t = Tracker(tracker_impl, 30, now=0.0)
    # a bolt's ack can overtake the spout's init: XOR commutes, completion waits
    assert t.apply(7, AckBatch(update=[100, 5]), 0.0) == {}
    assert t.apply(7, AckBatch(update=[100, 5]), 0.0) == {}  # XOR back to 0, but no init
    assert t.apply(7, AckBatch(init=[100, 3], update=[100, 3]), 0.0) == {7: AckBatch(acked=[100])}


def test_a_fail_reports_once_and_forgets_the_tree(tracker_impl: Any) -> None:
    t = Tracker(tracker_impl, 30, now=0.0)
    t.apply(7, AckBatch(init=[1, 9, 2, 9]), 0.0)
    assert t.apply(7, AckBatch(fail=[1, 1]), 0.0) == {7: AckBatch(failed=[1])}
    assert t.apply(7, AckBatch(update=[1, 9]), 0.0) == {}  # late ack of a failed tree
    assert t.apply(7, AckBatch(update=[2, 9]), 0.0) == {7: AckBatch(acked=[2])}


def test_trees_of_different_spout_tasks_are_independent(tracker_impl: Any) -> None:
    t = Tracker(tracker_impl, 30, now=0.0)
    t.apply(1, AckBatch(init=[5, 3]), 0.0)
    t.apply(2, AckBatch(init=[5, 3]), 0.0)
    assert t.apply(2, AckBatch(update=[5, 3]), 0.0) == {2: AckBatch(acked=[5])}
    assert len(t) == 1


@pytest.mark.parametrize("created", [0.0, 4.9, 5.0, 9.99])
def test_a_tree_times_out_between_1x_and_1_5x_the_timeout(
    created: float, tracker_impl: Any
) -> None:
    timeout = 10.0
    t = Tracker(tracker_impl, timeout, now=0.0)
    t.apply(1, AckBatch(init=[42, 1]), created)
    now = created
    expired_at = None
    while expired_at is None and now < 100:
        now = round(now + 0.01, 2)
        if t.expire(now):
            expired_at = now
    assert expired_at is not None
    assert timeout <= expired_at - created <= timeout * 1.5 + 0.01
    assert t.timed_out == 1 and len(t) == 0


def test_expiry_skips_finished_trees_and_orphans_are_never_reported(tracker_impl: Any) -> None:
    t = Tracker(tracker_impl, 10, now=0.0)
    t.apply(1, AckBatch(init=[1, 4]), 0.0)
    t.apply(1, AckBatch(update=[1, 4]), 1.0)  # complete
    t.apply(1, AckBatch(update=[2, 4]), 1.0)  # orphan: no init ever
    assert t.expire(100.0) == {}
    assert len(t) == 0


def test_a_late_expiry_catches_up_every_missed_rotation(tracker_impl: Any) -> None:
    t = Tracker(tracker_impl, 10, now=0.0)
    t.apply(1, AckBatch(init=[1, 4]), 0.0)
    assert t.expire(1000.0) == {1: AckBatch(failed=[1])}


def test_without_a_timeout_nothing_expires(tracker_impl: Any) -> None:
    t = Tracker(tracker_impl, None, now=0.0)
    t.apply(1, AckBatch(init=[1, 4]), 0.0)
    assert t.expire(1e9) == {} and len(t) == 1


def test_drop_task_forgets_only_that_task(tracker_impl: Any) -> None:
    t = Tracker(tracker_impl, 10, now=0.0)
    t.apply(1, AckBatch(init=[1, 4]), 0.0)
    t.apply(2, AckBatch(init=[1, 4]), 0.0)
    t.drop_task(1)
    assert list(t.entries) == [(2, 1)]


def decoded(body: bytes | None) -> AckBatch | None:
    return None if body is None else AckBatch.decode(body)


def test_the_c_tracker_agrees_with_the_reference_on_random_traffic(c_tracker: Any) -> None:
    """Consecutive roots (what a spout's emitter draws) completed, failed and
    timed out in random order, with orphans: verdicts must be the reference's."""
    import random

    rng = random.Random(3)
    ours, reference = c_tracker(10, 0.0), acking.PyXorTracker(10, 0.0)
    open_trees: dict[int, int] = {}  # root -> XOR still owed
    next_root = 2**64 - 500
    for step in range(4000):
        now = step * 0.02
        batch = AckBatch()
        for _ in range(rng.randrange(1, 30)):
            root, next_root = next_root, (next_root + 1) % 2**64
            edge = rng.getrandbits(64) | 1
            batch.init += [root, edge]
            open_trees[root] = edge
        for root in rng.sample(sorted(open_trees), min(len(open_trees), rng.randrange(28))):
            if rng.random() < 0.05:
                batch.fail.append(root)
                del open_trees[root]
            else:
                batch.update += [root, open_trees.pop(root)]
        if rng.random() < 0.1:
            batch.update += [rng.getrandbits(64), 5]  # an orphan
        if step == 2000:  # orphans whose low bits are all alike, as a hostile sender's
            batch.update += [x for k in range(1, 3000) for x in (k << 32, 7)]
        body = batch.encode()
        assert decoded(ours.apply_body(1, body, now)) == decoded(reference.apply_body(1, body, now))
        expired = {task: sorted(AckBatch.decode(b).failed) for task, b in ours.expire_bodies(now)}
        assert expired == {
            task: sorted(AckBatch.decode(b).failed) for task, b in reference.expire_bodies(now)
        }  # the order within a verdict means nothing
        for root in expired.get(1, []):
            open_trees.pop(root, None)
        assert len(ours) == len(reference)
    assert (ours.acked, ours.failed, ours.timed_out) == (
        reference.acked,
        reference.failed,
        reference.timed_out,
    )
    assert ours.timed_out > 0 and ours.failed > 0


# ---------------------------------------------------------------- wire body


def test_ack_batch_round_trips_through_an_ack_frame() -> None:
    batch = AckBatch(init=[1, 2], update=[3, 2**64 - 1], fail=[5], acked=[6], failed=[7])
    (frame,) = FrameDecoder().feed(encode_ack(9, 4, batch.encode()))
    assert isinstance(frame, AckFrame) and (frame.dst_task, frame.src_task) == (9, 4)
    assert AckBatch.decode(frame.body) == batch


def _body(*parts: object) -> bytes:
    return msgpack.packb(list(parts), use_bin_type=True)  # type: ignore[no-any-return]


EIGHT = b"\x01" * 8


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",
        _body(b"", b""),
        _body(None, b"", b"", b"", b""),
        _body(EIGHT, b"", b"", b"", b""),
        _body(b"\x01" * 7, b"", b"", b"", b""),
        _body([1, 2], b"", b"", b"", b""),
    ],
    ids=["not-msgpack", "short", "nil-part", "odd-init", "not-8-byte-ints", "list-not-bytes"],
)
def test_malformed_ack_bodies_are_remote_protocol_errors(body: bytes, tracker_impl: Any) -> None:
    with pytest.raises(RemoteProtocolError):
        AckBatch.decode(body)
    tracker = tracker_impl(30, 0.0)
    with pytest.raises(RemoteProtocolError):
        tracker.apply_body(1, body, 0.0)
    assert len(tracker) == 0


# ------------------------------------------- a whole tree through real hosts


class NumberSpout(Spout):
    outputs = ["n"]

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        self.acked: list[Any] = []
        self.failed: list[Any] = []

    def next_tuple(self) -> None:
        pass

    def ack(self, tup_id: Any) -> None:
        self.acked.append(tup_id)

    def fail(self, tup_id: Any) -> None:
        self.failed.append(tup_id)


class Fanout(Bolt):
    """Emits each input twice, anchored; acks, or fails inputs equal to 13."""

    outputs = ["n"]

    def process(self, tup: Any) -> None:
        if tup.values[0] == 13:
            self.fail(tup)
            return
        self.emit([tup.values[0]], anchors=[tup])
        self.emit([tup.values[0] + 1000], anchors=[tup])
        self.ack(tup)


class Collect(Bolt):
    outputs: list[str] = []

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        self.held: list[Any] = []

    def process(self, tup: Any) -> None:
        self.held.append(tup)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tree:
    """spout (task 1) -> fanout (tasks 2, 3, all grouping) -> collect (task 4).

    With ``fields=True`` the spout feeds fanout by a fields grouping (one copy per
    tuple: the spout's fast emitter starts the tree)."""

    def __init__(
        self, tracker_impl: Any, fields: bool = False, spout: type[Spout] | None = None
    ) -> None:
        b = TopologyBuilder("T")
        s = b.add_spout("spout", spout or NumberSpout, par=1)
        grouping = Grouping.fields("n") if fields else Grouping.ALL
        f = b.add_bolt("fanout", Fanout, par=2, inputs={s: grouping})
        b.add_bolt("collect", Collect, par=1, inputs={f: Grouping.SHUFFLE})
        self.clock = Clock()
        self.hosts: dict[int, Any] = {}
        for component in ("spout", "fanout", "collect"):
            for index in range(definition_of(b).components[component].par):
                host = make_host(
                    b,
                    component,
                    task_index=index,
                    batch_max_tuples=100,
                    max_frame_bytes=1 << 20,
                    reliable=True,
                    clock=self.clock,
                    **({"message_timeout_secs": 10} if component == "spout" else {}),
                )
                host.component.initialize({}, None)
                self.hosts[host.task_id] = host
        self.tracker = tracker_impl(10, 0.0)

    def pump(self) -> None:
        """Deliver every frame every host wrote until all outboxes are empty."""
        moved = True
        while moved:
            moved = False
            for host in self.hosts.values():
                host.flush()
                frames = FrameDecoder().feed(b"".join(host.take_output()))
                for frame in frames:
                    moved = True
                    if isinstance(frame, DataFrame):
                        self.hosts[frame.dst_task].process_batch(
                            frame.src_task, frame.stream, frame.body
                        )
                    else:
                        assert isinstance(frame, AckFrame)
                        verdict = self.tracker.apply_body(frame.dst_task, frame.body, self.clock())
                        if verdict is not None:
                            self.hosts[frame.dst_task].on_verdicts(verdict)

    @property
    def spout(self) -> Any:
        return self.hosts[1].component

    @property
    def collected(self) -> list[Any]:
        return self.hosts[4].component.held  # type: ignore[no-any-return]


@pytest.fixture
def new_tree(tuple_path: Any, tracker_impl: Any) -> Any:
    """Build a `Tree` on the tuple path and tracker under test (every pairing: the
    two implementations must also understand each other's bytes)."""
    return lambda **kw: Tree(tracker_impl, **kw)


def test_a_tree_is_acked_only_when_its_last_tuple_is_acked(new_tree: Any) -> None:
    tree = new_tree()
    tree.hosts[1].emit([5], tup_id="five")
    tree.pump()
    held = tree.collected
    assert sorted(t.values[0] for t in held) == [5, 5, 1005, 1005]
    assert tree.spout.acked == []  # 4 leaves unacked
    for tup in held[:-1]:
        tree.hosts[4].ack(tup)
    tree.pump()
    assert tree.spout.acked == []
    tree.hosts[4].ack(held[-1])
    tree.pump()
    assert tree.spout.acked == ["five"] and tree.spout.failed == []
    assert len(tree.hosts[1].in_flight) == 0 and len(tree.tracker) == 0
    assert tree.hosts[1].completed == 1


def test_a_fail_anywhere_fails_the_tree_once(new_tree: Any) -> None:
    tree = new_tree()
    tree.hosts[1].emit([13], tup_id="thirteen")  # both fanout tasks fail it
    tree.pump()
    assert tree.spout.failed == ["thirteen"] and tree.spout.acked == []


def test_a_leaf_failing_after_siblings_acked_fails_the_tree(new_tree: Any) -> None:
    tree = new_tree()
    tree.hosts[1].emit([1], tup_id="one")
    tree.pump()
    *ok, bad = tree.collected
    for tup in ok:
        tree.hosts[4].ack(tup)
    tree.hosts[4].fail(bad)
    tree.hosts[4].ack(bad)  # ignored: already failed
    tree.pump()
    assert tree.spout.failed == ["one"] and tree.spout.acked == []


def test_untracked_emits_and_a_spout_with_no_consumer_root(new_tree: Any) -> None:
    tree = new_tree()
    tree.hosts[1].emit([2])  # no tup_id: untracked
    tree.pump()
    assert len(tree.collected) == 4  # [2] and [1002], to both fanout tasks
    assert all(t.roots is None and t.id is None for t in tree.collected)
    assert len(tree.hosts[1].in_flight) == 0 and len(tree.tracker) == 0


def test_the_spout_expires_trees_its_stmgr_forgot(new_tree: Any) -> None:
    tree = new_tree()
    tree.hosts[1].emit([3], tup_id="three")
    tree.hosts[1].flush()
    tree.hosts[1].take_output()  # the stmgr died with the frames
    tree.hosts[1].expire_in_flight(20.9)
    assert tree.spout.failed == []
    tree.hosts[1]._next_expiry = 0.0
    tree.hosts[1].expire_in_flight(21.1)  # 2 x timeout + 1
    assert tree.spout.failed == ["three"] and tree.hosts[1].timed_out == 1


def test_many_trees_complete_with_random_ack_order(new_tree: Any) -> None:
    import random

    tree = new_tree()
    for i in range(200):
        tree.hosts[1].emit([i], tup_id=i)
    tree.pump()
    held = list(tree.collected)
    random.Random(1).shuffle(held)
    for tup in held:
        tree.hosts[4].ack(tup)
    tree.pump()
    assert sorted(tree.spout.acked) == [i for i in range(200) if i != 13]
    assert tree.spout.failed == [13]


def test_one_copy_trees_started_by_the_fast_emitter_complete_or_fail_once(new_tree: Any) -> None:
    import random

    tree = new_tree(fields=True)
    for i in range(100):
        tree.hosts[1].emit([i], tup_id=f"id{i}")
    tree.pump()
    held = list(tree.collected)
    assert sorted(t.values[0] for t in held) == sorted(
        v for i in range(100) if i != 13 for v in (i, i + 1000)
    )
    assert tree.spout.acked == [] and tree.spout.failed == ["id13"]
    random.Random(2).shuffle(held)
    last = held.pop()
    for tup in held:
        tree.hosts[4].ack(tup)
    tree.hosts[4].fail(last)
    tree.pump()
    failed_id = f"id{last.values[0] % 1000}"
    assert sorted(tree.spout.acked) == sorted(
        f"id{i}" for i in range(100) if f"id{i}" not in ("id13", failed_id)
    )
    assert sorted(tree.spout.failed) == sorted(["id13", failed_id])
    assert len(tree.hosts[1].in_flight) == 0 and len(tree.tracker) == 0


class AckRaisesOnce(NumberSpout):
    def ack(self, tup_id: Any) -> None:
        if not self.acked and not getattr(self, "raised", False):
            self.raised = True
            raise RuntimeError("first ack fails")
        self.acked.append(tup_id)


class QuietSpout(Spout):
    """Keeps heronpy's no-op ack."""

    outputs = ["n"]

    def next_tuple(self) -> None:
        pass


def five_trees_acked(new_tree: Any, spout: type[Spout]) -> Tree:
    """Trees with ids 0..4 through the fast emitter, every leaf acked."""
    tree = new_tree(fields=True, spout=spout)
    for i in range(5):
        tree.hosts[1].emit([i], tup_id=i)
    tree.pump()
    for tup in tree.collected:
        tree.hosts[4].ack(tup)
    tree.pump()
    return tree


def test_a_raising_spout_ack_is_reported_and_the_other_acks_still_run(new_tree: Any) -> None:
    tree = five_trees_acked(new_tree, AckRaisesOnce)
    assert sorted(tree.spout.acked) == [1, 2, 3, 4]  # 0 raised
    assert tree.hosts[1].exceptions == {"RuntimeError": 1}
    assert tree.hosts[1].spout_acked == 5 and len(tree.hosts[1].in_flight) == 0


def test_trees_of_a_spout_with_heronpy_s_no_op_ack_are_still_counted(new_tree: Any) -> None:
    tree = five_trees_acked(new_tree, QuietSpout)
    host = tree.hosts[1]
    assert host.spout_acked == 5 and host.completed == 5 and len(host.in_flight) == 0
