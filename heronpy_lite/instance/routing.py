"""Groupings evaluated at emit time, in the sending instance.

Theory of operation
-------------------
For every stream this task declares, `OutputRouter` holds one `Route` per
subscribed consumer. ``Route.choose(values, direct_task)`` returns the
consumer's destination task ids for one tuple:

- shuffle, none: round robin over the consumer's tasks, from a random start
  (even spread, no per-tuple random number);
- fields: a hash of the grouped values that is stable across processes
  (``stable_hash``; Python's own ``hash(str)`` is salted per process);
- all: every task; lowest (= global): the lowest task id;
- direct: exactly ``direct_task``, which must belong to the consumer;
- custom: the user's ``ICustomGrouping.choose_tasks``, checked.

No I/O and no clock: routes are plain objects, tested without a loop.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from typing import Any

import msgpack

from heronpy_lite.api.stream import Grouping, grouping_name
from heronpy_lite.api.topology import TopologyDefinition
from heronpy_lite.errors import EmitError

#: fields grouping: at most this many str keys remembered per route (then hashed each time)
MEMO_KEYS = 65536


def stable_hash(value: Any) -> int:
    """A hash of a msgpack-able value that every process agrees on."""
    kind = type(value)
    if kind is str:
        return zlib.crc32(value.encode())
    if kind is int:
        return value & 0xFFFFFFFFFFFF  # type: ignore[no-any-return]
    if kind is bytes:
        return zlib.crc32(value)
    return zlib.crc32(msgpack.packb(value, use_bin_type=True))


class Route:
    """Destinations of one consumer of one stream."""

    __slots__ = ("choose", "component", "grouping", "is_direct", "key_indexes", "kind", "tasks")

    def __init__(
        self,
        component: str,
        grouping: Any,
        tasks: list[int],
        fields: list[str],
        custom_context: Any = None,
        source: tuple[str, str] = ("", ""),
    ) -> None:
        self.component = component
        self.grouping = grouping
        self.tasks = sorted(tasks)
        self.is_direct = grouping == Grouping.DIRECT
        #: the grouped fields' indexes (fields grouping), else empty
        self.key_indexes: list[int] = []
        if isinstance(grouping, Grouping.FIELDS):
            self.key_indexes = [fields.index(f) for f in grouping.fields]
        #: how the task's emitter evaluates this route itself (see tuplepath), or None
        #: when only ``choose`` can (DIRECT, custom)
        self.kind: str | None = None
        if len(self.tasks) == 1 or grouping == Grouping.LOWEST:
            self.kind = None if self.is_direct or isinstance(grouping, Grouping.CUSTOM) else "one"
        elif grouping in (Grouping.SHUFFLE, Grouping.NONE):
            self.kind = "shuffle"
        elif isinstance(grouping, Grouping.FIELDS):
            self.kind = "fields"
        elif grouping == Grouping.ALL:
            self.kind = "all"
        self.choose: Callable[[list[Any], int | None], list[int]] = self._build(
            grouping, fields, custom_context, source
        )

    def _build(
        self, grouping: Any, fields: list[str], custom_context: Any, source: tuple[str, str]
    ) -> Callable[[list[Any], int | None], list[int]]:
        tasks = self.tasks
        n = len(tasks)
        if grouping in (Grouping.SHUFFLE, Grouping.NONE):
            singles = [[t] for t in tasks]
            state = [random.randrange(n)]

            def shuffle(values: list[Any], direct_task: int | None) -> list[int]:
                i = state[0]
                state[0] = i + 1 if i + 1 < n else 0
                return singles[i]

            return shuffle
        if isinstance(grouping, Grouping.FIELDS):
            singles = [[t] for t in tasks]
            idx = [fields.index(f) for f in grouping.fields]
            if len(idx) == 1:
                (i0,) = idx
                # Memo of str keys only: 1, 1.0 and True share a dict slot but not a
                # stable_hash, and every sender must send one key to one task.
                memo: dict[str, list[int]] = {}

                def by_field(values: list[Any], direct_task: int | None) -> list[int]:
                    key = values[i0]
                    if type(key) is str:
                        hit = memo.get(key)
                        if hit is None:
                            hit = singles[stable_hash(key) % n]
                            if len(memo) < MEMO_KEYS:
                                memo[key] = hit
                        return hit
                    return singles[stable_hash(key) % n]

                return by_field

            def by_fields(values: list[Any], direct_task: int | None) -> list[int]:
                h = 0
                for i in idx:
                    h = (h * 31 + stable_hash(values[i])) & 0xFFFFFFFFFFFF
                return singles[h % n]

            return by_fields
        if grouping == Grouping.ALL:

            def all_tasks(values: list[Any], direct_task: int | None) -> list[int]:
                return tasks

            return all_tasks
        if grouping == Grouping.LOWEST:
            lowest = [tasks[0]]

            def lowest_task(values: list[Any], direct_task: int | None) -> list[int]:
                return lowest

            return lowest_task
        if grouping == Grouping.DIRECT:
            valid = set(tasks)
            component = self.component

            def direct(values: list[Any], direct_task: int | None) -> list[int]:
                if direct_task is None:
                    raise EmitError(
                        f"{component!r} consumes this stream with Grouping.DIRECT: "
                        f"emit needs direct_task=<one of {tasks}>"
                    )
                if direct_task not in valid:
                    raise EmitError(
                        f"direct_task {direct_task!r} is not a task of "
                        f"{component!r} (its tasks: {tasks})"
                    )
                return [direct_task]

            return direct
        if isinstance(grouping, Grouping.CUSTOM):
            grouper = grouping.python_serialized
            grouper.prepare(custom_context, source[0], source[1], list(tasks))
            valid = set(tasks)
            component = self.component

            def custom(values: list[Any], direct_task: int | None) -> list[int]:
                chosen = grouper.choose_tasks(values)
                if not isinstance(chosen, list) or any(t not in valid for t in chosen):
                    raise EmitError(
                        f"{type(grouper).__name__}.choose_tasks returned {chosen!r}; "
                        f"expected a list of tasks of {component!r} ({tasks})"
                    )
                return chosen

            return custom
        raise EmitError(f"unsupported grouping {grouping_name(grouping)}")


class OutputRouter:
    """All routes of one task, by stream, with the declared arity of each stream."""

    def __init__(
        self,
        topology: TopologyDefinition,
        component: str,
        component_tasks: dict[str, list[int]],
        custom_context: Any = None,
    ) -> None:
        me = topology.components[component]
        self.arity: dict[str, int] = {s: len(f) for s, f in me.outputs.items()}
        self.routes: dict[str, list[Route]] = {}
        for stream, fields in me.outputs.items():
            self.routes[stream] = [
                Route(
                    consumer.name,
                    grouping,
                    component_tasks[consumer.name],
                    fields,
                    custom_context,
                    (component, stream),
                )
                for consumer, grouping in topology.consumers(component, stream)
            ]
        self.has_direct = {s: any(r.is_direct for r in rs) for s, rs in self.routes.items()}

    def destinations(
        self, stream: str, values: list[Any], direct_task: int | None = None
    ) -> list[int]:
        """Every destination task of one tuple (arity checked)."""
        routes = self.routes.get(stream)
        if routes is None:
            raise EmitError(f"stream {stream!r} is not declared in outputs")
        if len(values) != self.arity[stream]:
            raise EmitError(
                f"stream {stream!r} declares {self.arity[stream]} fields, "
                f"emit has {len(values)} values"
            )
        result: list[int] = []
        for route in routes:
            result.extend(route.choose(values, direct_task))
        if direct_task is not None and not self.has_direct[stream]:
            raise EmitError(
                f"direct_task given, but no consumer of stream {stream!r} uses Grouping.DIRECT"
            )
        return result
