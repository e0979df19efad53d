"""Topologies for the delivery-guarantee tests. The reliability mode comes
from --config-property, so the same topologies run ATLEAST_ONCE and ATMOST_ONCE.

ReplaySpout emits [seq] with tup_id=seq for seq in 0..N-1 (paced at
test.rate tuples/s if set) and re-emits a seq when it is failed (unless
test.replay is false). It records to ``<out>/spout-<task>.events``:
["emit", seq, t], ["ack", seq, t], ["fail", seq, t] and
["pending", n] each time the number of un-acked seqs reaches a new maximum.
"""

import json
import os
import time
from collections import deque

from harness import output_path

from heronpy_lite.api import Bolt, Grouping, Spout, Topology


class ReplaySpout(Spout):
    outputs = ["seq"]

    def initialize(self, config, context):
        self.total = int(config.get("test.tuples", 1000))
        self.rate = float(config.get("test.rate", 0))
        self.replay_on_fail = bool(config.get("test.replay", True))
        self.log_emits = bool(config.get("test.log.emits", False))
        self.next = 0
        self.replays = deque()
        self.pending = set()
        self.max_pending = 0
        self.start = time.monotonic()
        self.events = open(output_path(config, context, "events"), "a", buffering=1)

    def record(self, *event):
        self.events.write(json.dumps(list(event)) + "\n")

    def next_tuple(self):
        if self.replays:
            seq = self.replays.popleft()
        elif self.next < self.total and (
            not self.rate or self.next < (time.monotonic() - self.start) * self.rate
        ):
            seq = self.next
            self.next += 1
        else:
            return
        self.pending.add(seq)
        if len(self.pending) > self.max_pending:
            self.max_pending = len(self.pending)
            self.record("pending", self.max_pending)
        if self.log_emits:
            self.record("emit", seq, time.time())
        self.emit([seq], tup_id=seq)

    def ack(self, tup_id):
        self.pending.discard(tup_id)
        self.record("ack", tup_id, time.time())

    def fail(self, tup_id):
        self.pending.discard(tup_id)
        self.record("fail", tup_id, time.time())
        if self.replay_on_fail:
            self.replays.append(tup_id)


class AckingSink(Bolt):
    """Records [seq, time of ack] and acks."""

    outputs = []

    def initialize(self, config, context):
        self.out = open(output_path(config, context), "a", buffering=1)

    def process(self, tup):
        self.out.write(json.dumps([tup.values[0], time.time()]) + "\n")
        self.ack(tup)


class Relay(Bolt):
    """Anchored re-emit, then ack."""

    outputs = ["seq"]

    def process(self, tup):
        self.emit(tup.values, anchors=[tup])
        self.ack(tup)


class FailFirstEven(Bolt):
    """Fails the first delivery of every even seq; anchors and acks the rest."""

    outputs = ["seq"]

    def initialize(self, config, context):
        self.seen = set()

    def process(self, tup):
        seq = tup.values[0]
        if seq % 2 == 0 and seq not in self.seen:
            self.seen.add(seq)
            self.fail(tup)
            return
        self.emit([seq], anchors=[tup])
        self.ack(tup)


class RaiseFirstSevenths(Bolt):
    """Raises in process on the first delivery of every seq % 7 == 0."""

    outputs = ["seq"]

    def initialize(self, config, context):
        self.seen = set()

    def process(self, tup):
        seq = tup.values[0]
        if seq % 7 == 0 and seq not in self.seen:
            self.seen.add(seq)
            raise RuntimeError(f"cannot handle {seq} the first time")
        self.emit([seq], anchors=[tup])
        self.ack(tup)


class NeverAck(Bolt):
    outputs = []

    def process(self, tup):
        pass


class SlowAck(Bolt):
    outputs = []

    def process(self, tup):
        time.sleep(0.002)
        self.ack(tup)


class Faults(Topology):
    """Bolt failures: explicit fail of first even deliveries; exceptions."""

    config = {"topology.stmgrs": 2}
    evens = ReplaySpout.spec(par=1)
    flaky = FailFirstEven.spec(par=2, inputs={evens: Grouping.fields("seq")})
    flaky_sink = AckingSink.spec(par=2, inputs={flaky: Grouping.SHUFFLE})
    sevens = ReplaySpout.spec(par=1)
    raising = RaiseFirstSevenths.spec(par=1, inputs={sevens: Grouping.SHUFFLE})
    raising_sink = AckingSink.spec(par=1, inputs={raising: Grouping.SHUFFLE})


class Tree3(Topology):
    """An anchored three-stage tree across 3 containers."""

    config = {"topology.stmgrs": 3}
    spout = ReplaySpout.spec(par=1)
    stage1 = Relay.spec(par=2, inputs={spout: Grouping.SHUFFLE})
    stage2 = Relay.spec(par=2, inputs={stage1: Grouping.SHUFFLE})
    sink = AckingSink.spec(par=2, inputs={stage2: Grouping.SHUFFLE})


class Timeouts(Topology):
    spout = ReplaySpout.spec(par=1)
    blackhole = NeverAck.spec(par=1, inputs={spout: Grouping.SHUFFLE})


class Pending(Topology):
    spout = ReplaySpout.spec(par=1)
    slow = SlowAck.spec(par=1, inputs={spout: Grouping.SHUFFLE})


class Chain(Topology):
    """spout -> relay (par 2) -> sink, over 2 containers: for kill -9 tests."""

    config = {"topology.stmgrs": 2}
    spout = ReplaySpout.spec(par=1)
    relay = Relay.spec(par=2, inputs={spout: Grouping.SHUFFLE})
    sink = AckingSink.spec(par=1, inputs={relay: Grouping.SHUFFLE})


def events(folder, component="spout"):
    """All spout events of ``component`` in ``folder`` (used by the tests)."""
    result = []
    for name in sorted(os.listdir(folder)):
        if name.startswith(component + "-") and name.endswith(".events"):
            with open(os.path.join(folder, name)) as f:
                result.extend(json.loads(line) for line in f if line.endswith("\n"))
    return result
