"""Heron's multi-stream example: a Topology class, submitted by its name."""

from heronpy.api.stream import Grouping
from heronpy.api.topology import Topology

from heronproj.bolt import CountBolt, StreamAggregateBolt
from heronproj.spout import MultiStreamSpout


class MultiStream(Topology):
    config = {"test.words": 30}
    spout = MultiStreamSpout.spec(par=1)
    count_bolt = CountBolt.spec(par=1, inputs={spout: Grouping.fields("word")})
    stream_aggregator = StreamAggregateBolt.spec(
        par=2, inputs={spout: Grouping.ALL, spout["error"]: Grouping.ALL}
    )
