"""Word count twice: with the Streamlet API (``streamlet``) and as the same
topology written with spouts and bolts (``SpoutsAndBolts``), for
benchmarks/streamlet.py.

Both: two sources cycling through `LINES_A` and `LINES_B` as fast as they
are asked -> split into words (one task per source) -> (word, 1) -> union
-> per-word counts over tumbling 1 s processing-time windows (fields
grouping on the word) -> a sink. The sink adds up each window's counts and,
when a later window starts, appends ``[window end, words in the window]``
to ``$BENCH_OUT/<pid>.jsonl``: words per second through the whole topology.

The spouts-and-bolts version is what a user writes by hand: the counting
bolt keeps a dict per window and emits it on a tick (no tuples held); the
streamlet's reduce_by_key_and_window keeps the window's tuples (the
window core is generic: sliding windows, acking at least once) and folds
them when the window fires. In ATLEAST_ONCE both anchor every emit and the
sources re-emit failed lines.
"""

import json
import math
import os
import time

from heronpy_lite.api import Bolt, Grouping, Spout, Topology
from heronpy_lite.connectors.mock.arraylooper import ArrayLooper
from heronpy_lite.streamlet.builder import Builder
from heronpy_lite.streamlet.windowconfig import WindowConfig

LINES_A = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine"]
LINES_B = ["to be or not to be that is the question", "all that glitters is not gold"]
#: a 1 s window at a few hundred thousand words/s holds that many tuples
MAX_TUPLES = 2_000_000


class WindowTotals:
    """Adds up (word, window end, count) results; writes a window's total once
    a later window shows up (windows of one task arrive in order)."""

    def __init__(self):
        self.out = None
        self.current = None
        self.total = 0

    def add(self, end, count):
        if self.out is None:
            path = os.path.join(os.environ["BENCH_OUT"], f"{os.getpid()}.jsonl")
            self.out = open(path, "a", buffering=1)  # noqa: SIM115
        if end != self.current:
            if self.current is not None:
                self.out.write(json.dumps([self.current, self.total]) + "\n")
            self.current, self.total = end, 0
        self.total += count


_totals = WindowTotals()


def _count_result(element):
    keyed_window, count = element
    _totals.add(keyed_window.window.end, count)


streamlet = Builder()
_a = streamlet.new_source(ArrayLooper(LINES_A)).set_name("lines-a").flat_map(str.split)
_b = streamlet.new_source(ArrayLooper(LINES_B)).set_name("lines-b").flat_map(str.split)
(
    _a.map(lambda word: (word, 1))
    .union(_b.map(lambda word: (word, 1)))
    .reduce_by_key_and_window(
        WindowConfig.create_tumbling_window(1).with_max_tuples(MAX_TUPLES), lambda x, y: x + y
    )
    .consume(_count_result)
)


# -- the same, with spouts and bolts --


def _reliable(config):
    return config.get("topology.reliability.mode") == "ATLEAST_ONCE"


class LineSpout(Spout):
    outputs = ["line"]
    LINES = LINES_A

    def initialize(self, config, context):
        self.reliable = _reliable(config)
        self.i = 0
        self.pending = {}

    def next_tuple(self):
        line = self.LINES[self.i % len(self.LINES)]
        if self.reliable:
            self.pending[self.i] = line
            self.emit([line], tup_id=self.i)
        else:
            self.emit([line])
        self.i += 1

    def ack(self, tup_id):
        self.pending.pop(tup_id, None)

    def fail(self, tup_id):
        line = self.pending.get(tup_id)
        if line is not None:
            self.emit([line], tup_id=tup_id)


class LineSpoutB(LineSpout):
    LINES = LINES_B


class SplitBolt(Bolt):
    outputs = ["word"]

    def initialize(self, config, context):
        self.reliable = _reliable(config)

    def process(self, tup):
        anchors = [tup] if self.reliable else None
        for word in tup.values[0].split():
            self.emit([word], anchors=anchors)
        self.ack(tup)


class PairBolt(Bolt):
    outputs = ["word", "one"]

    def initialize(self, config, context):
        self.reliable = _reliable(config)

    def process(self, tup):
        self.emit([tup.values[0], 1], anchors=[tup] if self.reliable else None)
        self.ack(tup)


class UnionBolt(Bolt):
    outputs = ["word", "one"]

    def initialize(self, config, context):
        self.reliable = _reliable(config)

    def process(self, tup):
        self.emit(tup.values, anchors=[tup] if self.reliable else None)
        self.ack(tup)


class CountWindowBolt(Bolt):
    """Counts per word in tumbling 1 s windows; emits [word, end, count] when a
    window is over (checked on ticks), anchored to that word's tuples at least once."""

    outputs = ["word", "end", "count"]

    def initialize(self, config, context):
        config["topology.tick.tuple.freq.secs"] = 0.1
        self.reliable = _reliable(config)
        self.windows = {}  # window end -> {word: [count, tuples]}

    def process(self, tup):
        end = math.floor(time.time()) + 1
        counts = self.windows.get(end)
        if counts is None:
            counts = self.windows[end] = {}
        word, one = tup.values
        entry = counts.get(word)
        if entry is None:
            entry = counts[word] = [0, []]
        entry[0] += one
        if self.reliable:
            entry[1].append(tup)

    def process_tick(self, tup):
        now = time.time()
        for end in sorted(e for e in self.windows if e <= now):
            for word, (count, held) in self.windows.pop(end).items():
                self.emit([word, end, count], anchors=held if self.reliable else None)
                for t in held:
                    self.ack(t)


class TotalsSink(Bolt):
    outputs = []

    def process(self, tup):
        _, end, count = tup.values
        _totals.add(end, count)
        self.ack(tup)


class SpoutsAndBolts(Topology):
    lines_a = LineSpout.spec()
    lines_b = LineSpoutB.spec()
    split_a = SplitBolt.spec(inputs=[lines_a])
    split_b = SplitBolt.spec(inputs=[lines_b])
    pair_a = PairBolt.spec(inputs=[split_a])
    pair_b = PairBolt.spec(inputs=[split_b])
    union = UnionBolt.spec(inputs=[pair_a, pair_b])
    count = CountWindowBolt.spec(inputs={union: Grouping.fields("word")})
    sink = TotalsSink.spec(inputs=[count])
