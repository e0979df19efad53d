"""``Streamlet.repartition`` and ``Streamlet.clone``: the same elements, other tasks."""

from __future__ import annotations

import inspect
from typing import Any

from heronpy_lite.api.custom_grouping import ICustomGrouping
from heronpy_lite.api.stream import Grouping
from heronpy_lite.streamlet.impl.streamletboltbase import OUTPUT, StreamletBolt, reader
from heronpy_lite.streamlet.streamlet import Streamlet, _check_callable


class RepartitionCustomGrouping(ICustomGrouping):
    """``repartition_function(element, num_partitions)`` -> partition(s), evaluated
    in the sending task (the function is rebuilt there with the topology file)."""

    def __init__(self, repartition_function: Any, read: Any = None) -> None:
        self._repartition_function = repartition_function
        self._read = read
        self.target_tasks: list[int] = []

    def prepare(self, context: Any, component: str, stream: str, target_tasks: list[int]) -> None:
        self.target_tasks = sorted(target_tasks)

    def choose_tasks(self, values: list[Any]) -> list[int]:
        element = values[0] if self._read is None else self._read(values)
        tasks = self.target_tasks
        n = len(tasks)
        targets = self._repartition_function(element, n)
        if isinstance(targets, int) and not isinstance(targets, bool):
            return [tasks[targets % n]]
        try:
            return [tasks[int(t) % n] for t in targets]
        except (TypeError, ValueError):
            raise TypeError(
                f"repartition function returned {targets!r}: a partition index or a list of them"
            ) from None


class RepartitionBolt(StreamletBolt):
    """Forwards every element; where it lands was chosen upstream."""

    def setup(self, config: dict[str, Any], context: Any) -> None:
        send, ack, element_of = self.send, self.ack, self.element_of
        if self.plan.plain_input:

            def process(tup: Any) -> None:
                send(tup.values[0], tup)
                ack(tup)
        else:

            def process(tup: Any) -> None:
                send(element_of(tup), tup)
                ack(tup)

        self.process = process  # type: ignore[method-assign]


class RepartitionStreamlet(Streamlet):
    _prefix = "repartition"

    def __init__(self, num_partitions: int, repartition_function: Any, parent: Streamlet) -> None:
        if (
            isinstance(num_partitions, bool)
            or not isinstance(num_partitions, int)
            or num_partitions < 1
        ):
            raise RuntimeError(f"num_partitions has to be an int >= 1, got {num_partitions!r}")
        if repartition_function is not None:
            _check_callable(repartition_function, "Repartition")
            try:
                inspect.signature(repartition_function).bind(None, 1)
            except TypeError:
                raise RuntimeError("Repartition function should take 2 arguments") from None
            except ValueError:
                pass  # a builtin without a signature: trust it
        super().__init__(parent)
        self._repartition_function = repartition_function
        self.set_num_partitions(num_partitions)

    def _grouping(self, parent: Streamlet) -> Any:
        if self._repartition_function is None:
            return Grouping.SHUFFLE
        return Grouping.custom(
            RepartitionCustomGrouping(self._repartition_function, reader(OUTPUT, parent._kind))
        )

    def _component(self) -> type:
        return RepartitionBolt


class CloneStreamlet(Streamlet):
    """One of ``clone(n)``'s streamlets: every element of the parent, its partitions."""

    _prefix = "clone"

    def _component(self) -> type:
        return RepartitionBolt
