"""``Streamlet.flat_map``: each element to zero or more elements."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from heronpy_lite.streamlet.impl.streamletboltbase import StreamletBolt
from heronpy_lite.streamlet.streamlet import Streamlet, _check_callable


class FlatMapBolt(StreamletBolt):
    """Emits every item of ``function(element)`` (one element if it is not iterable)."""

    def setup(self, config: dict[str, Any], context: Any) -> None:
        fn, send, ack = self.plan.function, self.send, self.ack
        element_of = self.element_of
        plain = self.plan.plain_input

        def process(tup: Any) -> None:
            result = fn(tup.values[0] if plain else element_of(tup))
            if type(result) is list or type(result) is tuple or isinstance(result, Iterable):
                for value in result:
                    send(value, tup)
            else:
                send(result, tup)
            ack(tup)

        self.process = process  # type: ignore[method-assign]


class FlatMapStreamlet(Streamlet):
    _prefix = "flatmap"

    def __init__(self, flatmap_function: Any, parent: Streamlet) -> None:
        _check_callable(flatmap_function, "FlatMap")
        super().__init__(parent)
        self._flatmap_function = flatmap_function

    def _component(self) -> type:
        return FlatMapBolt

    def _function(self) -> Any:
        return self._flatmap_function
