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
        direct: accepted for heronpy compatibility; direct emits work on any
            stream consumed with ``Grouping.DIRECT``, so it changes nothing.
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
        if not isinstance(fields, (list, tuple)) or not all(isinstance(f, str) for f in fields):
            raise TypeError(f"Stream fields must be a list of str, got {fields!r}")
        if not isinstance(name, str):
            raise TypeError(f"Stream name must be a str, got {name!r}")
        if not isinstance(direct, bool):
            raise TypeError(f"Stream direct must be a bool, got {direct!r}")
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
                gtype.python_serialized, ICustomGrouping
            )
        return False

    @classmethod
    def fields(cls, *fields: Any) -> Any:
        """Tuples with equal values of ``fields`` always reach the same task."""
        if len(fields) == 1 and isinstance(fields[0], (list, tuple)):
            fields = tuple(fields[0])
        if not fields:
            raise ValueError("Grouping.fields needs at least one field name")
        for f in fields:
            if not isinstance(f, str):
                raise TypeError(f"Grouping.fields takes field names (str), got {f!r}")
        return cls.FIELDS(gtype=cls.FIELDS_TYPE, fields=list(fields))

    @classmethod
    def custom(cls, customgrouper: ICustomGrouping) -> Any:
        """A grouping whose ``choose_tasks`` picks the destination tasks.

        The object is rebuilt in every sending instance when it loads the
        topology file, so it is never pickled.
        """
        if not isinstance(customgrouper, ICustomGrouping):
            raise TypeError(
                f"Grouping.custom takes an ICustomGrouping instance, got {customgrouper!r}"
            )
        return cls.CUSTOM(gtype=cls.CUSTOM_TYPE, python_serialized=customgrouper)


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
        return f"custom({type(grouping.python_serialized).__name__})"
    return names.get(grouping, repr(grouping))
