"""Streamlets: the functional API's collections of elements (``heronpy.streamlet.streamlet``).

A streamlet comes from ``Builder.new_source`` or from an operation on
another streamlet; each one becomes a spout or bolt named after the
operation (``map-1``, ``flatmap-2``, ...) or as ``set_name`` says, with
``set_num_partitions`` tasks. See `heronpy_lite.streamlet.builder` for how the
graph becomes a topology and the README's Streamlet section for what each
operation does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from heronpy_lite.api.stream import Grouping
from heronpy_lite.streamlet.impl.streamletboltbase import OUTPUT, PLAIN, PLAN, Plan

if TYPE_CHECKING:
    from heronpy_lite.streamlet.transformoperator import TransformOperator
    from heronpy_lite.streamlet.windowconfig import WindowConfig


class Streamlet:
    """A (potentially unbounded) ordered collection of elements."""

    #: the default name of this operation's component is ``<prefix>-<n>``
    _prefix: ClassVar[str] = "streamlet"
    #: what the elements are (see impl.streamletboltbase): PLAIN unless a window result
    _kind: ClassVar[str] = PLAIN

    def __init__(self, *parents: Streamlet) -> None:
        for parent in parents:
            if not isinstance(parent, Streamlet):
                raise RuntimeError(f"Parent of {type(self).__name__} has to be a Streamlet")
        self._parents: list[Streamlet] = list(parents)
        self._children: list[Streamlet] = []
        self._name: str | None = None
        self._num_partitions: int = parents[0].get_num_partitions() if parents else 1
        self._builder: Any = parents[0]._builder if parents else None
        self._output = OUTPUT
        for parent in parents:
            if parent._builder is not self._builder:
                raise RuntimeError(
                    f"{type(self).__name__}: both streamlets must come from the same Builder"
                )
        for parent in parents:
            parent._children.append(self)

    # -- naming and partitions --

    def set_name(self, name: str) -> Streamlet:
        """The component's name (default ``<operation>-<n>``)."""
        if not isinstance(name, str) or not name:
            raise RuntimeError(f"Streamlet name has to be a non-empty string, got {name!r}")
        self._name = name
        return self

    def get_name(self) -> str | None:
        """The name given with ``set_name`` (None: a default is chosen when built)."""
        return self._name

    def set_num_partitions(self, num_partitions: int) -> Streamlet:
        """How many tasks (the component's parallelism)."""
        if (
            isinstance(num_partitions, bool)
            or not isinstance(num_partitions, int)
            or num_partitions < 1
        ):
            raise RuntimeError(f"num_partitions has to be an int >= 1, got {num_partitions!r}")
        self._num_partitions = num_partitions
        return self

    def get_num_partitions(self) -> int:
        return self._num_partitions

    # -- operations --

    def map(self, map_function: Any) -> Streamlet:
        """Each element through ``map_function``."""
        from heronpy_lite.streamlet.impl.mapbolt import MapStreamlet

        return MapStreamlet(map_function, self)

    def flat_map(self, flatmap_function: Any) -> Streamlet:
        """Each element through ``flatmap_function``, the results flattened (a result
        that is not iterable is one element)."""
        from heronpy_lite.streamlet.impl.flatmapbolt import FlatMapStreamlet

        return FlatMapStreamlet(flatmap_function, self)

    def filter(self, filter_function: Any) -> Streamlet:
        """The elements for which ``filter_function`` is true."""
        from heronpy_lite.streamlet.impl.filterbolt import FilterStreamlet

        return FilterStreamlet(filter_function, self)

    def repartition(self, num_partitions: int, repartition_function: Any = None) -> Streamlet:
        """The same elements over ``num_partitions`` tasks; ``repartition_function(element,
        num_partitions)`` picks the partition (an int, or a list of them for several
        copies), otherwise elements are spread evenly."""
        from heronpy_lite.streamlet.impl.repartitionbolt import RepartitionStreamlet

        return RepartitionStreamlet(num_partitions, repartition_function, self)

    def clone(self, num_clones: int) -> list[Streamlet]:
        """``num_clones`` streamlets, each with every element of this one."""
        from heronpy_lite.streamlet.impl.repartitionbolt import CloneStreamlet

        if isinstance(num_clones, bool) or not isinstance(num_clones, int) or num_clones < 1:
            raise RuntimeError(f"Streamlet's clone number should be > 0, got {num_clones!r}")
        return [CloneStreamlet(self) for _ in range(num_clones)]

    def reduce_by_window(self, window_config: WindowConfig, reduce_function: Any) -> Streamlet:
        """Per window, the elements folded with ``reduce_function(a, b)``, as
        ``(Window, result)``; one partition by default (one result per window)."""
        from heronpy_lite.streamlet.impl.reducebywindowbolt import ReduceByWindowStreamlet

        return ReduceByWindowStreamlet(window_config, reduce_function, self)

    def union(self, other_streamlet: Streamlet) -> Streamlet:
        """The elements of this streamlet and of ``other_streamlet``."""
        from heronpy_lite.streamlet.impl.unionbolt import UnionStreamlet

        return UnionStreamlet(self, other_streamlet)

    def transform(self, transform_operator: TransformOperator) -> Streamlet:
        """``transform_operator.transform(tuple)`` for each element; it emits through
        the context its ``setup`` received."""
        from heronpy_lite.streamlet.impl.transformbolt import TransformStreamlet

        return TransformStreamlet(transform_operator, self)

    def log(self) -> Streamlet:
        """Log every element (at INFO, in the task's log). heronpy returns None; the
        sink streamlet is returned here so that it can be named."""
        from heronpy_lite.streamlet.impl.logbolt import LogStreamlet

        return LogStreamlet(self)

    def consume(self, consume_function: Any) -> Streamlet:
        """Call ``consume_function(element)`` for every element (the sink is returned,
        as for `log`)."""
        from heronpy_lite.streamlet.impl.consumebolt import ConsumeStreamlet

        return ConsumeStreamlet(consume_function, self)

    def join(
        self, join_streamlet: Streamlet, window_config: WindowConfig, join_function: Any
    ) -> Streamlet:
        """Inner join of (key, value) elements over windows of both streamlets:
        ``(KeyedWindow(key, window), join_function(this_value, other_value))`` for every
        pair with the same key in the same window."""
        return self._join("inner", join_streamlet, window_config, join_function)

    def outer_right_join(
        self, join_streamlet: Streamlet, window_config: WindowConfig, join_function: Any
    ) -> Streamlet:
        """As `join`, and ``join_function(None, other_value)`` for keys only the other has."""
        return self._join("outer_right", join_streamlet, window_config, join_function)

    def outer_left_join(
        self, join_streamlet: Streamlet, window_config: WindowConfig, join_function: Any
    ) -> Streamlet:
        """As `join`, and ``join_function(this_value, None)`` for keys only this one has."""
        return self._join("outer_left", join_streamlet, window_config, join_function)

    def outer_join(
        self, join_streamlet: Streamlet, window_config: WindowConfig, join_function: Any
    ) -> Streamlet:
        """As `join`, plus both outer sides."""
        return self._join("outer", join_streamlet, window_config, join_function)

    def _join(
        self, how: str, other: Streamlet, window_config: WindowConfig, join_function: Any
    ) -> Streamlet:
        from heronpy_lite.streamlet.impl.joinbolt import JoinStreamlet

        return JoinStreamlet(how, window_config, join_function, self, other)

    def reduce_by_key_and_window(
        self, window_config: WindowConfig, reduce_function: Any
    ) -> Streamlet:
        """Of (key, value) elements: per key and window, the values folded with
        ``reduce_function(a, b)``, as ``(KeyedWindow(key, window), result)``."""
        from heronpy_lite.streamlet.impl.reducebykeyandwindowbolt import (
            ReduceByKeyAndWindowStreamlet,
        )

        return ReduceByKeyAndWindowStreamlet(window_config, reduce_function, self)

    # -- how the Builder turns it into a component --

    def _reads(self) -> list[tuple[Streamlet, str]]:
        """(parent, stream) for each input side, in order."""
        return [(parent, OUTPUT) for parent in self._parents]

    def _grouping(self, parent: Streamlet) -> Any:
        """How this streamlet subscribes to ``parent``'s output stream."""
        return Grouping.SHUFFLE

    def _component(self) -> type:
        raise NotImplementedError(f"{type(self).__name__} has no component")

    def _function(self) -> Any:
        return None

    def _options(self) -> dict[str, Any]:
        return {}

    def _config(self, plan: Plan) -> dict[str, Any]:
        """The component config (the plan, and what the operator adds)."""
        return {PLAN: plan}


def _check_callable(fn: Any, what: str) -> None:
    if not callable(fn):
        raise RuntimeError(f"{what} function has to be callable")
