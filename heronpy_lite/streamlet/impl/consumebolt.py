"""``Streamlet.consume``: a function called with every element."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.impl.streamletboltbase import StreamletBolt
from heronpy_lite.streamlet.streamlet import Streamlet, _check_callable


class ConsumeBolt(StreamletBolt):
    """Calls ``function(element)`` (heronpy never handed the function over)."""

    def process(self, tup: Any) -> None:
        self.plan.function(self.element_of(tup))
        self.ack(tup)


class ConsumeStreamlet(Streamlet):
    _prefix = "consume"

    def __init__(self, consume_function: Any, parent: Streamlet) -> None:
        _check_callable(consume_function, "Consume")
        super().__init__(parent)
        self._consume_function = consume_function

    def _component(self) -> type:
        return ConsumeBolt

    def _function(self) -> Any:
        return self._consume_function
