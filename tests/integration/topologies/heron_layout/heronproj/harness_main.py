"""The harness' topologies, chosen by name, handed over with Topology.write()
(Heron's test_topology_main shape): ``FILE - -t NAME [-n RUNS]``."""

import argparse

from heronpy.api.stream import Grouping

from heronproj.harness.builder import HarnessBuilder
from heronproj.harness.common import (
    ABSpout,
    DoubleTuplesBolt,
    IdentityBolt,
    SumBolt,
    WordCountBolt,
)


def double_then_identity(name, runs):
    builder = HarnessBuilder(name)
    ab = builder.add_spout("ab-spout", ABSpout, 1, max_executions=runs)
    double = builder.add_bolt(
        "double-bolt", DoubleTuplesBolt, 2, inputs={ab: Grouping.SHUFFLE}, optional_outputs=["word"]
    )
    builder.add_bolt(
        "identity-bolt",
        IdentityBolt,
        1,
        inputs={double: Grouping.SHUFFLE},
        optional_outputs=["word"],
    )
    count = builder.add_bolt("count-bolt", WordCountBolt, 1, inputs={ab: Grouping.fields("word")})
    builder.add_bolt("sum-bolt", SumBolt, 1, inputs={count: Grouping.NONE})
    return builder.create_topology()


BUILDERS = {"DoubleThenIdentity": double_then_identity}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-t", "--topology-name", required=True)
    parser.add_argument("-n", "--runs", type=int, default=10)
    args = parser.parse_args()
    kind = args.topology_name.split("_")[0]
    BUILDERS[kind](args.topology_name, args.runs).write()
