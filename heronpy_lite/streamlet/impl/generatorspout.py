"""``Builder.new_source(generator)``: a source driven by a `Generator`."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.generator import Generator
from heronpy_lite.streamlet.impl.contextimpl import ContextImpl
from heronpy_lite.streamlet.impl.streamletspoutbase import StreamletSpout
from heronpy_lite.streamlet.streamlet import Streamlet


class GeneratorSpout(StreamletSpout):
    """``generator.setup(context)`` once, then emits each non-None ``generator.get()``."""

    def setup(self, config: dict[str, Any], context: Any) -> None:
        self._generator: Generator = self.plan.function
        self._generator.setup(ContextImpl(context, self.state(), self))

    def emit_element(self, element: Any) -> None:
        self.send(element)

    def next_element(self) -> Any:
        value = self._generator.get()
        return self.NOTHING if value is None else value


class GeneratorStreamlet(Streamlet):
    _prefix = "generator"

    def __init__(self, generator: Generator, builder: Any = None) -> None:
        if not isinstance(generator, Generator):
            raise RuntimeError("Generator has to be of type Generator")
        super().__init__()
        self._builder = builder
        self._generator = generator

    def _component(self) -> type:
        return GeneratorSpout

    def _function(self) -> Any:
        return self._generator
