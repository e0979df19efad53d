"""Streams and groupings (``heronpy.api.stream``)."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from heronpy_lite.api.custom_grouping import ICustomGrouping


class Stream:
    """An output stream declaration, for a component's ``outputs``.

    Args:
        fields: names of the tuple's values, in order.
        name: the stream id; ``"default"`` unless given.
        direct: heronpy refuses True ("not supported yet"); here direct emits
            work on any stream consumed with ``Grouping.DIRECT``, so True is
            accepted and changes nothing.
    """

    DEFAULT_STREAM_ID = "default"

    def __init__(
        self,
        fields: list[str] | tuple[str, ...] | None = None,
        name: str = DEFAULT_STREAM_ID,
        direct: bool = False,
    ) -> None:
        if fields is None:
            fields = []
        elif isinstance(fields, (list, tuple)):
            for f in fields:
                if not isinstance(f, str):
                    raise TypeError(f"All field names must be strings, given: {f!s}")
        else:
            raise TypeError(f"Stream fields must be a list, tuple or None, given: {fields!s}")
        if name is None:
            raise TypeError("Stream's name cannot be None")
        if not isinstance(name, str):
            raise TypeError(f"Stream name must be a string, given: {name!s}")
        if not isinstance(direct, bool):
            raise TypeError(f"'direct' must be either True or False, given: {direct!s}")
        self.fields = list(fields)
        self.stream_id = name
        self.direct = direct

    def __repr__(self) -> str:
        return f"Stream(fields={self.fields!r}, name={self.stream_id!r})"


class Grouping:
    """How a stream's tuples are spread over the consumer's tasks.

    The simple groupings are plain ints, as in heronpy (``SHUFFLE``, ``ALL``,
    ``LOWEST`` with its alias ``GLOBAL``, ``NONE``, ``DIRECT``);
    ``fields(...)`` and ``custom(...)`` build structured ones.
    """

    SHUFFLE = 1
    FIELDS_TYPE = 2
    ALL = 3
    LOWEST = 4
    NONE = 5
    DIRECT = 6
    CUSTOM_TYPE = 7

    GLOBAL = LOWEST
    LOCAL_OR_SHUFFLE = SHUFFLE

    FIELDS = namedtuple("FieldGrouping", "gtype, fields")  # type: ignore[name-match]
    CUSTOM = namedtuple("CustomGrouping", "gtype, python_serialized")  # type: ignore[name-match]

    @classmethod
    def is_grouping_sane(cls, gtype: Any) -> bool:
        if isinstance(gtype, int) and not isinstance(gtype, bool):
            return gtype in (cls.SHUFFLE, cls.ALL, cls.LOWEST, cls.NONE, cls.DIRECT)
        if isinstance(gtype, cls.FIELDS):
            return gtype.gtype == cls.FIELDS_TYPE and bool(gtype.fields)
        if isinstance(gtype, cls.CUSTOM):
            return gtype.gtype == cls.CUSTOM_TYPE and isinstance(
                gtype.python_serialized, (ICustomGrouping, str)
            )
        return False

    @classmethod
    def fields(cls, *fields: Any) -> Any:
        """Tuples with equal values of ``fields`` always reach the same task."""
        if len(fields) == 1 and isinstance(fields[0], (list, tuple)):
            fields = tuple(fields[0])
        for f in fields:
            if not isinstance(f, str):
                raise TypeError("Non-string cannot be specified in fields")
        if not fields:
            raise ValueError("List cannot be empty for fields grouping")
        return cls.FIELDS(gtype=cls.FIELDS_TYPE, fields=list(fields))

    @classmethod
    def custom(cls, customgrouper: ICustomGrouping | str) -> Any:
        """A grouping whose ``choose_tasks`` picks the destination tasks.

        Args:
            customgrouper: an `ICustomGrouping`, or the dotted path of an
                ICustomGrouping class (instantiated with no arguments when the
                topology is loaded), as heronpy accepts.

        The object is rebuilt in every sending instance when it loads the
        topology file, so it is never pickled (``python_serialized`` holds the
        object or the path itself).
        """
        if customgrouper is None or not isinstance(customgrouper, (ICustomGrouping, str)):
            raise TypeError("Argument to custom() must be ICustomGrouping instance or classpath")
        return cls.CUSTOM(gtype=cls.CUSTOM_TYPE, python_serialized=customgrouper)

    @classmethod
    def custom_serialized(cls, serialized: bytes, is_java: bool = True) -> Any:
        """heronpy's grouping from a serialized object: not supported, as heronpy_lite
        never unpickles (use `custom` with the object or its class path)."""
        if not isinstance(serialized, bytes):
            raise TypeError(
                "Argument to custom_serialized() must be "
                f"a serialized Python class as bytes, given: {serialized!s}"
            )
        if is_java:
            raise NotImplementedError(
                "Custom grouping implemented in Java for Python topology is not yet supported."
            )
        raise NotImplementedError(
            "custom_serialized() is not supported: heronpy_lite never unpickles; pass the "
            "ICustomGrouping object or its class path to Grouping.custom()"
        )

    @classmethod
    def custom_object(cls, java_class_name: str, arg_list: list[Any]) -> Any:
        """Java custom groupings: not implemented (as in heronpy)."""
        raise NotImplementedError("custom_object() method is not yet implemented")


def grouping_name(grouping: Any) -> str:
    """Human-readable name of a grouping, for errors and ``status``."""
    names = {
        Grouping.SHUFFLE: "shuffle",
        Grouping.ALL: "all",
        Grouping.LOWEST: "lowest",
        Grouping.NONE: "none",
        Grouping.DIRECT: "direct",
    }
    if isinstance(grouping, Grouping.FIELDS):
        return "fields(" + ", ".join(grouping.fields) + ")"
    if isinstance(grouping, Grouping.CUSTOM):
        grouper = grouping.python_serialized
        return f"custom({grouper if isinstance(grouper, str) else type(grouper).__name__})"
    return names.get(grouping, repr(grouping))
