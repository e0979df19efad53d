"""Component specs (``heronpy.api.component.component_spec``): what ``Spout.spec()``
and ``Bolt.spec()`` return, or what a harness builds itself from a class path."""

from __future__ import annotations

import importlib
import uuid
from typing import Any

from heronpy_lite.api.api_constants import TOPOLOGY_COMPONENT_PARALLELISM
from heronpy_lite.api.stream import Grouping, Stream
from heronpy_lite.proto import topology_pb2


class GlobalStreamId:
    """A stream of a component: ``spec['stream']`` or ``GlobalStreamId('name', 'stream')``."""

    def __init__(self, componentId: Any, streamId: str) -> None:
        if not isinstance(componentId, (str, HeronComponentSpec)):
            raise TypeError(
                "GlobalStreamId: componentId must be either string or HeronComponentSpec"
            )
        if not isinstance(streamId, str):
            raise TypeError("GlobalStreamId: streamId must be string type")
        self._component_id = componentId
        self.stream_id = streamId

    @property
    def component_id(self) -> str:
        if isinstance(self._component_id, HeronComponentSpec):
            if self._component_id.name is None:
                uid = self._component_id.uuid
                return f"<No name available for HeronComponentSpec yet, uuid: {uid}>"
            return self._component_id.name
        return self._component_id

    def __eq__(self, other: object) -> bool:
        return (
            hasattr(other, "component_id")
            and hasattr(other, "stream_id")
            and self.component_id == other.component_id
            and self.stream_id == other.stream_id
        )

    def __hash__(self) -> int:
        return hash(str(self))

    def __str__(self) -> str:
        return f"{self.component_id}:{self.stream_id}"

    __repr__ = __str__


class HeronComponentSpec:
    """A component in a topology: its class, parallelism, inputs, outputs and config.

    Built by ``Spout.spec()``/``Bolt.spec()``, or directly as heronpy allows::

        HeronComponentSpec("relay", "my_pkg.bolts.Relay", False, 2, inputs={...})

    Args:
        name: the component's name; None until the spec is assigned to a
            `Topology` class attribute, whose name it then takes.
        python_class_path: the dotted path of the spout or bolt class, imported
            when the topology is loaded; or the class itself.
        is_spout: True for a spout.
        par: number of tasks.
        inputs: a bolt's inputs, ``{spec: Grouping}``, ``{spec['stream']: Grouping}``,
            ``{GlobalStreamId: Grouping}`` or a list of specs (shuffle).
        outputs: a list of field names (default stream) and `Stream` objects.
        config: the component's config, over the topology's.
    """

    def __init__(
        self,
        name: str | None,
        python_class_path: str | type,
        is_spout: bool,
        par: int,
        inputs: Any = None,
        outputs: Any = None,
        config: Any = None,
        *,
        python_class: type | None = None,
    ) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"component name must be a str, got {name!r}")
        if isinstance(python_class_path, type):
            python_class = python_class or python_class_path
            python_class_path = f"{python_class_path.__module__}.{python_class_path.__qualname__}"
        if not isinstance(python_class_path, str):
            raise TypeError(
                f"python_class_path must be a dotted path (str), got {python_class_path!r}"
            )
        self.name = name
        self.python_class_path = python_class_path
        #: the class itself when known (a spec from ``Spout.spec()``); else imported
        #: from ``python_class_path`` when the topology is loaded
        self.python_class = python_class
        self.is_spout = is_spout
        self.parallelism = par
        self.inputs = inputs
        self.outputs = outputs
        self.custom_config = config
        self.uuid = str(uuid.uuid4())

    # -- heronpy's introspection --

    def get_protobuf(self) -> Any:
        """This component as heronpy's ``Spout``/``Bolt`` message (plain objects of
        `heronpy_lite.proto.topology_pb2`). Raises heronpy's errors for bad inputs,
        outputs or config."""
        if self.is_spout:
            spout = topology_pb2.Spout()
            spout.comp = self._get_base_component()
            self._add_out_streams(spout)
            return spout
        bolt = topology_pb2.Bolt()
        bolt.comp = self._get_base_component()
        self._add_in_streams(bolt)
        self._add_out_streams(bolt)
        return bolt

    def _get_base_component(self) -> Any:
        comp = topology_pb2.Component()
        comp.name = self.name or ""
        comp.spec = topology_pb2.ComponentObjectSpec.PYTHON_CLASS_NAME
        comp.class_name = self.python_class_path
        # parallelism first, then the component's own config (heronpy's order)
        add_config_kvs(comp.config, {TOPOLOGY_COMPONENT_PARALLELISM: str(self.parallelism)})
        if self.custom_config is not None:
            add_config_kvs(comp.config, sanitize_config(self.custom_config, "component-specific"))
        return comp

    def _add_in_streams(self, bolt: Any) -> None:
        if self.inputs is None:
            return
        for stream_id, grouping in sanitize_inputs(self).items():
            in_stream = bolt.inputs.add()
            in_stream.stream = topology_pb2.StreamId(stream_id.stream_id, stream_id.component_id)
            if isinstance(grouping, Grouping.FIELDS):
                in_stream.gtype = grouping.gtype
                in_stream.grouping_fields = _schema(grouping.fields)
            elif isinstance(grouping, Grouping.CUSTOM):
                in_stream.gtype = grouping.gtype
                in_stream.custom_grouping_object = grouping.python_serialized
                in_stream.type = topology_pb2.CustomGroupingObjectType.PYTHON_OBJECT
            else:
                in_stream.gtype = grouping

    def _add_out_streams(self, component: Any) -> None:
        if self.outputs is None:
            return
        for stream, fields in self.output_fields().items():
            out = component.outputs.add()
            out.stream = topology_pb2.StreamId(stream, self.name or "")
            out.schema = _schema(fields)

    # -- streams --

    def get_out_streamids(self) -> set[str]:
        """The ids of the streams this component declares."""
        return set(self.output_fields())

    def output_fields(self) -> dict[str, list[str]]:
        """Declared streams and their fields: strings go to ``default``."""
        if self.outputs is None:
            return {}
        if not isinstance(self.outputs, (list, tuple)):
            raise TypeError(
                f"Argument to outputs must be either list or tuple, given: {type(self.outputs)!s}"
            )
        result: dict[str, list[str]] = {}
        for out in self.outputs:
            if isinstance(out, str):
                result.setdefault(Stream.DEFAULT_STREAM_ID, []).append(out)
            elif isinstance(out, Stream):
                if out.stream_id == Stream.DEFAULT_STREAM_ID:
                    result.setdefault(out.stream_id, []).extend(out.fields)
                else:
                    result[out.stream_id] = list(out.fields)
            else:
                raise TypeError(f"Outputs must be a list of strings or Streams, given: {out!s}")
        return result

    def __getitem__(self, stream_id: str) -> GlobalStreamId:
        if stream_id not in self.get_out_streamids():
            raise ValueError(f"A given stream id does not exist on this component: {stream_id}")
        return GlobalStreamId(self.name or self, stream_id)

    def __repr__(self) -> str:
        return (
            f"HeronComponentSpec({self.name!r}, {self.python_class_path!r}, par={self.parallelism})"
        )


