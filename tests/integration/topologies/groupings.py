"""Every grouping, one sink per grouping, over 2 containers.

The spout (par 1) emits [task, seq, key] on the default stream, and the same
tuple on stream 'direct' with direct_task chosen as
``direct_tasks[seq % len(direct_tasks)]``.
"""

from harness import FiniteSpout, Sink

from heronpy_lite.api import Grouping, ICustomGrouping, Stream, Topology


class DirectingSpout(FiniteSpout):
    outputs = ["task", "seq", "key", Stream(fields=["task", "seq", "key"], name="direct")]

    def initialize(self, config, context):
        super().initialize(config, context)
        self.direct_tasks = context.get_component_tasks("direct_sink")

    def next_tuple(self):
        if self.seq < self.total:
            values = [self.task, self.seq, str(self.seq % 10)]
            self.emit(values)
            target = self.direct_tasks[self.seq % len(self.direct_tasks)]
            self.emit(values, stream="direct", direct_task=target)
            self.seq += 1


class EvenOddGrouping(ICustomGrouping):
    """Even seqs to the lowest target task, odd seqs to the highest."""

    def prepare(self, context, component, stream, target_tasks):
        self.low, self.high = min(target_tasks), max(target_tasks)

    def choose_tasks(self, values):
        return [self.low] if values[1] % 2 == 0 else [self.high]


class Groupings(Topology):
    config = {"topology.stmgrs": 2}
    spout = DirectingSpout.spec(par=1)
    shuffle_sink = Sink.spec(par=3, inputs={spout: Grouping.SHUFFLE})
    fields_sink = Sink.spec(par=3, inputs={spout: Grouping.fields("key")})
    all_sink = Sink.spec(par=3, inputs={spout: Grouping.ALL})
    global_sink = Sink.spec(par=3, inputs={spout: Grouping.GLOBAL})
    none_sink = Sink.spec(par=3, inputs={spout: Grouping.NONE})
    direct_sink = Sink.spec(par=3, inputs={spout["direct"]: Grouping.DIRECT})
    custom_sink = Sink.spec(par=3, inputs={spout: Grouping.custom(EvenOddGrouping())})
