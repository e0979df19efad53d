"""Tuples as user code sees them (``heronpy.api.tuple``)."""

from __future__ import annotations

import time
from collections import namedtuple
from typing import Any

#: The user-facing tuple: ``values`` is the list emitted upstream.
Tuple = namedtuple("Tuple", "id component stream task values")

#: What ``Bolt.process`` receives: a `Tuple` plus its arrival time and, in
#: ATLEAST_ONCE, the roots of its tuple tree. ``id`` is None in ATMOST_ONCE.
HeronTuple = namedtuple(
    "HeronTuple", ["id", "component", "stream", "task", "values", "creation_time", "roots"]
)


class TupleHelper:
    """Constants for system tuples."""

    TICK_TUPLE_ID = "__tick"
    TICK_SOURCE_COMPONENT = "__system"

    @staticmethod
    def make_tick_tuple() -> Any:
        """The tuple handed to ``Bolt.process_tick`` (as heronpy's instance builds it)."""
        return HeronTuple(
            id=TupleHelper.TICK_TUPLE_ID,
            component=TupleHelper.TICK_SOURCE_COMPONENT,
            stream=TupleHelper.TICK_TUPLE_ID,
            task=None,
            values=None,
            creation_time=time.time(),
            roots=None,
        )
