"""Components shared by the integration topologies.

Every sink writes one JSON line per received tuple to
``<test.output.dir>/<component>-<task>.jsonl`` (flushed per line), so a test
can read exactly what each task received after the topology is killed.
Spouts emit ``test.tuples`` tuples (default 1000) and then nothing.
"""

import json
import os
import time

from heronpy_lite.api import Bolt, Spout, Stream


def output_path(config, context, suffix="jsonl"):
    folder = config["test.output.dir"]
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{context.get_component_id()}-{context.get_task_id()}.{suffix}")


class FiniteSpout(Spout):
    """Emits [task, seq, key] for seq in 0..N-1; key = seq % 10 as a string."""

    outputs = ["task", "seq", "key"]

    def initialize(self, config, context):
        self.task = context.get_task_id()
        self.total = int(config.get("test.tuples", 1000))
        self.seq = 0

    def next_tuple(self):
        if self.seq < self.total:
            self.emit([self.task, self.seq, str(self.seq % 10)])
            self.seq += 1


class Sink(Bolt):
    """Records every tuple: its source component, task, stream and values."""

    outputs = []

    def initialize(self, config, context):
        self.out = open(output_path(config, context), "a", buffering=1)

    def process(self, tup):
        self.out.write(json.dumps([tup.component, tup.task, tup.stream, tup.values]) + "\n")


class Relay(Bolt):
    """Forwards each tuple's values unchanged (a stage of a chain)."""

    outputs = ["task", "seq", "key"]

    def process(self, tup):
        self.emit(tup.values)


class Doubler(Bolt):
    """Emits every input twice, tagged with copy 0 and 1."""

    outputs = ["task", "seq", "copy"]

    def process(self, tup):
        task, seq, _ = tup.values
        self.emit([task, seq, 0])
        self.emit([task, seq, 1])


class TwoStreamSpout(Spout):
    """Even seqs on stream 'evens' [seq], odd seqs on 'odds' [seq, parity]."""

    outputs = [Stream(fields=["seq"], name="evens"), Stream(fields=["seq", "parity"], name="odds")]

    def initialize(self, config, context):
        self.total = int(config.get("test.tuples", 1000))
        self.seq = 0

    def next_tuple(self):
        if self.seq < self.total:
            if self.seq % 2 == 0:
                self.emit([self.seq], stream="evens")
            else:
                self.emit([self.seq, "odd"], stream="odds")
            self.seq += 1


class TickRecorder(Bolt):
    """Sets its tick frequency in initialize (as heronpy window bolts do) and
    records each tick's arrival time; ignores ordinary tuples."""

    outputs = []

    def initialize(self, config, context):
        config["topology.tick.tuple.freq.secs"] = float(config.get("test.tick.secs", 0.2))
        self.out = open(output_path(config, context), "a", buffering=1)

    def process(self, tup):
        pass

    def process_tick(self, tup):
        assert self.is_tick(tup)
        self.out.write(json.dumps([tup.component, tup.stream, time.time()]) + "\n")
