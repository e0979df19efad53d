"""Declaring topologies (``heronpy.api.topology``).

Two ways, as in heronpy::

    class WordCount(Topology):
        config = {"topology.stmgrs": 2}
        words = WordSpout.spec(par=2)
        count = CountBolt.spec(par=2, inputs={words: Grouping.fields("word")})

    builder = TopologyBuilder("WordCount")
    words = builder.add_spout("words", WordSpout, par=2)
    builder.add_bolt("count", CountBolt, par=2, inputs={words: Grouping.fields("word")})

`definition_of` turns either into a validated `TopologyDefinition`, the
engine's view of the logical plan; `TopologyError` names what is wrong.
`check_cycles` is the one rule that needs the resolved config: a topology
whose components feed themselves (``a -> b -> a``) is refused at submit
unless ``topology.enable.cycles`` is set, and even then under ``tcp``
backpressure (docs/decisions/0043-cycles.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heronpy_lite.api.component.component_spec import HeronComponentSpec, normalize_inputs
from heronpy_lite.api.stream import Grouping, grouping_name
from heronpy_lite.errors import TopologyError

_RESERVED_STREAMS = ("__tick", "__ack")


class TopologyType(type):
    """Collects a `Topology` class's component specs, named after their attributes."""

    def __new__(
        mcs, classname: str, bases: tuple[type, ...], class_dict: dict[str, Any]
    ) -> TopologyType:
        specs: dict[str, HeronComponentSpec] = {}
        for base in bases:
            specs.update(getattr(base, "_heron_specs_by_name", {}))
        for attr, value in class_dict.items():
            if isinstance(value, HeronComponentSpec):
                if value.name is None:
                    value.name = attr
                if value.name in specs and specs[value.name] is not value:
                    raise TopologyError(f"duplicate component name {value.name!r} in {classname}")
                specs[value.name] = value
        class_dict["_heron_specs_by_name"] = specs
        class_dict["topology_name"] = classname
        return super().__new__(mcs, classname, bases, class_dict)

    @property
    def _heron_specs(cls) -> list[HeronComponentSpec]:
        return list(cls._heron_specs_by_name.values())  # type: ignore[attr-defined]


class Topology(metaclass=TopologyType):
    """Subclass and assign component specs as class attributes.

    The class attribute ``config`` (a dict) is the topology config.
    """

    config: dict[str, Any] = {}


class TopologyBuilder:
    """Builds a topology imperatively, for code that computes its shape."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name or name == "Topology":
            raise TopologyError(f"invalid topology name {name!r}")
        self.topology_name = name
        self._specs: dict[str, HeronComponentSpec] = {}
        self._topology_config: dict[str, Any] = {}

    def add_spec(self, *specs: HeronComponentSpec) -> None:
        for spec in specs:
            if not isinstance(spec, HeronComponentSpec):
                raise TypeError(f"add_spec takes component specs, got {spec!r}")
            if spec.name is None:
                raise TopologyError("a component added to TopologyBuilder needs a name")
            if spec.name == "config":
                raise TopologyError("'config' is not allowed as a component name")
            if spec.name in self._specs:
                raise TopologyError(f"duplicate component name {spec.name!r}")
            self._specs[spec.name] = spec

    def add_spout(
        self,
        name: str,
        spout_cls: Any,
        par: int,
        config: dict[str, Any] | None = None,
        optional_outputs: list[Any] | None = None,
    ) -> HeronComponentSpec:
        spec: HeronComponentSpec = spout_cls.spec(
            name=name, par=par, config=config, optional_outputs=optional_outputs
        )
        self.add_spec(spec)
        return spec

    def add_bolt(
        self,
        name: str,
        bolt_cls: Any,
        par: int,
        inputs: Any,
        config: dict[str, Any] | None = None,
        optional_outputs: list[Any] | None = None,
    ) -> HeronComponentSpec:
        spec: HeronComponentSpec = bolt_cls.spec(
            name=name, inputs=inputs, par=par, config=config, optional_outputs=optional_outputs
        )
        self.add_spec(spec)
        return spec

    def set_config(self, config: dict[str, Any]) -> None:
        if not isinstance(config, dict):
            raise TypeError(f"topology config must be a dict, got {config!r}")
        self._topology_config = dict(config)


@dataclass(frozen=True)
class InputStream:
    """One subscription: ``component``'s ``stream`` with ``grouping``."""

    component: str
    stream: str
    grouping: Any


