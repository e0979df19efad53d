"""Heron's stateful word count example's shape: ``submit local FILE - NAME WORDS``,
EFFECTIVELY_ONCE set on the builder, a tick frequency on the bolt."""

import sys

import heronpy.api.api_constants as constants
from heronpy.api.stream import Grouping
from heronpy.api.topology import TopologyBuilder

from heronproj.stateful import StatefulCountBolt, StatefulWordSpout

if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: stateful_word_count_topology.py NAME WORDS")
        sys.exit(1)

    builder = TopologyBuilder(name=sys.argv[1])
    word_spout = builder.add_spout(
        "word_spout", StatefulWordSpout, par=2, config={"test.words": int(sys.argv[2])}
    )
    builder.add_bolt(
        "count_bolt",
        StatefulCountBolt,
        par=2,
        inputs={word_spout: Grouping.fields("word")},
        config={constants.TOPOLOGY_TICK_TUPLE_FREQ_SECS: 10},
    )
    builder.set_config(
        {
            constants.TOPOLOGY_RELIABILITY_MODE: constants.TopologyReliabilityMode.EFFECTIVELY_ONCE,
            constants.TOPOLOGY_STATEFUL_CHECKPOINT_INTERVAL_SECONDS: 1,
            constants.TOPOLOGY_STMGRS: 2,
        }
    )
    builder.build_and_submit()
