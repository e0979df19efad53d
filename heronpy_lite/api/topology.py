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

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from heronpy_lite.api import api_constants
from heronpy_lite.api.bolt.bolt import BaseBolt
from heronpy_lite.api.component.component_spec import (
    HeronComponentSpec,
    add_config_kvs,
    resolve_class_path,
    sanitize_config,
    sanitize_inputs,
)
from heronpy_lite.api.custom_grouping import ICustomGrouping
from heronpy_lite.api.spout.spout import BaseSpout
from heronpy_lite.api.stream import Grouping, grouping_name
from heronpy_lite.errors import TopologyError
from heronpy_lite.keygroups import TOPOLOGY_KEYGROUPS, keygroups_for
from heronpy_lite.proto import topology_pb2

_RESERVED_STREAMS = ("__tick", "__ack")


class TopologyType(type):
    """Builds a `Topology` class from its component specs, as heronpy's metaclass does.

    Specs take the name of the attribute they are assigned to (unless named).
    A subclass gets heronpy's class attributes: ``_heron_specs`` (the specs,
    inherited ones first), ``_topo_config`` (heronpy's defaults under the
    ``config`` attribute, values as strings), ``_protobuf_spouts`` and
    ``_protobuf_bolts`` (name -> message), ``protobuf_topology``,
    ``topology_name`` and ``topology_id``. heronpy's checks run here, with its
    errors (ValueError): a duplicate name, no spout, a spout without outputs,
    a bolt without inputs, bad inputs, outputs or config.
    """

    DEFAULT_TOPOLOGY_CONFIG: dict[str, str] = {
        api_constants.TOPOLOGY_DEBUG: "false",
        api_constants.TOPOLOGY_STMGRS: "1",
        api_constants.TOPOLOGY_MESSAGE_TIMEOUT_SECS: "30",
        api_constants.TOPOLOGY_COMPONENT_PARALLELISM: "1",
        api_constants.TOPOLOGY_MAX_SPOUT_PENDING: "100",
        api_constants.TOPOLOGY_RELIABILITY_MODE: api_constants.TopologyReliabilityMode.ATMOST_ONCE,
        api_constants.TOPOLOGY_ENABLE_MESSAGE_TIMEOUTS: "true",
    }

    def __new__(
        mcs, classname: str, bases: tuple[type, ...], class_dict: dict[str, Any]
    ) -> TopologyType:
        specs: dict[str, HeronComponentSpec] = {}
        for base in bases:
            for spec in getattr(base, "_heron_specs", None) or []:
                specs[spec.name] = spec
        for attr, value in list(class_dict.items()):
            if isinstance(value, HeronComponentSpec):
                if value.name is None:
                    value.name = attr
                if value.name in specs and specs[value.name] is not value:
                    raise TopologyError(f"Duplicate component name: {value.name}")
                specs[value.name] = value
        if "config" not in class_dict:
            configs = [vars(b).get("config") for base in bases for b in base.__mro__]
            inherited = next((c for c in configs if isinstance(c, dict)), None)
            if inherited:
                class_dict["config"] = inherited
        if classname != "Topology":
            spouts: dict[str, Any] = {}
            bolts: dict[str, Any] = {}
            for spec in specs.values():
                if spec.is_spout:
                    if not spec.outputs:
                        raise TopologyError(
                            f"{spec.python_class_path}: {spec.name} requires at least one "
                            "output, because it is a spout"
                        )
                    spouts[spec.name] = spec.get_protobuf()  # type: ignore[index]
                else:
                    if not spec.inputs:
                        raise TopologyError(
                            f"{spec.python_class_path}: {spec.name} requires at least one "
                            "input, because it is a bolt"
                        )
                    bolts[spec.name] = spec.get_protobuf()  # type: ignore[index]
            if not spouts:
                raise TopologyError("A Topology requires at least one Spout")
            topo_config = dict(mcs.DEFAULT_TOPOLOGY_CONFIG)
            config = class_dict.get("config")
            if isinstance(config, dict):
                topo_config.update(sanitize_config(config, "topology-wide"))
            class_dict["_topo_config"] = topo_config
            class_dict["_protobuf_spouts"] = spouts
            class_dict["_protobuf_bolts"] = bolts
            class_dict["_heron_specs"] = list(specs.values())
            topology_id = classname + str(uuid.uuid4())
            proto = topology_pb2.Topology()
            proto.id = topology_id
            proto.name = classname
            proto.state = topology_pb2.TopologyState.RUNNING
            add_config_kvs(proto.topology_config, topo_config)
            proto.spouts.extend(spouts.values())
            proto.bolts.extend(bolts.values())
            class_dict["topology_name"] = classname
            class_dict["topology_id"] = topology_id
            class_dict["protobuf_topology"] = proto
        return super().__new__(mcs, classname, bases, class_dict)


