"""What every streamlet operator's bolt shares: its plan, how elements cross
the wire, and how it emits.

Theory of operation
-------------------
Each streamlet is one spout or bolt. `Builder` gives each component, in its
config under `PLAN`, a `Plan`: the user's function, which of its two output
streams have consumers, and for each input (source component, stream) how to
turn a received tuple back into an element.

The two output streams:

- ``output`` (``["_output_"]``): one value, the element, for every consumer
  that is not keyed (map, filter, union, ..., read it with shuffle or the
  repartition grouping);
- ``keyed`` (``["_key_", "_value_"]``): the element's (key, value) pair split
  in two, for the keyed consumers (reduce_by_key_and_window and joins),
  which subscribe with the engine's fields grouping on ``_key_``: every key
  reaches the same task from every upstream process (heronpy hashes keys with
  Python's per-process salted ``hash()``).

A component emits only on the streams that have consumers. Elements are
msgpack values; a tuple arrives as a list. The results of window operators
are ``(Window, value)`` and ``(KeyedWindow, value)`` pairs, which their
direct consumers rebuild from the lists they arrive as (`reader`); keys
that arrive as lists become tuples, so that they can be dict keys.

In ATLEAST_ONCE every emit is anchored to the input it comes from (a window
result to the window's tuples of its key), so a tuple tree completes only
when the last operator is done with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from heronpy_lite.api import api_constants
from heronpy_lite.api.bolt._windows import hashable
from heronpy_lite.api.bolt.bolt import Bolt
from heronpy_lite.api.state.state import HashMapState
from heronpy_lite.api.state.stateful_component import StatefulComponent
from heronpy_lite.api.stream import Stream
from heronpy_lite.streamlet.keyedwindow import KeyedWindow
from heronpy_lite.streamlet.window import Window

#: the component config key holding the `Plan`
PLAN = "__streamlet_plan__"
OUTPUT = "output"
KEYED = "keyed"
KEY_FIELD = "_key_"

#: what a streamlet's elements are, for the consumers that rebuild them
PLAIN = "plain"
WINDOWED = "windowed"  # (Window, value), from reduce_by_window
KEYED_WINDOWED = "keyed_windowed"  # (KeyedWindow, value), from keyed window operators


def is_reliable(config: dict[str, Any]) -> bool:
    return bool(
        config.get(api_constants.TOPOLOGY_RELIABILITY_MODE)
        == api_constants.TopologyReliabilityMode.ATLEAST_ONCE
    )


def _key_reader(kind: str) -> Callable[[Any], Any]:
    if kind == WINDOWED:
        return lambda k: Window(*k)
    if kind == KEYED_WINDOWED:
        return lambda k: KeyedWindow(hashable(k[0]), Window(*k[1]))
    return hashable


def keyed_plain(values: Any) -> tuple[Any, Any]:
    """The (key, value) element of a plain streamlet's keyed stream."""
    return (hashable(values[0]), values[1])


def reader(stream: str, kind: str) -> Callable[[Any], Any] | None:
    """``tuple.values -> element`` for an input on ``stream`` from a streamlet
    whose elements are ``kind``; None where the element is ``values[0]`` as is."""
    if stream == KEYED:
        if kind == PLAIN:
            return keyed_plain
        key = _key_reader(kind)
        return lambda values: (key(values[0]), values[1])
    if kind == WINDOWED:
        return lambda values: (Window(*values[0][0]), values[0][1])
    if kind == KEYED_WINDOWED:
        return lambda values: (
            KeyedWindow(hashable(values[0][0][0]), Window(*values[0][0][1])),
            values[0][1],
        )
    return None


@dataclass
class Input:
    """One subscription of an operator: which sides it feeds, how to read it."""

    #: the operator's inputs this subscription is (0: left/this, 1: right/other);
    #: two for a streamlet joined or united with itself
    sides: tuple[int, ...]
    read: Callable[[Any], Any] | None


