"""Known counts for the metrics tests: 3 spout tasks x 1000 tuples (with
tup_id, ATLEAST_ONCE) -> first (par 2, anchors and acks; user metrics) ->
second (par 2, fields grouping, acks), over 2 containers."""

from heronpy_lite.api import (
    Bolt,
    CountMetric,
    Grouping,
    MeanReducer,
    ReducedMetric,
    Spout,
    Topology,
)


class CountingSpout(Spout):
    outputs = ["seq", "key"]

    def initialize(self, config, context):
        self.seq = 0

    def next_tuple(self):
        if self.seq < 1000:
            self.emit([self.seq, str(self.seq % 7)], tup_id=self.seq)
            self.seq += 1


class First(Bolt):
    outputs = ["seq", "key"]

    def initialize(self, config, context):
        self.processed = CountMetric()
        self.value = ReducedMetric(MeanReducer)
        context.register_metric("processed", self.processed, 1)
        context.register_metric("value_mean", self.value, 1)

    def process(self, tup):
        self.processed.incr()
        self.value.update(5)
        self.emit(tup.values, anchors=[tup])
        self.ack(tup)


class Second(Bolt):
    outputs = []

    def process(self, tup):
        self.ack(tup)


class Metered(Topology):
    config = {"topology.stmgrs": 2, "topology.reliability.mode": "ATLEAST_ONCE"}
    spout = CountingSpout.spec(par=3)
    first = First.spec(par=2, inputs={spout: Grouping.SHUFFLE})
    second = Second.spec(par=2, inputs={first: Grouping.fields("key")})
