"""Multi-stream: one spout emitting on two named streams, a bolt subscribed
to each; built with TopologyBuilder.

    heronpy-lite submit local topologies/multi_stream.py builder --name MultiStream

Numbers go to "evens" or "odds"; each bolt logs a running sum every 1000 tuples.
"""

import time

from heronpy_lite.api import Bolt, Grouping, Spout, Stream, TopologyBuilder


class NumberSpout(Spout):
    outputs = [Stream(fields=["n"], name="evens"), Stream(fields=["n", "square"], name="odds")]

    def initialize(self, config, context):
        self.n = 0
        self.rate = float(config.get("multistream.numbers.per.second", 500))
        self.start = time.monotonic()

    def next_tuple(self):
        if self.n < (time.monotonic() - self.start) * self.rate:
            if self.n % 2 == 0:
                self.emit([self.n], stream="evens")
            else:
                self.emit([self.n, self.n * self.n], stream="odds")
            self.n += 1


class SumBolt(Bolt):
    outputs = []

    def initialize(self, config, context):
        self.total = 0
        self.count = 0

    def process(self, tup):
        self.total += tup.values[0]
        self.count += 1
        if self.count % 1000 == 0:
            self.log(f"stream {tup.stream}: {self.count} numbers, sum {self.total}")


builder = TopologyBuilder("MultiStream")
numbers = builder.add_spout("numbers", NumberSpout, par=1)
builder.add_bolt("even_sum", SumBolt, par=1, inputs={numbers["evens"]: Grouping.SHUFFLE})
builder.add_bolt("odd_sum", SumBolt, par=2, inputs={numbers["odds"]: Grouping.fields("n")})
