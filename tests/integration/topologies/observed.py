"""What the tracker, the web UI and status are tested on: a spout that emits as
fast as it is asked into a bolt sleeping per tuple (the culprit of
backpressure), and a bolt that raises on every 50th tuple it gets.

One container, small buffers (set by the test), so the slow bolt congests
its stream manager within seconds.
"""

import time

from heronpy_lite.api import Bolt, Grouping, Spout, Topology


class Flood(Spout):
    outputs = ["seq", "payload"]

    def initialize(self, config, context):
        self.seq = 0
        self.payload = "x" * 200

    def next_tuple(self):
        self.emit([self.seq, self.payload])
        self.seq += 1


class Slow(Bolt):
    outputs = []

    def initialize(self, config, context):
        self.sleep = float(config.get("test.sleep.ms", 2)) / 1000

    def process(self, tup):
        time.sleep(self.sleep)


class Raiser(Bolt):
    outputs = []

    def initialize(self, config, context):
        self.seen = 0

    def process(self, tup):
        self.seen += 1
        if self.seen % 50 == 0:
            raise ValueError(f"tuple {tup.values[0]} is bad")


class Observed(Topology):
    config = {"topology.stmgrs": 1}
    flood = Flood.spec(par=1)
    slow = Slow.spec(par=1, inputs={flood: Grouping.SHUFFLE})
    raiser = Raiser.spec(par=1, inputs={flood: Grouping.SHUFFLE})
