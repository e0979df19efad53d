"""Groupings evaluated at emit time, in the sending instance.

Theory of operation
-------------------
For every stream a task declares, `stream_specs` builds one `StreamSpec`:
its name, its arity, and one `RouteSpec` per subscribed consumer. The tuple
path's emitter (`tuplepath`) takes these specs and evaluates most routes
itself, per tuple, without calling back into Python:

- ``one``: every tuple to one task (a one-task consumer, or lowest = global);
- ``shuffle`` (shuffle, none): round robin over the tasks from a random
  start (an even spread, no random number per tuple);
- ``all``: a copy to every task;
- ``fields``: the key's *key group* is ``stable_hash(grouped values) %
  keygroups``, a hash every process agrees on (Python's own ``hash(str)`` is
  salted per process), and key group ``g`` belongs to the task at index
  ``g * len(tasks) // keygroups``: contiguous ranges of key groups, so that a
  rescale moves whole key groups, and their keyed state with them
  (keygroups.py; docs/decisions/0047-key-groups.md). The
  emitter hashes str, bytes and int keys itself; for any other key it calls
  the route's ``choose``, which is the definition;
- ``choose`` (direct, custom): the route's ``choose(values, direct_task)``
  decides for every tuple: direct checks ``direct_task`` against the
  consumer's tasks, custom calls the user's ``ICustomGrouping.choose_tasks``
  and checks its answer. An `EmitError` from ``choose`` fails the emit
  before anything of it is sent.

No I/O and no clock: specs are frozen data, tested without a loop.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from heronpy_lite.api.stream import Grouping, grouping_name
from heronpy_lite.api.topology import TopologyDefinition
from heronpy_lite.errors import EmitError
from heronpy_lite.keygroups import (
    DEFAULT_KEYGROUPS,
    TOPOLOGY_KEYGROUPS,
    group_owner,
    key_group,
    keygroups_for,
)

#: route kinds (what the emitter does per tuple; see the module docstring)
ONE: Final = "one"
SHUFFLE: Final = "shuffle"
ALL: Final = "all"
FIELDS: Final = "fields"
CHOOSE: Final = "choose"

#: fields grouping: at most this many str keys remembered per route (then hashed each time)
MEMO_KEYS = 65536
_MASK48 = (1 << 48) - 1

Choose = Callable[[Sequence[Any], "int | None"], list[int]]


def stable_hash(value: Any) -> int:
    """A hash of a msgpack-able value that every process agrees on.

    The one definition: the C emitter computes the same for str, bytes and
    int (``_cpath.stable_hash``, held to this one by the tests) and calls a
    route's ``choose`` for anything else.
    """
    kind = type(value)
    if kind is str:
        return zlib.crc32(value.encode())
    if kind is int:
        return value & _MASK48  # type: ignore[no-any-return]
    if kind is bytes:
        return zlib.crc32(value)
    return zlib.crc32(msgpack.packb(value, use_bin_type=True))


def keygroups_of(topology: TopologyDefinition, component: str) -> int:
    """``topology.keygroups`` of ``component`` (keygroups.py)."""
    return keygroups_for(topology.components[component].config, topology.config)


def fields_hash(values: Sequence[Any], key_indexes: Sequence[int]) -> int:
    """The hash of a tuple's grouped values, in the grouping's order."""
    if len(key_indexes) == 1:
        return stable_hash(values[key_indexes[0]])
    h = 0
    for i in key_indexes:
        h = (h * 31 + stable_hash(values[i])) & _MASK48
    return h


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """The destinations of one consumer of one stream."""

    consumer: str
    kind: str
    #: the consumer's tasks this route can send to, ascending
    tasks: tuple[int, ...]
    #: fields: the indexes of the grouped values, in the grouping's order
    key_indexes: tuple[int, ...] = ()
    #: ``choose(values, direct_task) -> tasks``: the definition of the route's
    #: choice; the emitter calls it for ``choose`` routes, and for ``fields`` keys
    #: it does not hash itself
    choose: Choose | None = None
    #: Grouping.DIRECT: ``choose`` takes the emit's ``direct_task``
    direct: bool = False
    #: fields: the consumer's key groups (at least as many as its tasks)
    keygroups: int = DEFAULT_KEYGROUPS


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One declared output stream of a task: what its emitter needs."""

    name: str
    arity: int
    routes: tuple[RouteSpec, ...]
    #: whether a consumer takes this stream with Grouping.DIRECT (else ``direct_task``
    #: on an emit is an error)
    direct: bool


