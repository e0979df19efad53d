"""``Builder.new_source(function)``: a source calling the function for each element."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.impl.streamletspoutbase import StreamletSpout
from heronpy_lite.streamlet.streamlet import Streamlet


class SupplierSpout(StreamletSpout):
    """Emits ``function()`` each time the engine asks for a tuple."""

    def next_element(self) -> Any:
        return self.plan.function()


class SupplierStreamlet(Streamlet):
    _prefix = "supplier"

    def __init__(self, supplier_function: Any, builder: Any = None) -> None:
        if not callable(supplier_function):
            raise RuntimeError("Supplier function has to be callable")
        super().__init__()
        self._builder = builder
        self._supplier_function = supplier_function

    def _component(self) -> type:
        return SupplierSpout

    def _function(self) -> Any:
        return self._supplier_function
