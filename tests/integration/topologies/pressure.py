"""Backpressure: a spout that emits as fast as it is asked into a bolt that
sleeps per tuple, and an independent paced spout into a fast bolt, packed so
both paths cross the same stream-manager link (container 1 -> 2).

Control files in test.output.dir: ``speedup`` makes the slow bolt stop
sleeping; ``stop`` makes the flooding spout stop. Every component appends
``[time, count, sum_of_seqs]`` to ``<component>-<task>.progress`` every 0.2 s
while it is called (bolts: on every tick), and the flooding spout
``["final", count, sum]`` once it stops, so a test can compute rates and
check that nothing was dropped or duplicated.
"""

import json
import os
import time

from heronpy_lite.api import Bolt, Grouping, Spout, Topology


class Progress:
    def __init__(self, config, context):
        self.folder = config["test.output.dir"]
        name = f"{context.get_component_id()}-{context.get_task_id()}.progress"
        self.out = open(os.path.join(self.folder, name), "a", buffering=1)
        self.count = 0
        self.total = 0
        self.next_write = 0.0

    def add(self, seq):
        self.count += 1
        self.total += seq
        now = time.monotonic()
        if now >= self.next_write:
            self.next_write = now + 0.2
            self.write()
            return True
        return False

    def write(self, *head):
        self.out.write(json.dumps([*(head or [time.time()]), self.count, self.total]) + "\n")

    def flag(self, name):
        return os.path.exists(os.path.join(self.folder, name))


class FloodSpout(Spout):
    outputs = ["seq", "payload"]

    def initialize(self, config, context):
        self.progress = Progress(config, context)
        self.payload = "x" * int(config.get("test.payload.bytes", 1000))
        self.seq = 0
        self.stopped = False

    def next_tuple(self):
        if self.stopped:
            return
        self.emit([self.seq, self.payload])
        if self.progress.add(self.seq) and self.progress.flag("stop"):
            self.stopped = True
            self.progress.write("final")
        self.seq += 1


class SlowBolt(Bolt):
    outputs = []

    def initialize(self, config, context):
        self.progress = Progress(config, context)
        self.sleep = float(config.get("test.sleep.ms", 2)) / 1000

    def process(self, tup):
        if self.sleep:
            time.sleep(self.sleep)
        self.progress.add(tup.values[0])

    def process_tick(self, tup):
        self.progress.write()
        if self.progress.flag("speedup"):
            self.sleep = 0


class PacedSpout(Spout):
    """At most test.paced.rate tuples/s, never catching up after a pause."""

    outputs = ["seq", "payload"]

    def initialize(self, config, context):
        self.progress = Progress(config, context)
        self.interval = 1.0 / float(config.get("test.paced.rate", 500))
        self.next_emit = 0.0
        self.seq = 0

    def next_tuple(self):
        now = time.monotonic()
        if now >= self.next_emit:
            self.next_emit = now + self.interval
            self.emit([self.seq, ""])
            self.progress.add(self.seq)
            self.seq += 1


class FastBolt(Bolt):
    outputs = []

    def initialize(self, config, context):
        self.progress = Progress(config, context)

    def process(self, tup):
        self.progress.add(tup.values[0])

    def process_tick(self, tup):
        self.progress.write()


TICK = {"topology.tick.tuple.freq.secs": 0.2}


class Pressure(Topology):
    # round robin over 2 containers: flood 1 -> c1, slow 2 -> c2, paced 3 -> c1, fast 4 -> c2
    config = {"topology.stmgrs": 2}
    flood = FloodSpout.spec(par=1)
    slow = SlowBolt.spec(par=1, inputs={flood: Grouping.SHUFFLE}, config=TICK)
    paced = PacedSpout.spec(par=1)
    fast = FastBolt.spec(par=1, inputs={paced: Grouping.SHUFFLE}, config=TICK)
