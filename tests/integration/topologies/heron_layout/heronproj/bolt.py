"""Bolts of the shapes of Heron's examples: counting (with global_metrics),
half acking, stream aggregating and consuming."""

from collections import Counter

from heronpy.api import global_metrics
from heronpy.api.bolt.bolt import Bolt

from heronproj.record import Recorder


class CountBolt(Bolt):
    """Counts words; bumps the global counter 'count'; acks; records [word, task]."""

    def initialize(self, config, context):
        self.counter = Counter()
        self.record = Recorder(config, context)

    def process(self, tup):
        word = tup.values[0]
        self.counter[word] += 1
        global_metrics.safe_incr("count")
        self.record.write(word, tup.task)
        self.ack(tup)


class HalfAckBolt(Bolt):
    """Fails every second tuple it receives, acks the others (Heron's HalfAckBolt)."""

    def initialize(self, config, context):
        self.total = 0

    def process(self, tup):
        self.total += 1
        if self.total % 2 == 0:
            self.fail(tup)
        else:
            self.ack(tup)


class StreamAggregateBolt(Bolt):
    """Records the stream of every tuple."""

    def initialize(self, config, context):
        self.record = Recorder(config, context)

    def process(self, tup):
        self.record.write(tup.stream, tup.values[0])


class ConsumeBolt(Bolt):
    """Acks and records every tuple it gets (it sits behind a custom grouping)."""

    def initialize(self, config, context):
        self.record = Recorder(config, context)

    def process(self, tup):
        self.record.write(tup.values[0])
        self.ack(tup)
