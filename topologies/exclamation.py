"""Exclamation: a spout of words -> exclaim -> exclaim (a bolt -> bolt chain).

    heronpy-lite submit local topologies/exclamation.py ExclamationTopology

The second bolt logs every 1000th result, e.g. "nathan!!!!!!".
"""

import itertools

from heronpy_lite.api import Bolt, Grouping, Spout, Topology


class TestWordSpout(Spout):
    outputs = ["word"]

    def initialize(self, config, context):
        self.words = itertools.cycle(["nathan", "mike", "jackson", "golda", "bertels"])
        self.paced = int(config.get("exclamation.words.per.round", 1))

    def next_tuple(self):
        for _ in range(self.paced):
            self.emit([next(self.words)])


class ExclamationBolt(Bolt):
    outputs = ["word"]

    def initialize(self, config, context):
        self.processed = 0

    def process(self, tup):
        self.processed += 1
        word = tup.values[0] + "!!!"
        if self.processed % 1000 == 0:
            self.log(f"{self.processed} words, latest {word}")
        self.emit([word])


class ExclamationTopology(Topology):
    word = TestWordSpout.spec(par=2)
    exclaim1 = ExclamationBolt.spec(par=2, inputs={word: Grouping.SHUFFLE})
    exclaim2 = ExclamationBolt.spec(par=2, inputs={exclaim1: Grouping.SHUFFLE})
