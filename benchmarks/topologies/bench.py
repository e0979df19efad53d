"""Benchmark topologies: cheap user code, so the engine dominates.

- ``WordCount``: ``BenchSpout`` -> ``CountBolt`` (fields grouping on "word").
- ``Chain``: ``BenchSpout`` -> ``RelayBolt`` -> ``RelayBolt`` -> ``SinkBolt``
  (a 3-stage identity chain; the last stage counts instead of re-emitting).
- ``StatefulWordCount``: ``WordCount`` for EFFECTIVELY_ONCE: the spout's
  position and the bolt's counts are their checkpointed state (the counts
  live in the ``HashMapState``, which records what changed).
- ``Rescaled`` (10 tasks, for ``rescale.py``): ``BenchSpout`` x2 ->
  ``RelayBolt`` x4 (fields on "word") -> ``RelayBolt`` x3 -> ``SinkBolt``;
  ``StatefulRescaled`` (10 tasks): ``StatefulBenchSpout`` x2 ->
  ``StatefulCountBolt`` x8 (fields on "word").

The spout cycles through a pre-built vocabulary (``bench.vocabulary`` words,
default 1000) and emits ``[word, time.time()]``; in ATLEAST_ONCE it emits
with ``tup_id`` and the bolts anchor and ack. Every 0.5 s it reads the file
``bench.control.file`` (if set): a positive number there is a pace in
tuples/s, a negative one pauses the spout (0 or missing: as fast as it is
asked).

The counting bolt keeps a counter and, on a tick tuple every 0.5 s, appends
one JSON line ``[time, count, [latency samples in s]]`` to
``<bench.output.dir>/<component>-<task>.jsonl``. Latency is ``time.time()``
at ``process`` minus the spout's ``time.time()`` at emit, sampled every
``SAMPLE_EVERY``-th tuple (at most ``MAX_SAMPLES`` per line).

Without ``bench.output.dir`` (the in-process baseline) nothing is written.
"""

import json
import os
import time

from heronpy_lite.api import Bolt, Grouping, Spout, Topology
from heronpy_lite.api.state.stateful_component import StatefulComponent

SAMPLE_MASK = 31  # sample every 32nd tuple
MAX_SAMPLES = 4000  # per 0.5 s line
CONTROL_POLL_SECS = 0.5
TICK_SECS = 0.5


def vocabulary(n):
    """``n`` distinct words of 3..10 letters, deterministic."""
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    words = []
    for i in range(n):
        length = 3 + i % 8
        x = i * 2654435761 + 12345
        word = []
        for _ in range(length):
            word.append(letters[x % 26])
            x //= 26
            x += i + 7
        words.append("".join(word) + str(i))
    return words


def _reliable(config):
    return config.get("topology.reliability.mode") == "ATLEAST_ONCE"


class BenchSpout(Spout):
    outputs = ["word", "ts"]

    def initialize(self, config, context):
        self.words = vocabulary(int(config.get("bench.vocabulary", 1000)))
        self.n = len(self.words)
        self.i = 0
        self.reliable = _reliable(config)
        self.control = config.get("bench.control.file") or None
        self.rate = 0.0
        self.paced_since = 0.0
        self.paced_sent = 0
        self.next_poll = 0.0
        self.seq = 0

    def _poll(self, now):
        self.next_poll = now + CONTROL_POLL_SECS
        if self.control is None:
            self.next_poll = float("inf")
            return
        try:
            with open(self.control) as f:
                rate = float(f.read().strip() or 0)
        except (OSError, ValueError):
            rate = 0.0
        if rate != self.rate:
            self.rate = rate
            self.paced_since = now
            self.paced_sent = 0

    def next_tuple(self):
        now = time.time()
        if now >= self.next_poll:
            self._poll(now)
        if self.rate:
            if self.rate < 0 or self.paced_sent >= (now - self.paced_since) * self.rate:
                return
            self.paced_sent += 1
        i = self.i
        word = self.words[i]
        i += 1
        self.i = i if i < self.n else 0
        if self.reliable:
            self.seq += 1
            self.emit([word, now], tup_id=self.seq)
        else:
            self.emit([word, now])


