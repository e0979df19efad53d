"""Spouts, bolts and small topologies for the routing and task-host unit tests."""

from __future__ import annotations

import logging
from typing import Any

from heronpy_lite.api import Bolt, Spout, Stream, TopologyBuilder
from heronpy_lite.api.topology import TopologyDefinition, definition_of
from heronpy_lite.instance.host import TaskHost
from heronpy_lite.instance.routing import OutputRouter
from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.wire.frames import DEFAULT_MAX_FRAME_BYTES


class WordSpout(Spout):
    outputs = ["word", "count"]

    def next_tuple(self) -> None:
        pass


class MultiStreamSpout(Spout):
    outputs = ["word", "count", Stream(fields=["cmd"], name="control")]

    def next_tuple(self) -> None:
        pass


class Recorder(Bolt):
    outputs = ["out"]

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        pass

    def process(self, tup: Any) -> None:
        self.seen = [*getattr(self, "seen", []), tup]


class Sink(Bolt):
    def process(self, tup: Any) -> None:
        pass


def component_tasks(definition: TopologyDefinition, containers: int = 1) -> dict[str, list[int]]:
    plan = pack_round_robin(
        definition.name, [(c.name, c.par) for c in definition.components.values()], containers
    )
    return {name: plan.component_tasks(name) for name in definition.components}


def one_consumer(grouping: Any, par: int = 4, spout: type = WordSpout) -> TopologyBuilder:
    """spout (task 1) -> sink (tasks 2 .. par+1) with ``grouping`` on the default stream."""
    builder = TopologyBuilder("routing")
    words = builder.add_spout("spout", spout, par=1)
    builder.add_bolt("sink", Sink, par=par, inputs={words: grouping})
    return builder


def router_for(
    builder: TopologyBuilder, component: str = "spout", context: Any = None, containers: int = 1
) -> OutputRouter:
    definition = definition_of(builder)
    return OutputRouter(definition, component, component_tasks(definition, containers), context)


def make_host(builder: TopologyBuilder, component: str, **options: Any) -> TaskHost:
    """The first task of ``component``, built as the instance runner builds it, with the
    component attached (not initialized); ``options`` override TaskHost's arguments."""
    definition = definition_of(builder)
    plan = pack_round_robin(
        definition.name, [(c.name, c.par) for c in definition.components.values()], 1
    )
    tasks = {name: plan.component_tasks(name) for name in definition.components}
    me = definition.components[component]
    arguments: dict[str, Any] = {
        "topology": definition.name,
        "task_id": tasks[component][0],
        "component": component,
        "is_spout": me.is_spout,
        "router": OutputRouter(definition, component, tasks, None),
        "task_components": {t.task_id: t.component for t in plan.tasks},
        "batch_max_tuples": 1024,
        "max_frame_bytes": DEFAULT_MAX_FRAME_BYTES,
        "logger": logging.getLogger("tests.unit.host"),
        **options,
    }
    host = TaskHost(**arguments)
    host.component = me.python_class(delegate=host)
    return host
