"""The rough edges a new user hit: a chatty spout (its log rotates; with
test.next_tuple.sleep it sleeps in each call, so stopping it takes that
long), a bolt whose ``process`` calls ``sys.exit(3)`` (test.exit true), and a
spout whose ``initialize`` always raises (a submit that fails)."""

import sys
import time

from heronpy_lite.api import Bolt, Grouping, Spout, Topology


class Chatty(Spout):
    outputs = ["seq"]

    def initialize(self, config, context):
        self.seq = 0
        self.sleep = float(config.get("test.next_tuple.sleep", 0))

    def next_tuple(self):
        if self.sleep:
            time.sleep(self.sleep)
        if self.seq < 2000:
            self.log(f"tuple {self.seq}: " + "blah " * 40)
        self.emit([self.seq])
        self.seq += 1


class Exiter(Bolt):
    outputs = []

    def initialize(self, config, context):
        self.exit = bool(config.get("test.exit", False))

    def process(self, tup):
        if self.exit:
            sys.exit(3)


class Edges(Topology):
    config = {"topology.stmgrs": 1}
    chatty = Chatty.spec(par=1)
    exiter = Exiter.spec(par=1, inputs={chatty: Grouping.SHUFFLE})


class FailingSpout(Spout):
    outputs = ["x"]

    def initialize(self, config, context):
        raise RuntimeError("no database at db.example:5432")

    def next_tuple(self):
        pass


class FailsToStart(Topology):
    config = {"topology.stmgrs": 1}
    spout = FailingSpout.spec(par=1)