def route_spec(
    consumer: str,
    grouping: Any,
    tasks: Sequence[int],
    fields: Sequence[str],
    custom_context: Any = None,
    source: tuple[str, str] = ("", ""),
    keygroups: int = DEFAULT_KEYGROUPS,
) -> RouteSpec:
    """The route to ``consumer`` (its ``tasks``) of a stream with ``fields``."""
    ordered = tuple(sorted(tasks))
    if grouping == Grouping.DIRECT:
        return RouteSpec(consumer, CHOOSE, ordered, choose=_direct(consumer, ordered), direct=True)
    if isinstance(grouping, Grouping.CUSTOM):
        choose = _custom(consumer, ordered, grouping.python_serialized, custom_context, source)
        return RouteSpec(consumer, CHOOSE, ordered, choose=choose)
    if grouping == Grouping.LOWEST or len(ordered) == 1:
        return RouteSpec(consumer, ONE, ordered[:1])
    if grouping in (Grouping.SHUFFLE, Grouping.NONE):
        return RouteSpec(consumer, SHUFFLE, ordered)
    if grouping == Grouping.ALL:
        return RouteSpec(consumer, ALL, ordered)
    if isinstance(grouping, Grouping.FIELDS):
        keys = tuple(list(fields).index(f) for f in grouping.fields)
        if keygroups < len(ordered):
            raise EmitError(
                f"{consumer!r} has {len(ordered)} tasks and {keygroups} key groups "
                f"({TOPOLOGY_KEYGROUPS} must be at least its parallelism)"
            )
        choose = _by_fields(ordered, keys, keygroups)
        return RouteSpec(consumer, FIELDS, ordered, keys, choose, keygroups=keygroups)
    raise EmitError(f"unsupported grouping {grouping_name(grouping)}")


def stream_specs(
    topology: TopologyDefinition,
    component: str,
    component_tasks: dict[str, list[int]],
    custom_context: Any = None,
) -> dict[str, StreamSpec]:
    """Every declared output stream of ``component``, with its routes."""
    me = topology.components[component]
    specs: dict[str, StreamSpec] = {}
    for stream, fields in me.outputs.items():
        routes = tuple(
            route_spec(
                consumer.name,
                grouping,
                component_tasks[consumer.name],
                fields,
                custom_context,
                (component, stream),
                keygroups_of(topology, consumer.name),
            )
            for consumer, grouping in topology.consumers(component, stream)
        )
        specs[stream] = StreamSpec(stream, len(fields), routes, any(r.direct for r in routes))
    return specs


def choose_tasks(route: RouteSpec, values: Sequence[Any], direct_task: int | None) -> list[int]:
    """The tasks ``route`` sends one tuple to: what the emitter computes, written
    plainly (the reference the tuple path's tests hold both emitters to)."""
    if route.kind == ONE or route.kind == ALL:
        return list(route.tasks)
    if route.kind == FIELDS:
        group = key_group(fields_hash(values, route.key_indexes), route.keygroups)
        return [route.tasks[group_owner(group, route.keygroups, len(route.tasks))]]
    if route.kind == CHOOSE:
        assert route.choose is not None
        return route.choose(values, direct_task)
    raise ValueError(f"a {route.kind} route has no fixed choice")


# -- the choose functions --


def _by_fields(tasks: tuple[int, ...], keys: tuple[int, ...], keygroups: int) -> Choose:
    n = len(tasks)
    # one list per key group: the owner's [task]
    singles = [[tasks[group_owner(g, keygroups, n)]] for g in range(keygroups)]
    if len(keys) > 1:

        def by_fields(values: Sequence[Any], direct_task: int | None) -> list[int]:
            return singles[fields_hash(values, keys) % keygroups]

        return by_fields
    (i0,) = keys
    # str keys only: 1, 1.0 and True share a dict slot but not a stable_hash, and
    # every sender must send one key to one task
    memo: dict[str, list[int]] = {}

    def by_field(values: Sequence[Any], direct_task: int | None) -> list[int]:
        key = values[i0]
        if type(key) is str:
            hit = memo.get(key)
            if hit is None:
                hit = singles[stable_hash(key) % keygroups]
                if len(memo) < MEMO_KEYS:
                    memo[key] = hit
            return hit
        return singles[stable_hash(key) % keygroups]

    return by_field


def _direct(consumer: str, tasks: tuple[int, ...]) -> Choose:
    valid = frozenset(tasks)
    listed = list(tasks)

    def direct(values: Sequence[Any], direct_task: int | None) -> list[int]:
        if direct_task is None:
            raise EmitError(
                f"{consumer!r} consumes this stream with Grouping.DIRECT: "
                f"emit needs direct_task=<one of {listed}>"
            )
        if direct_task not in valid:
            raise EmitError(
                f"direct_task {direct_task!r} is not a task of {consumer!r} (its tasks: {listed})"
            )
        return [direct_task]

    return direct


def _custom(
    consumer: str,
    tasks: tuple[int, ...],
    grouper: Any,
    context: Any,
    source: tuple[str, str],
) -> Choose:
    grouper.prepare(context, source[0], source[1], list(tasks))
    valid = frozenset(tasks)

    def custom(values: Sequence[Any], direct_task: int | None) -> list[int]:
        chosen = grouper.choose_tasks(values)
        if not isinstance(chosen, list) or any(t not in valid for t in chosen):
            raise EmitError(_bad_choice(grouper, chosen, valid, consumer))
        return chosen

    return custom


def _bad_choice(grouper: Any, chosen: Any, valid: frozenset[int], consumer: str) -> str:
    """heronpy's words for what is wrong with a custom grouping's choice."""
    what = "Returned object after custom grouping's choose_tasks()"
    where = f" ({type(grouper).__name__}, to {consumer!r}: {sorted(valid)})"
    if not isinstance(chosen, list):
        return f"{what} needs to be a list, given: {type(chosen)!s}{where}"
    for task in chosen:
        if not isinstance(task, int):
            return f"{what} contained non-integer: {task!s}{where}"
    bad = next(t for t in chosen if t not in valid)
    return f"{what} contained a task id that is not registered: {bad}{where}"
