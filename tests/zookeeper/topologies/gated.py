"""A finite topology whose spout the test opens and closes.

GatedSpout emits [task, seq] for seq = 0, 1, ... while seq is below the
number in ``<test.output.dir>/gate`` (re-read every 20 ms; no file: 0), and
never more than ``test.tuples`` if that is set. With ``test.rate`` > 0 it emits at most
that many tuples per second. So a test decides when tuples are in flight:
none while it kills a process on purpose (at-most-once loses what is in
flight to a process that dies), a steady stream while the tmaster or
ZooKeeper goes away (the data path does not need them).

Sink records every tuple as one JSON line in
``<test.output.dir>/<component>-<task>.jsonl``.

Gated: spout (task 1, container 1) -> sink par 2 (task 2 in container 2,
task 3 in container 1), shuffle.
"""

import json
import os
import time

from heronpy_lite.api import Bolt, Grouping, Spout, Topology


class GatedSpout(Spout):
    outputs = ["task", "seq"]

    def initialize(self, config, context):
        self.task = context.get_task_id()
        self.gate_file = os.path.join(config["test.output.dir"], "gate")
        self.total = int(config.get("test.tuples", 1 << 62))
        self.rate = float(config.get("test.rate", 0))
        self.seq = 0
        self.limit = 0
        self.checked = 0.0
        self.since = time.monotonic()
        self.since_seq = 0

    def _read_gate(self, now):
        self.checked = now
        try:
            with open(self.gate_file) as f:
                limit = min(int(f.read().strip() or 0), self.total)
        except (OSError, ValueError):
            return
        if limit > self.limit:
            self.limit = limit
            self.since, self.since_seq = now, self.seq

    def next_tuple(self):
        now = time.monotonic()
        if self.seq >= self.limit and now - self.checked >= 0.02:
            self._read_gate(now)
        if self.seq >= self.limit:
            return
        if self.rate and self.seq - self.since_seq >= (now - self.since) * self.rate:
            return
        self.emit([self.task, self.seq])
        self.seq += 1


class Sink(Bolt):
    outputs = []

    def initialize(self, config, context):
        folder = config["test.output.dir"]
        os.makedirs(folder, exist_ok=True)
        name = f"{context.get_component_id()}-{context.get_task_id()}.jsonl"
        self.out = open(os.path.join(folder, name), "a", buffering=1)

    def process(self, tup):
        self.out.write(json.dumps(tup.values) + "\n")


class Gated(Topology):
    config = {"topology.stmgrs": 2}
    spout = GatedSpout.spec(par=1)
    sink = Sink.spec(par=2, inputs={spout: Grouping.SHUFFLE})
