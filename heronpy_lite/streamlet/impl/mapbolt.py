"""``Streamlet.map``: one bolt applying the function to each element."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.impl.streamletboltbase import StreamletBolt
from heronpy_lite.streamlet.streamlet import Streamlet, _check_callable


class MapBolt(StreamletBolt):
    """Emits ``function(element)`` for each element."""

    def setup(self, config: dict[str, Any], context: Any) -> None:
        fn, send, ack, element_of = self.plan.function, self.send, self.ack, self.element_of
        if self.plan.plain_input:

            def process(tup: Any) -> None:
                send(fn(tup.values[0]), tup)
                ack(tup)
        else:

            def process(tup: Any) -> None:
                send(fn(element_of(tup)), tup)
                ack(tup)

        self.process = process  # type: ignore[method-assign]


class MapStreamlet(Streamlet):
    _prefix = "map"

    def __init__(self, map_function: Any, parent: Streamlet) -> None:
        _check_callable(map_function, "Map")
        super().__init__(parent)
        self._map_function = map_function

    def _component(self) -> type:
        return MapBolt

    def _function(self) -> Any:
        return self._map_function
