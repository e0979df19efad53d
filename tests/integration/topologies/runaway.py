"""Hung and runaway tasks.

``Hang``: a spout emitting ``[seq]`` with ``tup_id=seq`` for seq in
0..test.tuples-1 into an acking sink. The first process of the spout (no
``hung-<task>`` file in test.output.dir yet) blocks in ``next_tuple`` at seq
``test.hang.at`` for ``test.hang.secs`` (an hour: for good), after writing
the time it started to ``hung-<task>``; a restarted one emits everything.

``Grow``: the same spout into a sink that, in its first process (no
``grown-<task>`` file yet), keeps ``test.grow.mb`` MiB per tuple it receives
(one tuple per 0.1 s), so it grows until something stops it; a restarted one only records.

Spouts record ``["ack", seq]`` / ``["fail", seq]`` to ``spout-<task>.events``
and replay failed seqs; sinks record ``[seq]`` per tuple and ack.
"""

import json
import os
import time

from harness import output_path

from heronpy_lite.api import Bolt, Grouping, Spout, Topology


def first_process(config, context, name):
    """True, once: the first process of this task to ask (the file marks it)."""
    path = os.path.join(config["test.output.dir"], f"{name}-{context.get_task_id()}")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return None
    os.close(fd)
    return path


class HangingSpout(Spout):
    outputs = ["seq"]

    def initialize(self, config, context):
        self.total = int(config.get("test.tuples", 100))
        self.hang_at = int(config.get("test.hang.at", -1))
        self.hang_secs = float(config.get("test.hang.secs", 3600))
        self.marker = first_process(config, context, "hung") if self.hang_at >= 0 else None
        self.seq = 0
        self.replays = []
        self.events = open(output_path(config, context, "events"), "a", buffering=1)

    def next_tuple(self):
        if self.marker and self.seq == self.hang_at:
            with open(self.marker, "w") as f:
                f.write(str(time.time()))
            self.marker = None
            time.sleep(self.hang_secs)
        if self.replays:
            seq = self.replays.pop()
        elif self.seq < self.total:
            seq = self.seq
            self.seq += 1
        else:
            return
        self.emit([seq], tup_id=seq)

    def ack(self, tup_id):
        self.events.write(json.dumps(["ack", tup_id]) + "\n")

    def fail(self, tup_id):
        self.events.write(json.dumps(["fail", tup_id]) + "\n")
        self.replays.append(tup_id)


class Sink(Bolt):
    outputs = []

    def initialize(self, config, context):
        self.out = open(output_path(config, context), "a", buffering=1)
        self.grow = float(config.get("test.grow.mb", 0))
        self.growing = bool(self.grow) and first_process(config, context, "grown") is not None
        self.kept = []

    def process(self, tup):
        if self.growing:
            self.kept.append(b"\x01" * int(self.grow * 1024 * 1024))  # touched: resident
            time.sleep(0.1)
        self.out.write(json.dumps(tup.values) + "\n")
        self.ack(tup)


class Hang(Topology):
    config = {"topology.stmgrs": 1}
    spout = HangingSpout.spec(par=1)
    sink = Sink.spec(par=1, inputs={spout: Grouping.SHUFFLE})


class Grow(Topology):
    config = {"topology.stmgrs": 1}
    spout = HangingSpout.spec(par=1)
    sink = Sink.spec(par=1, inputs={spout: Grouping.SHUFFLE})
