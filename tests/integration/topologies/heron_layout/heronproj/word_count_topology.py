"""Heron's word count, half acking and custom grouping examples in one topology,
submitted as ``heron submit`` runs a pex: ``submit local FILE - NAME WORDS``."""

import sys

import heronpy.api.api_constants as constants
from heronpy.api.custom_grouping import ICustomGrouping
from heronpy.api.stream import Grouping
from heronpy.api.topology import TopologyBuilder

from heronproj.bolt import ConsumeBolt, CountBolt, HalfAckBolt
from heronproj.spout import WordSpout


class FirstTaskGrouping(ICustomGrouping):
    """Every tuple to the first of the target tasks (Heron's SampleCustomGrouping)."""

    def prepare(self, context, component, stream, target_tasks):
        self.target_tasks = target_tasks

    def choose_tasks(self, values):
        return [self.target_tasks[0]]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: word_count_topology.py NAME WORDS")
        sys.exit(1)

    builder = TopologyBuilder(name=sys.argv[1])
    word_spout = builder.add_spout(
        "word_spout", WordSpout, par=2, config={"test.words": int(sys.argv[2])}
    )
    builder.add_bolt(
        "count_bolt",
        CountBolt,
        par=2,
        inputs={word_spout: Grouping.fields("word")},
        config={constants.TOPOLOGY_AUTO_TASK_HOOKS: ["heronproj.hooks.CountingHook"]},
    )
    builder.add_bolt(
        "half_ack_bolt",
        HalfAckBolt,
        par=1,
        inputs={word_spout: Grouping.SHUFFLE},
        config={constants.TOPOLOGY_AUTO_TASK_HOOKS: ["heronproj.hooks.CountingHook"]},
    )
    builder.add_bolt(
        "consume_bolt",
        ConsumeBolt,
        par=3,
        inputs={word_spout: Grouping.custom(FirstTaskGrouping())},
    )
    builder.set_config(
        {
            constants.TOPOLOGY_RELIABILITY_MODE: constants.TopologyReliabilityMode.ATLEAST_ONCE,
            constants.TOPOLOGY_STMGRS: 2,
        }
    )
    builder.build_and_submit()