#: who takes what `Topology.write()` hands over: the loader, while it runs a
#: topology file as ``__main__`` (a stack, innermost last)
_receivers: list[Callable[[Any], None]] = []


@contextlib.contextmanager
def receiving(receiver: Callable[[Any], None]) -> Iterator[None]:
    """While active, `Topology.write()` and `TopologyBuilder.build_and_submit()` call
    ``receiver`` with the topology instead of failing."""
    _receivers.append(receiver)
    try:
        yield
    finally:
        _receivers.remove(receiver)


def hand_over(topology: Any) -> None:
    """Give ``topology`` (a Topology subclass, a TopologyBuilder, or an object with
    ``_to_topology_builder(name)``) to the ``heronpy-lite submit`` running this file."""
    if not _receivers:
        raise RuntimeError(
            "no heronpy-lite submit is running this file: submit it with "
            "`heronpy-lite submit CLUSTER FILE - NAME [ARGS...]`, which runs it as "
            "__main__ and takes the topology it hands over"
        )
    _receivers[-1](topology)


class Topology(metaclass=TopologyType):
    """Subclass and assign component specs as class attributes.

    The class attribute ``config`` (a dict) is the topology config. Submit the
    class by name (``heronpy-lite submit CLUSTER FILE ClassName``), or call
    ``write()`` from a file submitted with ``-``.
    """

    config: dict[str, Any] = {}

    @classmethod
    def write(cls) -> None:
        """Hand this topology to ``heronpy-lite submit CLUSTER FILE - NAME`` (heronpy:
        writes its definition file for ``heron submit``)."""
        if cls.__name__ == "Topology":
            raise ValueError("The base Topology class cannot be writable")
        hand_over(cls)


