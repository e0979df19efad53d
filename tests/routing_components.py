"""Spouts, bolts and small topologies for the routing and task unit tests, and
tasks built as the instance core builds them."""

from __future__ import annotations

import logging
from typing import Any

from heronpy_lite.api import Bolt, Spout, Stream, TopologyBuilder
from heronpy_lite.api.topology import TopologyDefinition, definition_of
from heronpy_lite.instance.bolt import BoltInstance
from heronpy_lite.instance.core import install_forwarded
from heronpy_lite.instance.routing import stream_specs
from heronpy_lite.instance.spout import SpoutInstance
from heronpy_lite.instance.task import Batching, TaskInstance
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


def make_host(
    builder: TopologyBuilder,
    component: str,
    *,
    batch_max_tuples: int = 1024,
    batch_max_bytes: int = 1 << 20,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    context: Any = None,
    task_index: int = 0,
    **options: Any,
) -> Any:
    """A task of ``component`` (its first unless ``task_index``), built as the instance
    core builds it, with the component attached (not initialized). ``options`` go
    to SpoutInstance/BoltInstance (``reliable``, ``clock``, ``message_timeout_secs``...)."""
    definition = definition_of(builder)
    plan = pack_round_robin(
        definition.name, [(c.name, c.par) for c in definition.components.values()], 1
    )
    tasks = {name: plan.component_tasks(name) for name in definition.components}
    me = definition.components[component]
    cls: type[TaskInstance] = SpoutInstance if me.is_spout else BoltInstance
    host = cls(
        topology=definition.name,
        task_id=tasks[component][task_index],
        component=component,
        streams=stream_specs(definition, component, tasks, context),
        task_components={t.task_id: t.component for t in plan.tasks},
        logger=logging.getLogger("tests.unit.host"),
        batching=Batching(batch_max_tuples, batch_max_bytes, max_frame_bytes),
        **options,
    )
    host.component = me.python_class(delegate=host)
    install_forwarded(host.component, host)
    return host


class Router:
    """Where one task's emits go, read back through a real task and its tuple path
    (``emit(..., need_task_ids=True)``): what the routing tests check."""

    def __init__(self, builder: TopologyBuilder, component: str = "spout", context: Any = None):
        self.host = make_host(builder, component, context=context)

    def destinations(
        self, stream: str, values: list[Any], direct_task: int | None = None
    ) -> list[int]:
        tasks: list[int] = self.host.emit(
            values, stream=stream, direct_task=direct_task, need_task_ids=True
        )
        return tasks


def router_for(builder: TopologyBuilder, component: str = "spout", context: Any = None) -> Router:
    return Router(builder, component, context)
