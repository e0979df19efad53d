"""Topologies with a cycle: spout -> loop <-> back, loop -> sink.

A spout emits ``test.tuples`` tuples ``[seq, hops, payload]`` (``hops`` 0,
``payload`` ``test.payload.bytes`` long) with ``tup_id=seq``, as fast as it
is asked, and emits a seq again when it fails. ``loop`` sends each tuple on
around the cycle (to ``back``, which sleeps ``test.sleep.ms`` and returns it
to ``loop``, which sleeps ``test.loop.sleep.ms``) until it has gone round
``test.hops`` times, then on to the sink, which records ``[seq, hops]``.
Every bolt anchors and acks, so at least once each tree ends at the sink.
No tuple is multiplied: the cycle only holds what the spout put in it. The
spout records ``["ack", seq]`` and ``["fail", seq]`` to
``spout-<task>.events``.
"""

import json
import time

from harness import output_path

from heronpy_lite.api import Bolt, Grouping, Spout, Stream, Topology


class SeqSpout(Spout):
    outputs = ["seq", "hops", "payload"]

    def initialize(self, config, context):
        self.total = int(config.get("test.tuples", 1000))
        self.payload = "x" * int(config.get("test.payload.bytes", 100))
        self.seq = 0
        self.replays = []
        self.events = open(output_path(config, context, "events"), "a", buffering=1)

    def next_tuple(self):
        if self.replays:
            seq = self.replays.pop()
        elif self.seq < self.total:
            seq = self.seq
            self.seq += 1
        else:
            return
        self.emit([seq, 0, self.payload], tup_id=seq)

    def ack(self, tup_id):
        self.events.write(json.dumps(["ack", tup_id]) + "\n")

    def fail(self, tup_id):
        self.events.write(json.dumps(["fail", tup_id]) + "\n")
        self.replays.append(tup_id)


class Loop(Bolt):
    outputs = [
        Stream(fields=["seq", "hops", "payload"], name="again"),
        Stream(fields=["seq", "hops"], name="done"),
    ]

    def initialize(self, config, context):
        self.hops = int(config.get("test.hops", 3))
        self.sleep = float(config.get("test.loop.sleep.ms", 0)) / 1000

    def process(self, tup):
        if self.sleep:
            time.sleep(self.sleep)
        seq, hops, payload = tup.values
        if tup.component == "back":
            hops += 1
        if hops < self.hops:
            self.emit([seq, hops, payload], stream="again", anchors=[tup])
        else:
            self.emit([seq, hops], stream="done", anchors=[tup])
        self.ack(tup)


class Back(Bolt):
    outputs = ["seq", "hops", "payload"]

    def initialize(self, config, context):
        self.sleep = float(config.get("test.sleep.ms", 0)) / 1000

    def process(self, tup):
        if self.sleep:
            time.sleep(self.sleep)
        self.emit(tup.values, anchors=[tup])
        self.ack(tup)


class Recorder(Bolt):
    outputs = []

    def initialize(self, config, context):
        self.out = open(output_path(config, context), "a", buffering=1)

    def process(self, tup):
        self.out.write(json.dumps(tup.values) + "\n")
        self.ack(tup)


class Cycle(Topology):
    config = {"topology.stmgrs": 2}
    spout = SeqSpout.spec(par=1)
    loop = Loop.spec(par=1, inputs={spout: Grouping.SHUFFLE, "back": Grouping.SHUFFLE})
    back = Back.spec(par=1, inputs={loop["again"]: Grouping.SHUFFLE})
    sink = Recorder.spec(par=1, inputs={loop["done"]: Grouping.SHUFFLE})
