"""``Streamlet.filter``: the elements the predicate accepts."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.impl.streamletboltbase import StreamletBolt
from heronpy_lite.streamlet.streamlet import Streamlet, _check_callable


class FilterBolt(StreamletBolt):
    """Emits each element for which ``function(element)`` is true."""

    def setup(self, config: dict[str, Any], context: Any) -> None:
        fn, send, ack = self.plan.function, self.send, self.ack
        element_of = self.element_of
        plain = self.plan.plain_input

        def process(tup: Any) -> None:
            element = tup.values[0] if plain else element_of(tup)
            if fn(element):
                send(element, tup)
            ack(tup)

        self.process = process  # type: ignore[method-assign]


class FilterStreamlet(Streamlet):
    _prefix = "filter"

    def __init__(self, filter_function: Any, parent: Streamlet) -> None:
        _check_callable(filter_function, "Filter")
        super().__init__(parent)
        self._filter_function = filter_function

    def _component(self) -> type:
        return FilterBolt

    def _function(self) -> Any:
        return self._filter_function
