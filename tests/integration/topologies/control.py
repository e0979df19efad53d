"""An endless, gently paced spout into a sink, for lifecycle tests.

The spout records activate/deactivate calls and the last seq emitted before
each deactivate in ``<output>/spout-events-<task>.jsonl``.
"""

import json
import os
import time

from harness import Sink, output_path

from heronpy_lite.api import Bolt, Grouping, Spout, Topology


class PacedSpout(Spout):
    outputs = ["task", "seq", "key"]

    def initialize(self, config, context):
        self.task = context.get_task_id()
        self.rate = float(config.get("test.rate", 500))
        self.seq = 0
        self.start = time.monotonic()
        folder = config["test.output.dir"]
        self.events = open(os.path.join(folder, f"spout-events-{self.task}.log"), "a", buffering=1)

    def next_tuple(self):
        if self.seq < (time.monotonic() - self.start) * self.rate:
            self.emit([self.task, self.seq, str(self.seq % 10)])
            self.seq += 1

    def activate(self):
        self.events.write(json.dumps(["activate", self.seq]) + "\n")

    def deactivate(self):
        self.events.write(json.dumps(["deactivate", self.seq]) + "\n")


class FlakyInitBolt(Bolt):
    """Raises in initialize on its first start only (a marker file remembers)."""

    outputs = []

    def initialize(self, config, context):
        marker = output_path(config, context, "started")
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("first start fails on purpose")

    def process(self, tup):
        pass


class BadBolt(Bolt):
    """seq % 10 == 0: raises; == 1: emits the wrong arity; else forwards."""

    outputs = ["task", "seq", "key"]

    def process(self, tup):
        seq = tup.values[1]
        if seq % 10 == 0:
            raise ValueError(f"bad tuple {seq}")
        if seq % 10 == 1:
            self.emit([seq])
        else:
            self.emit(tup.values)


class Control(Topology):
    config = {"topology.stmgrs": 2}
    spout = PacedSpout.spec(par=1)
    sink = Sink.spec(par=2, inputs={spout: Grouping.SHUFFLE})
    flaky = FlakyInitBolt.spec(par=1, inputs={spout: Grouping.SHUFFLE})
    bad = BadBolt.spec(par=1, inputs={spout: Grouping.SHUFFLE})
    after_bad = Sink.spec(par=1, inputs={bad: Grouping.SHUFFLE})
