"""``Streamlet.union``: the elements of two streamlets."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.impl.streamletboltbase import StreamletBolt
from heronpy_lite.streamlet.streamlet import Streamlet


class UnionBolt(StreamletBolt):
    """Forwards every element; one united with itself comes out twice."""

    def setup(self, config: dict[str, Any], context: Any) -> None:
        send, ack, element_of = self.send, self.ack, self.element_of
        if self.plan.plain_input:

            def process(tup: Any) -> None:
                send(tup.values[0], tup)
                ack(tup)
        else:
            copies = {src: len(i.sides) for src, i in self.plan.inputs.items()}

            def process(tup: Any) -> None:
                element = element_of(tup)
                for _ in range(copies[(tup.component, tup.stream)]):
                    send(element, tup)
                ack(tup)

        self.process = process  # type: ignore[method-assign]


class UnionStreamlet(Streamlet):
    _prefix = "union"

    def __init__(self, left: Streamlet, right: Streamlet) -> None:
        if not isinstance(left, Streamlet):
            raise RuntimeError("Left of Union Streamlet has to be a Streamlet")
        if not isinstance(right, Streamlet):
            raise RuntimeError("Right of Union Streamlet has to be a Streamlet")
        super().__init__(left, right)

    def _component(self) -> type:
        return UnionBolt