class _Counting(Bolt):
    """Counts, samples latency, reports on ticks."""

    outputs = []

    def initialize(self, config, context):
        self.reliable = _reliable(config)
        self.count = 0
        self.samples = []
        self.out = None
        folder = config.get("bench.output.dir")
        if folder:
            name = f"{context.get_component_id()}-{context.get_task_id()}.jsonl"
            # kept open for the task's life
            self.out = open(os.path.join(folder, name), "a", buffering=1)  # noqa: SIM115
            self.out.write(json.dumps([time.time(), 0, []]) + "\n")

    def _sample(self, values):
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(time.time() - values[1])

    def process_tick(self, tup):
        if self.out is not None:
            self.out.write(json.dumps([time.time(), self.count, self.samples]) + "\n")
        self.samples = []


class CountBolt(_Counting):
    """Word count: a dict of counts (terminal: emits nothing)."""

    def initialize(self, config, context):
        super().initialize(config, context)
        self.counts = {}

    def process(self, tup):
        values = tup.values
        word = values[0]
        counts = self.counts
        counts[word] = counts.get(word, 0) + 1
        n = self.count + 1
        self.count = n
        if not n & SAMPLE_MASK:
            self._sample(values)
        if self.reliable:
            self.ack(tup)


class SinkBolt(_Counting):
    """The end of the chain: counts only."""

    def process(self, tup):
        n = self.count + 1
        self.count = n
        if not n & SAMPLE_MASK:
            self._sample(tup.values)
        if self.reliable:
            self.ack(tup)


class RelayBolt(Bolt):
    """Identity stage: re-emits the values (anchored + acked in ATLEAST_ONCE)."""

    outputs = ["word", "ts"]

    def initialize(self, config, context):
        self.reliable = _reliable(config)

    def process(self, tup):
        if self.reliable:
            self.emit(tup.values, anchors=[tup])
            self.ack(tup)
        else:
            self.emit(tup.values)


_TICK = {"topology.tick.tuple.freq.secs": TICK_SECS}


class WordCount(Topology):
    spout = BenchSpout.spec(par=1)
    count = CountBolt.spec(par=1, inputs={spout: Grouping.fields("word")}, config=_TICK)


class Chain(Topology):
    spout = BenchSpout.spec(par=1)
    stage1 = RelayBolt.spec(par=1, inputs={spout: Grouping.SHUFFLE})
    stage2 = RelayBolt.spec(par=1, inputs={stage1: Grouping.SHUFFLE})
    stage3 = SinkBolt.spec(par=1, inputs={stage2: Grouping.SHUFFLE}, config=_TICK)


class StatefulBenchSpout(BenchSpout, StatefulComponent):
    """Replayable: its position in the vocabulary is its state."""

    def init_state(self, stateful_state):
        self.state = stateful_state

    def initialize(self, config, context):
        super().initialize(config, context)
        self.i = int(self.state.get("i", 0))

    def pre_save(self, checkpoint_id):
        self.state["i"] = self.i


class StatefulCountBolt(CountBolt, StatefulComponent):
    """The counts are the state."""

    def init_state(self, stateful_state):
        self.state = stateful_state

    def initialize(self, config, context):
        super().initialize(config, context)
        self.counts = self.state

    def pre_save(self, checkpoint_id):
        pass


class StatefulWordCount(Topology):
    spout = StatefulBenchSpout.spec(par=1)
    count = StatefulCountBolt.spec(par=1, inputs={spout: Grouping.fields("word")}, config=_TICK)


class Rescaled(Topology):
    spout = BenchSpout.spec(par=2)
    relay = RelayBolt.spec(par=4, inputs={spout: Grouping.fields("word")})
    stage2 = RelayBolt.spec(par=3, inputs={relay: Grouping.SHUFFLE})
    sink = SinkBolt.spec(par=1, inputs={stage2: Grouping.SHUFFLE}, config=_TICK)


class StatefulRescaled(Topology):
    spout = StatefulBenchSpout.spec(par=2)
    count = StatefulCountBolt.spec(par=8, inputs={spout: Grouping.fields("word")}, config=_TICK)