@dataclass(frozen=True)
class ComponentDefinition:
    name: str
    python_class: type
    is_spout: bool
    par: int
    inputs: tuple[InputStream, ...]
    outputs: dict[str, list[str]]
    config: dict[str, Any]


@dataclass(frozen=True)
class TopologyDefinition:
    """A validated logical plan: components in declaration order, and config."""

    name: str
    components: dict[str, ComponentDefinition]
    config: dict[str, Any] = field(default_factory=dict)

    def cycle(self) -> list[str] | None:
        """One cycle of components, in order, its first component repeated at the
        end (``["a", "b", "a"]``; ``["a", "a"]`` for a bolt reading its own
        output), or None. The first found in declaration order."""
        feeds: dict[str, list[str]] = {c: [] for c in self.components}
        for c in self.components.values():
            for i in c.inputs:
                if c.name not in feeds[i.component]:
                    feeds[i.component].append(c.name)
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        path: list[str] = []
        for start in self.components:
            if start in state:
                continue
            # iterative depth-first search: a deep chain must not hit the recursion limit
            stack = [(start, iter(feeds[start]))]
            state[start] = 1
            path.append(start)
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    stack.pop()
                    path.pop()
                    state[node] = 2
                elif state.get(child) == 1:
                    return [*path[path.index(child) :], child]
                elif child not in state:
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(feeds[child])))
        return None

    def consumers(self, component: str, stream: str) -> list[tuple[ComponentDefinition, Any]]:
        """(consumer, grouping) for every subscription to ``component``'s ``stream``."""
        return [
            (c, i.grouping)
            for c in self.components.values()
            for i in c.inputs
            if i.component == component and i.stream == stream
        ]


def definition_of(obj: Any, name: str | None = None) -> TopologyDefinition:
    """Validate a `Topology` subclass or a `TopologyBuilder` into a definition."""
    if isinstance(obj, type) and issubclass(obj, Topology) and obj is not Topology:
        specs = list(obj._heron_specs)
        config = dict(getattr(obj, "config", None) or {})
        default_name = obj.__name__
    elif isinstance(obj, TopologyBuilder):
        specs = list(obj._specs.values())
        config = dict(obj._topology_config)
        default_name = obj.topology_name
    else:
        raise TopologyError(
            f"expected a Topology subclass or a TopologyBuilder, got {type(obj).__name__}"
        )
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise TopologyError("topology config must be a dict with str keys")
    return _validate(name or default_name, specs, config)


