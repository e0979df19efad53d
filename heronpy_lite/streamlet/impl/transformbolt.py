"""``Streamlet.transform``: a `TransformOperator` per task."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.impl.contextimpl import ContextImpl
from heronpy_lite.streamlet.impl.streamletboltbase import StreamletBolt
from heronpy_lite.streamlet.streamlet import Streamlet
from heronpy_lite.streamlet.transformoperator import TransformOperator


class TransformBolt(StreamletBolt):
    """Calls ``operator.transform(tuple)``; what it emits through its context is
    anchored to that tuple."""

    _current: Any = None

    def setup(self, config: dict[str, Any], context: Any) -> None:
        self._transform_operator: TransformOperator = self.plan.function
        self._transform_operator.setup(ContextImpl(context, self.state(), self))

    def emit_element(self, element: Any) -> None:
        self.send(element, self._current)

    def process(self, tup: Any) -> None:
        given = tup if self.plan.plain_input else tup._replace(values=[self.element_of(tup)])
        self._current = tup
        try:
            self._transform_operator.transform(given)
        finally:
            self._current = None
        self.ack(tup)


class TransformStreamlet(Streamlet):
    _prefix = "transform"

    def __init__(self, transform_operator: TransformOperator, parent: Streamlet) -> None:
        if not isinstance(transform_operator, TransformOperator):
            raise RuntimeError("Transform Operator has to be a TransformOperator")
        super().__init__(parent)
        self._transform_operator = transform_operator

    def _component(self) -> type:
        return TransformBolt

    def _function(self) -> Any:
        return self._transform_operator
