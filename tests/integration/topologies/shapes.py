"""Topology shapes, built with TopologyBuilder, over 3 containers:

- numbers (par 3) -> merge (par 2): a spout with par 3 into one bolt
- numbers + letters -> merge: two spouts into one bolt
- numbers -> merge and numbers -> doubler: one spout into two bolts
- doubler -> double_sink: a bolt that emits twice per input
- numbers -> stage1 -> stage2 -> chain_sink: a three-stage chain
- streams['evens'] -> evens_sink, streams['odds'] -> odds_sink: named streams
- ticker: tick tuples at the frequency set in its initialize
"""

from harness import Doubler, FiniteSpout, Relay, Sink, TickRecorder, TwoStreamSpout

from heronpy_lite.api import Grouping, TopologyBuilder


class LetterSpout(FiniteSpout):
    outputs = ["task", "seq", "key"]

    def next_tuple(self):
        if self.seq < self.total:
            self.emit([self.task, self.seq, chr(ord("a") + self.seq % 26)])
            self.seq += 1


builder = TopologyBuilder("Shapes")
builder.set_config({"topology.stmgrs": 3})
numbers = builder.add_spout("numbers", FiniteSpout, par=3)
letters = builder.add_spout("letters", LetterSpout, par=1)
streams = builder.add_spout("streams", TwoStreamSpout, par=1)
builder.add_bolt("merge", Sink, par=2, inputs=[numbers, letters])
doubler = builder.add_bolt("doubler", Doubler, par=2, inputs={numbers: Grouping.SHUFFLE})
builder.add_bolt("double_sink", Sink, par=1, inputs={doubler: Grouping.fields("seq")})
stage1 = builder.add_bolt("stage1", Relay, par=2, inputs={numbers: Grouping.fields("seq")})
stage2 = builder.add_bolt("stage2", Relay, par=2, inputs={stage1: Grouping.SHUFFLE})
builder.add_bolt("chain_sink", Sink, par=2, inputs={stage2: Grouping.fields("key")})
builder.add_bolt("evens_sink", Sink, par=1, inputs={streams["evens"]: Grouping.SHUFFLE})
builder.add_bolt("odds_sink", Sink, par=1, inputs={streams["odds"]: Grouping.SHUFFLE})
builder.add_bolt("ticker", TickRecorder, par=1, inputs={letters: Grouping.SHUFFLE})