def _schema(fields: list[str]) -> Any:
    schema = topology_pb2.StreamSchema()
    for name in fields:
        schema.keys.add(key=name, type=topology_pb2.Type.OBJECT)
    return schema


def sanitize_config(config: Any, kind: str) -> dict[str, Any]:
    """heronpy's config sanitizing: str keys; bools, numbers and strings as strings
    ("true"/"false" for bools), anything else kept as it is. ``kind`` is
    ``"component-specific"`` or ``"topology-wide"``, as in heronpy's messages."""
    if kind == "component-specific" and not isinstance(config, dict):
        raise TypeError(
            f"Component-specific configuration must be given as a dict type, given: "
            f"{type(config)!s}"
        )
    sanitized: dict[str, Any] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            where = (
                "component-specific configuration"
                if kind == "component-specific"
                else ("topology-wide configuration")
            )
            sep = ":" if kind == "component-specific" else ": "
            raise TypeError(f"Key for {where} must be string, given: {type(key)!s}{sep}{key!s}")
        if isinstance(value, bool):
            sanitized[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            sanitized[key] = str(value)
        else:
            sanitized[key] = value
    return sanitized


def add_config_kvs(proto_config: Any, sanitized: dict[str, Any]) -> None:
    """Append sanitized ``key: value`` pairs to a `topology_pb2.Config`."""
    for key, value in sanitized.items():
        kv = proto_config.kvs.add(key=key)
        if isinstance(value, str):
            kv.value = value
            kv.type = topology_pb2.ConfigValueType.STRING_VALUE
        else:
            kv.python_value = value
            kv.type = topology_pb2.ConfigValueType.PYTHON_SERIALIZED_VALUE


def sanitize_inputs(spec: HeronComponentSpec) -> dict[GlobalStreamId, Any]:
    """heronpy's accepted ``inputs`` forms, as one ``{GlobalStreamId: grouping}`` dict,
    with heronpy's errors for the others. Plain component names (``{"name":
    grouping}``) are accepted too, for the default stream."""
    inputs = spec.inputs
    result: dict[GlobalStreamId, Any] = {}
    if inputs is None:
        return result
    if isinstance(inputs, dict):
        for key, grouping in inputs.items():
            if not Grouping.is_grouping_sane(grouping):
                raise ValueError("A given grouping is not supported")
            stream = _stream_key(key)
            if stream is None:
                raise ValueError(f"{key!s} is not supported as a key to inputs")
            result[stream] = grouping
    elif isinstance(inputs, (list, tuple)):
        for key in inputs:
            stream = _stream_key(key)
            if stream is None:
                raise ValueError(f"{key!s} is not supported as an input")
            result[stream] = Grouping.SHUFFLE
    else:
        raise TypeError(f"Inputs must be a list, dict, or None, given: {inputs!s}")
    return result


def _stream_key(key: Any) -> GlobalStreamId | None:
    if isinstance(key, HeronComponentSpec):
        return GlobalStreamId(key, Stream.DEFAULT_STREAM_ID)
    if isinstance(key, GlobalStreamId):
        return key
    if isinstance(key, str):
        return GlobalStreamId(key, Stream.DEFAULT_STREAM_ID)
    return None


def resolve_class_path(path: str) -> Any:
    """The object a dotted path names (``pkg.module.Class``, or ``pkg.module.Outer.Inner``):
    the longest importable module prefix, then attributes. Raises ImportError (the
    module that failed in its message) or AttributeError."""
    parts = path.split(".")
    if len(parts) < 2 or not all(parts):
        raise ImportError(f"{path!r} is not a dotted class path (module.Class)")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # only "this prefix is not a module" means: try a shorter one
            missing = exc.name or ""
            if cut > 1 and (module_name == missing or module_name.startswith(missing + ".")):
                continue
            raise
        for attr in parts[cut:]:
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                raise AttributeError(f"module {module_name!r} has no attribute {attr!r}") from None
        return obj
    raise ImportError(f"cannot import {path!r}")  # pragma: no cover (loop returns or raises)
