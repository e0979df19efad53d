"""User components of the harness' topologies (Heron's integration_test common)."""

import json
import os

from heronpy.api.bolt.bolt import Bolt
from heronpy.api.spout.spout import Spout

from heronproj.harness.bolt import BatchBolt


class ABSpout(Spout):
    outputs = ["word"]

    def initialize(self, config, context):
        self.to_send = ["A", "B"]
        self.emitted = 0

    def next_tuple(self):
        self.emit([self.to_send[self.emitted % 2]])
        self.emitted += 1


class IdentityBolt(Bolt):
    """Outputs come from ``optional_outputs``."""

    def process(self, tup):
        self.emit(tup.values)


class DoubleTuplesBolt(Bolt):
    """Outputs come from ``optional_outputs``."""

    def process(self, tup):
        self.emit(tup.values)
        self.emit(tup.values)


class WordCountBolt(BatchBolt):
    """How many different words it saw, at the end."""

    outputs = ["count"]

    def initialize(self, config, context):
        self.cache = set()

    def process(self, tup):
        self.cache.add(tup.values[0])

    def finish_batch(self):
        self.emit([len(self.cache)])


class SumBolt(BatchBolt):
    """The sum of its inputs, at the end."""

    outputs = ["sum"]

    def initialize(self, config, context):
        self.sum = 0

    def process(self, tup):
        self.sum += int(tup.values[0])

    def finish_batch(self):
        self.emit([self.sum])


class ResultAggregator(BatchBolt):
    """Collects the first value of every tuple; writes them sorted at the end."""

    outputs = []

    def initialize(self, config, context):
        self.path = os.path.join(config["test.output.dir"], "results.json")
        self.result = []

    def process(self, tup):
        self.result.append(tup.values[0])

    def finish_batch(self):
        with open(self.path + ".tmp", "w") as f:
            json.dump(sorted(self.result, key=str), f)
        os.replace(self.path + ".tmp", self.path)
