"""The topology messages of ``heronpy.proto.topology_pb2`` as plain objects.

heronpy describes a spec with protobuf messages (`HeronComponentSpec.get_protobuf`),
and harnesses written against it read them: ``bolt.comp.name``,
``bolt.inputs[i].stream.component_name``, ``spout.outputs[i].stream.id``,
``comp.config.kvs``. These classes have the same field names, defaults and
enum values, and repeated fields that are lists with protobuf's ``add()``, so
such code runs unchanged; nothing is serialized (heronpy_lite sends no
protobuf, and no pickle: a config value that is not a string is kept as
``python_value`` instead of being pickled into ``serialized_value``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")


class _Enum:
    """protobuf's enum wrapper: ``Grouping.Value("SHUFFLE") == 1``, ``Grouping.Name(1)``."""

    def __init__(self, name: str, values: dict[str, int]) -> None:
        self._name = name
        self._values = dict(values)
        for key, value in values.items():
            setattr(self, key, value)

    def __getattr__(self, name: str) -> int:  # the values, set in __init__
        raise AttributeError(f"Enum {self._name} has no value {name!r}")

    def Value(self, name: str) -> int:
        try:
            return self._values[name]
        except KeyError:
            raise ValueError(f"Enum {self._name} has no value defined for name {name!r}") from None

    def Name(self, number: int) -> str:
        for key, value in self._values.items():
            if value == number:
                return key
        raise ValueError(f"Enum {self._name} has no name defined for value {number!r}")

    def keys(self) -> list[str]:
        return list(self._values)

    def values(self) -> list[int]:
        return list(self._values.values())

    def items(self) -> list[tuple[str, int]]:
        return list(self._values.items())


Grouping = _Enum(
    "Grouping",
    {"SHUFFLE": 1, "FIELDS": 2, "ALL": 3, "LOWEST": 4, "NONE": 5, "DIRECT": 6, "CUSTOM": 7},
)
Type = _Enum("Type", {"OBJECT": 1})
ComponentObjectSpec = _Enum(
    "ComponentObjectSpec",
    {
        "JAVA_CLASS_NAME": 1,
        "JAVA_SERIALIZED_OBJECT": 2,
        "PYTHON_CLASS_NAME": 3,
        "CPP_CLASS_INFO": 4,
    },
)
CustomGroupingObjectType = _Enum("CustomGroupingObjectType", {"JAVA_OBJECT": 1, "PYTHON_OBJECT": 2})
ConfigValueType = _Enum(
    "ConfigValueType",
    {"STRING_VALUE": 1, "JAVA_SERIALIZED_VALUE": 2, "PYTHON_SERIALIZED_VALUE": 3},
)
TopologyState = _Enum("TopologyState", {"RUNNING": 1, "PAUSED": 2, "KILLED": 3})


class Repeated(list[_T]):
    """A repeated field: a list, plus protobuf's ``add()`` for message fields."""

    def __init__(self, factory: Callable[[], _T]) -> None:
        super().__init__()
        self._factory = factory

    def add(self, **fields: Any) -> _T:
        item = self._factory()
        for key, value in fields.items():
            setattr(item, key, value)
        self.append(item)
        return item


class _Message:
    """Fields as attributes; ``==`` and ``repr`` by field, as protobuf compares."""

    _fields: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, f) == getattr(other, f) for f in self._fields
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, as protobuf messages

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({fields})"


class StreamId(_Message):
    _fields = ("id", "component_name")

    def __init__(self, id: str = "", component_name: str = "") -> None:
        self.id = id
        self.component_name = component_name


class StreamSchema(_Message):
    class KeyType(_Message):
        _fields = ("key", "type")

        def __init__(self, key: str = "", type: int = 1) -> None:
            self.key = key
            self.type = type

    _fields = ("keys",)

    def __init__(self) -> None:
        self.keys: Repeated[StreamSchema.KeyType] = Repeated(StreamSchema.KeyType)


class OutputStream(_Message):
    _fields = ("stream", "schema")

    def __init__(self) -> None:
        self.stream = StreamId()
        self.schema = StreamSchema()


class InputStream(_Message):
    """``custom_grouping_object`` holds the ICustomGrouping object itself (heronpy:
    its cloudpickled bytes)."""

    _fields = ("stream", "gtype", "grouping_fields", "custom_grouping_object", "type")

    def __init__(self) -> None:
        self.stream = StreamId()
        self.gtype = 0
        self.grouping_fields = StreamSchema()
        self.custom_grouping_object: Any = None
        self.type = 0


class Config(_Message):
    class KeyValue(_Message):
        """``value`` for strings; any other value stays a Python object in
        ``python_value`` (heronpy pickles it into ``serialized_value``)."""

        _fields = ("key", "value", "serialized_value", "type", "python_value")

        def __init__(self) -> None:
            self.key = ""
            self.value = ""
            self.serialized_value = b""
            self.type = 0
            self.python_value: Any = None

    _fields = ("kvs",)

    def __init__(self) -> None:
        self.kvs: Repeated[Config.KeyValue] = Repeated(Config.KeyValue)


class Component(_Message):
    _fields = ("name", "class_name", "config", "spec")

    def __init__(self) -> None:
        self.name = ""
        self.class_name = ""
        self.config = Config()
        self.spec = 0


class Spout(_Message):
    _fields = ("comp", "outputs")

    def __init__(self) -> None:
        self.comp = Component()
        self.outputs: Repeated[OutputStream] = Repeated(OutputStream)


class Bolt(_Message):
    _fields = ("comp", "inputs", "outputs")

    def __init__(self) -> None:
        self.comp = Component()
        self.inputs: Repeated[InputStream] = Repeated(InputStream)
        self.outputs: Repeated[OutputStream] = Repeated(OutputStream)


class Topology(_Message):
    _fields = ("id", "name", "spouts", "bolts", "state", "topology_config")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.spouts: Repeated[Spout] = Repeated(Spout)
        self.bolts: Repeated[Bolt] = Repeated(Bolt)
        self.state = TopologyState.RUNNING
        self.topology_config = Config()
