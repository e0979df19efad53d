"""Topologies for benchmarks/hardening.py.

``Hang``: a spout that emits ``[seq]`` until ``bench.hang.at``, then blocks in
``next_tuple`` for good, after writing the time it began to
``<bench.output.dir>/hung``; a sink that counts.

``Quiet``: a spout emitting 10 tuples a second into a sink: something for a
metrics manager to serve while it is attacked.
"""

import os
import time

from heronpy_lite.api import Bolt, Grouping, Spout, Topology


class HangingSpout(Spout):
    outputs = ["seq"]

    def initialize(self, config, context):
        self.hang_at = int(config.get("bench.hang.at", 10))
        self.folder = config.get("bench.output.dir", "")
        self.seq = 0

    def next_tuple(self):
        if self.hang_at >= 0 and self.seq == self.hang_at:
            with open(os.path.join(self.folder, "hung"), "w") as f:
                f.write(repr(time.time()))
            time.sleep(365 * 86400)
        self.emit([self.seq])
        self.seq += 1
        if self.hang_at < 0:
            time.sleep(0.1)


class Counter(Bolt):
    outputs = []

    def initialize(self, config, context):
        self.count = 0

    def process(self, tup):
        self.count += 1


class Hang(Topology):
    spout = HangingSpout.spec(par=1)
    sink = Counter.spec(par=1, inputs={spout: Grouping.SHUFFLE})


class Quiet(Topology):
    config = {"bench.hang.at": -1}
    spout = HangingSpout.spec(par=1)
    sink = Counter.spec(par=1, inputs={spout: Grouping.SHUFFLE})
