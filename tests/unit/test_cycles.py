"""Cycles in a topology: found at validation, refused at submit unless enabled,
and refused under tcp backpressure even then."""

from __future__ import annotations

import re
from typing import Any

import pytest

from heronpy_lite.api import Bolt, Grouping, Spout, Stream, Topology, TopologyBuilder
from heronpy_lite.api.topology import check_cycles, definition_of
from heronpy_lite.errors import TopologyError


class S(Spout):
    outputs = ["x"]


class B(Bolt):
    outputs = ["x"]


class TwoStreams(Bolt):
    outputs = [Stream(fields=["x"], name="again"), Stream(fields=["x"], name="done")]


class Chain(Topology):
    s = S.spec()
    a = B.spec(inputs={s: Grouping.SHUFFLE})
    b = B.spec(inputs={a: Grouping.SHUFFLE, s: Grouping.ALL})
    c = B.spec(inputs=[a, b])


class Loop(Topology):
    s = S.spec()
    a = TwoStreams.spec(inputs={s: Grouping.SHUFFLE, "c": Grouping.SHUFFLE})
    b = B.spec(inputs={a["again"]: Grouping.SHUFFLE})
    c = B.spec(inputs={b: Grouping.SHUFFLE})
    sink = B.spec(inputs={a["done"]: Grouping.SHUFFLE})


class SelfLoop(Topology):
    s = S.spec()
    a = B.spec(inputs={s: Grouping.SHUFFLE, "a": Grouping.SHUFFLE})


def test_a_dag_has_no_cycle() -> None:
    assert definition_of(Chain).cycle() is None
    check_cycles(definition_of(Chain), {})


def test_the_cycle_is_named_in_order() -> None:
    assert definition_of(Loop).cycle() == ["a", "b", "c", "a"]
    assert definition_of(SelfLoop).cycle() == ["a", "a"]


def test_a_long_chain_does_not_recurse() -> None:
    builder = TopologyBuilder("Long")
    previous: Any = builder.add_spout("s", S, par=1)
    for i in range(5000):
        previous = builder.add_bolt(f"b{i}", B, par=1, inputs=[previous])
    assert definition_of(builder).cycle() is None


@pytest.mark.parametrize("strategy", ["tcp", "spout", "stage"])
def test_a_cycle_is_refused_unless_enabled(strategy: str) -> None:
    config = {"topology.backpressure.strategy": strategy}
    with pytest.raises(TopologyError) as err:
        check_cycles(definition_of(Loop), config)
    assert str(err.value) == (
        "topology 'Loop' has a cycle (a -> b -> c -> a): backpressure can deadlock it, so it "
        "is refused; set topology.enable.cycles=true to run it (with spout or stage "
        "backpressure)"
    )


@pytest.mark.parametrize("strategy", ["spout", "stage"])
def test_an_enabled_cycle_runs_with_spout_or_stage(strategy: str) -> None:
    config = {"topology.enable.cycles": True, "topology.backpressure.strategy": strategy}
    check_cycles(definition_of(Loop), config)
    check_cycles(definition_of(SelfLoop), config)


def test_an_enabled_cycle_is_refused_under_tcp() -> None:
    config = {"topology.enable.cycles": True, "topology.backpressure.strategy": "tcp"}
    with pytest.raises(TopologyError, match=re.escape("under tcp backpressure a cycle")):
        check_cycles(definition_of(SelfLoop), config)