class TopologyBuilder:
    """Builds a topology imperatively, for code that computes its shape.

    ``build_and_submit()`` hands it to the running ``heronpy-lite submit``, as
    heronpy's hands it to ``heron submit``; or submit the builder object by name.
    The builder's name is the topology's name unless ``--name`` says otherwise.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name or name == "Topology":
            raise TopologyError(f"invalid topology name {name!r}")
        self.topology_name = name
        self._specs: dict[str, HeronComponentSpec] = {}
        self._topology_config: dict[str, Any] = {}

    def add_spec(self, *specs: HeronComponentSpec) -> None:
        """Add component specs (e.g. built with `HeronComponentSpec` directly)."""
        for spec in specs:
            if not isinstance(spec, HeronComponentSpec):
                raise TypeError(
                    f"Argument to add_spec needs to be HeronComponentSpec, given: {spec!s}"
                )
            if spec.name is None:
                raise TopologyError("TopologyBuilder cannot take a spec without name")
            if spec.name == "config":
                raise TopologyError("config is a reserved name")
            if spec.name in self._specs:
                raise TopologyError(
                    f"Attempting to add duplicate spec name: {spec.name!r} {spec!r}"
                )
            self._specs[spec.name] = spec

    def add_spout(
        self,
        name: str,
        spout_cls: Any,
        par: int,
        config: dict[str, Any] | None = None,
        optional_outputs: list[Any] | None = None,
    ) -> HeronComponentSpec:
        """Add a spout; returns its spec (for other components' ``inputs``)."""
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
        """Add a bolt; returns its spec."""
        spec: HeronComponentSpec = bolt_cls.spec(
            name=name, inputs=inputs, par=par, config=config, optional_outputs=optional_outputs
        )
        self.add_spec(spec)
        return spec

    def set_config(self, config: dict[str, Any]) -> None:
        """Set the topology-wide config (the dict itself is kept, as in heronpy)."""
        if not isinstance(config, dict):
            raise TypeError(f"Argument to set_config needs to be dict, given: {config!s}")
        self._topology_config = config

    def _construct_topo_class_dict(self) -> dict[str, Any]:
        class_dict: dict[str, Any] = dict(self._specs)
        class_dict["config"] = self._topology_config
        return class_dict

    def build_and_submit(self) -> None:
        """Build the topology class and hand it to ``heronpy-lite submit CLUSTER FILE - NAME``."""
        topology_class = TopologyType(
            self.topology_name, (Topology,), self._construct_topo_class_dict()
        )
        topology_class.write()  # type: ignore[attr-defined]


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

    @property
    def key_fields(self) -> int:
        """How many fields its grouping names when every input is fields-grouped
        (its state can then be keyed: keygroups.py), else 0."""
        if not self.inputs or not all(isinstance(i.grouping, Grouping.FIELDS) for i in self.inputs):
            return 0
        return len(self.inputs[0].grouping.fields)


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


def _has_builder_method(obj: Any) -> bool:
    return not isinstance(obj, type) and callable(getattr(obj, "_to_topology_builder", None))


def definition_of(
    obj: Any, name: str | None = None, default_name: str | None = None
) -> TopologyDefinition:
    """Validate a topology into a definition: a `Topology` subclass, a
    `TopologyBuilder`, or any object with ``_to_topology_builder(name)`` (the
    Streamlet API's ``Builder``). The definition is named ``name``, else the
    topology's own name (the class's, the builder's), else ``default_name``."""
    if _has_builder_method(obj):
        own = name or default_name
        if not own:
            raise TopologyError(f"a {type(obj).__name__} needs a topology name (--name)")
        obj = obj._to_topology_builder(own)
        if not isinstance(obj, TopologyBuilder):
            raise TopologyError(
                f"_to_topology_builder() returned a {type(obj).__name__}, not a TopologyBuilder"
            )
    if isinstance(obj, TopologyBuilder):
        try:
            obj = TopologyType(obj.topology_name, (Topology,), obj._construct_topo_class_dict())
        except TopologyError:
            raise
        except (TypeError, ValueError) as exc:
            raise TopologyError(str(exc)) from exc
    if not (isinstance(obj, type) and issubclass(obj, Topology) and obj is not Topology):
        raise TopologyError(
            f"expected a Topology subclass or a TopologyBuilder, got {type(obj).__name__}"
        )
    specs = list(obj._heron_specs)  # type: ignore[attr-defined]
    config = getattr(obj, "config", None) or {}
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise TopologyError("topology config must be a dict with str keys")
    return _validate(name or obj.__name__, specs, dict(config))


def component_class(spec: HeronComponentSpec) -> type:
    """The spout or bolt class of ``spec``: its class, or the one its dotted
    ``python_class_path`` names (imported now). `TopologyError` names the
    component, the path and the module that failed."""
    cls = spec.python_class
    if cls is None:
        try:
            cls = resolve_class_path(spec.python_class_path)
        except ImportError as exc:
            raise TopologyError(
                f"component {spec.name!r}: cannot import {spec.python_class_path!r}: {exc}"
            ) from exc
        except AttributeError as exc:
            raise TopologyError(
                f"component {spec.name!r}: cannot find {spec.python_class_path!r}: {exc}"
            ) from exc
    kind, base = ("spout", BaseSpout) if spec.is_spout else ("bolt", BaseBolt)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TopologyError(
            f"component {spec.name!r}: {spec.python_class_path} is not a {kind} class (got {cls!r})"
        )
    return cls


def _custom_grouping_from_path(component: str, grouping: Any) -> Any:
    """``Grouping.custom("pkg.mod.Grouper")``: an instance of that class (heronpy's
    runtime instantiates it with no arguments in each sending task)."""
    path = grouping.python_serialized
    try:
        grouper = resolve_class_path(path)()
    except Exception as exc:
        raise TopologyError(
            f"bolt {component!r}: cannot build the custom grouping {path!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(grouper, ICustomGrouping):
        raise TopologyError(f"bolt {component!r}: {path} is not an ICustomGrouping")
    return Grouping.CUSTOM(gtype=grouping.gtype, python_serialized=grouper)


def _validate(
    name: str, specs: list[HeronComponentSpec], config: dict[str, Any]
) -> TopologyDefinition:
    seen: set[str] = set()
    classes: dict[str, type] = {}
    for spec in specs:
        assert spec.name is not None
        if spec.name in seen:
            raise TopologyError(f"Duplicate component name: {spec.name}")
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
        classes[spec.name] = component_class(spec)
    if not any(s.is_spout for s in specs):
        raise TopologyError("A Topology requires at least one Spout")

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
        assert spec.name is not None
        inputs: list[InputStream] = []
        if spec.is_spout:
            if spec.inputs:
                raise TopologyError(f"spout {spec.name!r} cannot have inputs")
        else:
            if not spec.inputs:
                raise TopologyError(f"bolt {spec.name!r} has no inputs")
            try:
                normalized = sanitize_inputs(spec)
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
                if isinstance(grouping, Grouping.CUSTOM) and isinstance(
                    grouping.python_serialized, str
                ):
                    grouping = _custom_grouping_from_path(spec.name, grouping)
                inputs.append(InputStream(source, stream_id.stream_id, grouping))
        components[spec.name] = ComponentDefinition(
            name=spec.name,
            python_class=classes[spec.name],
            is_spout=spec.is_spout,
            par=spec.parallelism,
            inputs=tuple(inputs),
            outputs=outputs[spec.name],
            config=dict(spec.custom_config or {}),
        )
    definition = TopologyDefinition(name=name, components=components, config=config)
    check_keygroups(definition)
    return definition


def check_keygroups(definition: TopologyDefinition) -> None:
    """A fields-grouped bolt has no more tasks than key groups (keygroups.py): a
    task without a key group would never receive a tuple."""
    for c in definition.components.values():
        if not any(isinstance(i.grouping, Grouping.FIELDS) for i in c.inputs):
            continue
        groups = keygroups_for(c.config, definition.config)
        if c.par > groups:
            raise TopologyError(
                f"bolt {c.name!r}: parallelism {c.par} is more than its {groups} key groups "
                f"(raise {TOPOLOGY_KEYGROUPS})"
            )


def check_effectively_once(definition: TopologyDefinition) -> None:
    """What EFFECTIVELY_ONCE needs of a topology: some state to keep (a component
    that is a `StatefulComponent`), and no cycle (checkpoint markers are aligned
    over a component's inputs, which a cycle would make wait for themselves)."""
    from heronpy_lite.api.state.stateful_component import StatefulComponent

    classes = [c.python_class for c in definition.components.values()]
    if all(cls.__module__.startswith("heronpy_lite.streamlet.") for cls in classes):
        raise TopologyError(
            "EFFECTIVELY_ONCE is not available for streamlets: their operators keep no "
            "checkpointed state; use ATLEAST_ONCE, or spouts and bolts that are "
            "StatefulComponents"
        )
    if not any(issubclass(cls, StatefulComponent) for cls in classes):
        raise TopologyError(
            "EFFECTIVELY_ONCE needs a stateful topology: no component is a StatefulComponent "
            "(heronpy.api.state.stateful_component)"
        )
    cycle = definition.cycle()
    if cycle is not None:
        raise TopologyError("EFFECTIVELY_ONCE cannot checkpoint a cycle: " + " -> ".join(cycle))


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
