"""The ceiling of the user code: the same spout and bolt classes, one process,
no engine.

A loop calls ``next_tuple``; a stub delegate hands each emitted tuple straight
to the next component's ``process`` (as a ``HeronTuple``, the object bolts
receive), and, for a spout emit with a ``tup_id``, calls the spout's ``ack``
right after. ``ack``/``fail`` of bolts do nothing; anchors are ignored; no
copy, no grouping, no serialization, no clock reads beyond the user code's.
As the engine's runner does, the stub's ``emit`` is installed on components
that keep heronpy's forwarding one, and the measurement runs with the GC
thresholds engine processes use (`heronpy_lite.process.relax_gc`).
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import sys
import time
from types import ModuleType
from typing import Any

from harness import TOPOLOGY_FILE

from heronpy_lite.api.bolt.bolt import BaseBolt
from heronpy_lite.api.spout.spout import BaseSpout
from heronpy_lite.api.state.state import HashMapState
from heronpy_lite.api.tuple import HeronTuple
from heronpy_lite.process import GC_THRESHOLDS

_LOGGER = logging.getLogger("benchmarks.baseline")
_new = tuple.__new__


def load_bench() -> ModuleType:
    name = "heronpy_lite_bench_topologies"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TOPOLOGY_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class _Context:
    def __init__(self, component: str, task: int, config: dict[str, Any]) -> None:
        self.component = component
        self.task = task
        self.config = config

    def get_task_id(self) -> int:
        return self.task

    def get_component_id(self) -> str:
        return self.component

    def get_cluster_config(self) -> dict[str, Any]:
        return self.config

    def get_topology_name(self) -> str:
        return "baseline"


class _Stub:
    """The delegate: emit -> downstream ``process``; everything else a no-op."""

    logger = _LOGGER

    def __init__(self, component: str, task: int) -> None:
        self.component = component
        self.task = task
        self.downstream: Any = None
        self.spout: Any = None

    def emit(
        self,
        tup: Any,
        tup_id: Any = None,
        stream: str = "default",
        anchors: Any = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        if self.downstream is not None:
            # the fastest way to build the object bolts receive (a namedtuple's own
            # constructor costs twice as much: that is engine overhead, not user code)
            self.downstream(
                _new(HeronTuple, (None, self.component, stream, self.task, tup, 0.0, None))
            )
        if tup_id is not None and self.spout is not None:
            self.spout.ack(tup_id)
        return None

    def ack(self, tup: Any) -> None:
        pass

    def fail(self, tup: Any) -> None:
        pass

    def log(self, message: str, level: str | None = None) -> None:
        pass


def build(topology: str, mode: str) -> tuple[Any, Any]:
    """(spout, the counting bolt) wired like the topology ``topology``."""
    bench = load_bench()
    config = {"topology.reliability.mode": mode, "bench.vocabulary": 1000}
    names = {
        "WordCount": ["spout", "count"],
        "StatefulWordCount": ["spout", "count"],
        "Chain": ["spout", "stage1", "stage2", "stage3"],
    }[topology]
    stateful = topology.startswith("Stateful")
    classes = {
        "spout": bench.StatefulBenchSpout if stateful else bench.BenchSpout,
        "count": bench.StatefulCountBolt if stateful else bench.CountBolt,
        "stage1": bench.RelayBolt,
        "stage2": bench.RelayBolt,
        "stage3": bench.SinkBolt,
    }
    stubs = []
    components = []
    for task, name in enumerate(names, start=1):
        stub = _Stub(name, task)
        component = classes[name](delegate=stub)
        base = BaseSpout if name == "spout" else BaseBolt
        if getattr(type(component), "emit", None) is base.emit:
            component.emit = stub.emit  # no forwarding frame, as the runner installs it
        if stateful:
            component.init_state(HashMapState())  # as the engine does, before initialize
        component.initialize(config=dict(config), context=_Context(name, task, config))
        stubs.append(stub)
        components.append(component)
    for i, stub in enumerate(stubs[:-1]):
        stub.downstream = components[i + 1].process
    stubs[0].spout = components[0]
    return components[0], components[-1]


def measure(topology: str, mode: str, windows: int, seconds: float) -> list[float]:
    """Tuples/s reaching the counting bolt, one value per window."""
    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)  # what engine processes run with
    try:
        return _measure(topology, mode, windows, seconds)
    finally:
        gc.set_threshold(*thresholds)


def _measure(topology: str, mode: str, windows: int, seconds: float) -> list[float]:
    spout, sink = build(topology, mode)
    next_tuple = spout.next_tuple
    for _ in range(20000):  # warm up
        next_tuple()
    rates = []
    clock = time.perf_counter
    for _ in range(windows):
        c0 = sink.count
        t0 = clock()
        end = t0 + seconds
        while clock() < end:
            for _ in range(2000):
                next_tuple()
        rates.append((sink.count - c0) / (clock() - t0))
    return rates