@dataclass
class Plan:
    """Everything a streamlet component needs beyond its class (see module doc)."""

    name: str
    function: Any = None
    emits_output: bool = False
    emits_keyed: bool = False
    #: (source component, stream) -> Input
    inputs: dict[tuple[str, str], Input] = field(default_factory=dict)
    #: operator specifics (join type, ...)
    options: dict[str, Any] = field(default_factory=dict)

    def element_of(self) -> Callable[[Any], Any]:
        """``tuple -> element``, looking up the tuple's input when they differ."""
        readers = {src: i.read for src, i in self.inputs.items()}
        distinct = set(readers.values())
        if len(distinct) <= 1:
            only = next(iter(distinct), None)
            if only is None:
                return lambda tup: tup.values[0]
            return lambda tup: only(tup.values)

        def by_source(tup: Any) -> Any:
            read = readers[(tup.component, tup.stream)]
            return tup.values[0] if read is None else read(tup.values)

        return by_source

    @property
    def plain_input(self) -> bool:
        """Every input's element is ``values[0]`` as is, on one side."""
        return all(i.read is None and len(i.sides) == 1 for i in self.inputs.values())


def key_value(element: Any, where: str) -> tuple[Any, Any]:
    """The (key, value) pair keyed operators need, with a clear error otherwise."""
    try:
        key, value = element
    except (TypeError, ValueError):
        raise TypeError(
            f"{where}: reduce_by_key_and_window and joins need (key, value) pairs, got {element!r}"
        ) from None
    return key, value


def sender(emit: Callable[..., Any], plan: Plan, reliable: bool) -> Callable[[Any, Any], None]:
    """``send(element, anchors)``: emit one element on every stream that has
    consumers; ``anchors`` (a tuple or a list of them) is used at least once."""
    out, keyed, where = plan.emits_output, plan.emits_keyed, plan.name

    def anchor_list(anchors: Any) -> Any:
        if type(anchors) is list or anchors is None:
            return anchors
        return [anchors]

    if out and not keyed:
        if reliable:

            def send(element: Any, anchors: Any) -> None:
                emit([element], OUTPUT, anchor_list(anchors))
        else:

            def send(element: Any, anchors: Any) -> None:
                emit([element], OUTPUT)

    elif keyed and not out:

        def send(element: Any, anchors: Any) -> None:
            try:
                key, value = element
            except (TypeError, ValueError):
                key_value(element, where)  # raises the clear error
                raise
            emit([key, value], KEYED, anchor_list(anchors) if reliable else None)

    elif out or keyed:

        def send(element: Any, anchors: Any) -> None:
            a = anchor_list(anchors) if reliable else None
            emit([element], OUTPUT, a)
            emit(list(key_value(element, where)), KEYED, a)

    else:

        def send(element: Any, anchors: Any) -> None:
            pass

    return send


class StreamletBoltBase:
    """The output streams every streamlet component declares."""

    outputs = [
        Stream(fields=["_output_"], name=OUTPUT),
        Stream(fields=[KEY_FIELD, "_value_"], name=KEYED),
    ]


class StreamletBolt(Bolt, StatefulComponent, StreamletBoltBase):
    """A streamlet operator: reads its `Plan`, then `setup` builds ``process``."""

    _state: Any = None

    def init_state(self, stateful_state: Any) -> None:
        self._state = stateful_state

    def pre_save(self, checkpoint_id: Any) -> None:
        pass

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        plan = config.get(PLAN)
        if not isinstance(plan, Plan):
            raise RuntimeError(f"{type(self).__name__} is built by the streamlet Builder only")
        self.plan = plan
        self.reliable = is_reliable(config)
        self.send = sender(self.emit, plan, self.reliable)
        self.element_of = plan.element_of()
        self.setup(config, context)

    def setup(self, config: dict[str, Any], context: Any) -> None:
        """Operator-specific start (the plan is read)."""

    def state(self) -> Any:
        """The state from ``init_state``, or a task-local one where there is none."""
        if self._state is None:
            self._state = HashMapState()
        return self._state