def _validate(
    name: str, specs: list[HeronComponentSpec], config: dict[str, Any]
) -> TopologyDefinition:
    seen: set[str] = set()
    for spec in specs:
        assert spec.name is not None
        if spec.name in seen:
            raise TopologyError(f"duplicate component name {spec.name!r}")
        seen.add(spec.name)
        if (
            not isinstance(spec.parallelism, int)
            or isinstance(spec.parallelism, bool)
            or spec.parallelism < 1
        ):
            raise TopologyError(
                f"component {spec.name!r}: par must be an int >= 1, got {spec.parallelism!r}"
            )
        if spec.custom_config is not None and not isinstance(spec.custom_config, dict):
            raise TopologyError(f"component {spec.name!r}: config must be a dict")
        if spec.python_class is None:
            raise TopologyError(f"component {spec.name!r} has no Python class")
    if not any(s.is_spout for s in specs):
        raise TopologyError(f"topology {name!r} has no spout")

    outputs: dict[str, dict[str, list[str]]] = {}
    for spec in specs:
        assert spec.name is not None
        try:
            outputs[spec.name] = spec.output_fields()
        except TypeError as exc:
            raise TopologyError(str(exc)) from exc
        for stream in outputs[spec.name]:
            if stream in _RESERVED_STREAMS:
                raise TopologyError(f"component {spec.name!r}: stream name {stream!r} is reserved")

    components: dict[str, ComponentDefinition] = {}
    for spec in specs:
        assert spec.name is not None and spec.python_class is not None
        inputs: list[InputStream] = []
        if spec.is_spout:
            if spec.inputs:
                raise TopologyError(f"spout {spec.name!r} cannot have inputs")
        else:
            if not spec.inputs:
                raise TopologyError(f"bolt {spec.name!r} has no inputs")
            try:
                normalized = normalize_inputs(spec)
            except (TypeError, ValueError) as exc:
                raise TopologyError(str(exc)) from exc
            for stream_id, grouping in normalized.items():
                source = stream_id.component_id
                if source not in outputs:
                    raise TopologyError(
                        f"bolt {spec.name!r}: input component {source!r} does not exist"
                    )
                declared = outputs[source]
                if stream_id.stream_id not in declared:
                    raise TopologyError(
                        f"bolt {spec.name!r}: component {source!r} declares no stream "
                        f"{stream_id.stream_id!r} (it declares: "
                        f"{', '.join(sorted(declared)) or 'none'})"
                    )
                if isinstance(grouping, Grouping.FIELDS):
                    fields = declared[stream_id.stream_id]
                    missing = [f for f in grouping.fields if f not in fields]
                    if missing:
                        raise TopologyError(
                            f"bolt {spec.name!r}: {grouping_name(grouping)} on "
                            f"{source}:{stream_id.stream_id}, which has no field "
                            f"{missing[0]!r} (fields: {', '.join(fields) or 'none'})"
                        )
                inputs.append(InputStream(source, stream_id.stream_id, grouping))
        components[spec.name] = ComponentDefinition(
            name=spec.name,
            python_class=spec.python_class,
            is_spout=spec.is_spout,
            par=spec.parallelism,
            inputs=tuple(inputs),
            outputs=outputs[spec.name],
            config=dict(spec.custom_config or {}),
        )
    return TopologyDefinition(name=name, components=components, config=config)


#: the config keys `check_cycles` reads (heronpy_lite/config.py declares them)
ENABLE_CYCLES = "topology.enable.cycles"
BACKPRESSURE_STRATEGY = "topology.backpressure.strategy"


def check_cycles(definition: TopologyDefinition, config: dict[str, Any]) -> None:
    """`TopologyError` (one line) if the topology has a cycle that ``config`` (the
    resolved topology config) does not allow.

    Storm and Heron accept cycles, and their users meet backpressure deadlocks
    on them: once the buffers inside a cycle fill, each member waits for the
    next. A cycle is therefore refused unless the topology opts in with
    ``topology.enable.cycles``; with it, ``spout`` and ``stage`` backpressure
    pause only what feeds the cycle from outside, which drains it, while
    ``tcp`` stops reading the cycle's own connections and cannot, so a cycle
    under ``tcp`` is refused even then."""
    cycle = definition.cycle()
    if cycle is None:
        return
    loop = " -> ".join(cycle)
    if not config.get(ENABLE_CYCLES, False):
        raise TopologyError(
            f"topology {definition.name!r} has a cycle ({loop}): backpressure can deadlock "
            f"it, so it is refused; set {ENABLE_CYCLES}=true to run it (with spout or stage "
            "backpressure)"
        )
    strategy = config.get(BACKPRESSURE_STRATEGY, "spout")
    if strategy == "tcp":
        raise TopologyError(
            f"topology {definition.name!r} has a cycle ({loop}): under tcp backpressure a "
            f"cycle whose buffers fill deadlocks; with {ENABLE_CYCLES} use "
            f"{BACKPRESSURE_STRATEGY}=spout or stage"
        )
