"""Building a streamlet graph (``heronpy.streamlet.builder``).

`Builder._to_topology_builder(name)` turns the graph into a heronpy_lite
`TopologyBuilder`, one spout or bolt per streamlet. Every instance process
imports the topology file and calls it again, so it must give the same
topology every time: components are named and added in a fixed order
(heronpy's: depth first from each source in the order they were added, an
operation with two parents once both are built), user functions are handed
to components in their config (never pickled), and nothing in the graph is
changed by building it.
"""

from __future__ import annotations

import logging
from typing import Any

from heronpy_lite.api.component.component_spec import GlobalStreamId
from heronpy_lite.api.stream import Grouping
from heronpy_lite.api.topology import TopologyBuilder
from heronpy_lite.errors import TopologyError
from heronpy_lite.streamlet.generator import Generator
from heronpy_lite.streamlet.impl.generatorspout import GeneratorStreamlet
from heronpy_lite.streamlet.impl.streamletboltbase import (
    KEY_FIELD,
    KEYED,
    OUTPUT,
    Input,
    Plan,
    reader,
)
from heronpy_lite.streamlet.impl.supplierspout import SupplierStreamlet
from heronpy_lite.streamlet.streamlet import Streamlet

log = logging.getLogger(__name__)


class Builder:
    """The graph of a streamlet topology: start it with `new_source`."""

    def __init__(self) -> None:
        self._sources: list[Streamlet] = []
        #: the Config given to `Runner.run`, if it was run without submitting
        self._config: Any = None

    def new_source(self, source: Any) -> Streamlet:
        """A source streamlet from a `Generator` or a function called for each element."""
        streamlet: Streamlet
        if isinstance(source, Generator):
            streamlet = GeneratorStreamlet(source, self)
        elif callable(source):
            streamlet = SupplierStreamlet(source, self)
        else:
            raise RuntimeError("Builder's new source has to be either a Generator or a function")
        self._sources.append(streamlet)
        return streamlet

    def build(self, bldr: TopologyBuilder) -> None:
        """Add the graph's components to ``bldr`` (heronpy's entry point)."""
        for spec in self._to_topology_builder(bldr.topology_name)._specs.values():
            bldr.add_spec(spec)

    def _to_topology_builder(self, name: str) -> TopologyBuilder:
        """The topology: one spec per streamlet, with the config `Runner.run` was given."""
        order = self._order()
        names = _names(order)
        emits: dict[int, set[str]] = {id(s): set() for s in order}
        for s in order:
            for parent, stream in s._reads():
                emits[id(parent)].add(stream)
        bldr = TopologyBuilder(name)
        for s in order:
            inputs: dict[tuple[str, str], Input] = {}
            subscriptions: dict[GlobalStreamId, Any] = {}
            for side, (parent, stream) in enumerate(s._reads()):
                source = (names[id(parent)], stream)
                if source in inputs:
                    inputs[source].sides += (side,)
                    continue
                inputs[source] = Input((side,), reader(stream, parent._kind))
                subscriptions[GlobalStreamId(*source)] = (
                    s._grouping(parent) if stream == OUTPUT else Grouping.fields(KEY_FIELD)
                )
            plan = Plan(
                name=names[id(s)],
                function=s._function(),
                emits_output=OUTPUT in emits[id(s)],
                emits_keyed=KEYED in emits[id(s)],
                inputs=inputs,
                options=s._options(),
            )
            config = s._config(plan)
            par = s.get_num_partitions()
            if s._parents:
                bldr.add_bolt(plan.name, s._component(), par, subscriptions, config)
            else:
                bldr.add_spout(plan.name, s._component(), par, config)
        if self._config is not None:
            bldr.set_config(dict(self._config._api_config))
        return bldr

    def _order(self) -> list[Streamlet]:
        """Every streamlet, parents first, in heronpy's build order."""
        if not self._sources:
            raise TopologyError("the streamlet Builder has no source (Builder.new_source)")
        order: list[Streamlet] = []
        done: set[int] = set()

        def visit(s: Streamlet) -> None:
            if id(s) in done or not all(id(p) in done for p in s._parents):
                return
            done.add(id(s))
            order.append(s)
            for child in s._children:
                visit(child)

        for source in self._sources:
            visit(source)
        for s in order:
            for child in s._children:
                if id(child) not in done:
                    raise TopologyError(
                        f"Topology cannot be fully built! A {child._prefix} streamlet has a "
                        "parent that is not from this Builder's sources"
                    )
        return order


def _names(order: list[Streamlet]) -> dict[int, str]:
    """Names given with set_name, and ``<prefix>-<n>`` (lowest free n) for the rest."""
    taken: dict[str, Streamlet] = {}
    for s in order:
        name = s.get_name()
        if name is not None:
            if name in taken:
                raise TopologyError(f"two streamlets are named {name!r}")
            taken[name] = s
    names: dict[int, str] = {}
    for s in order:
        name = s.get_name()
        if name is None:
            n = 1
            while f"{s._prefix}-{n}" in taken:
                n += 1
            name = f"{s._prefix}-{n}"
            taken[name] = s
        names[id(s)] = name
    return names
