"""Operators for ``Streamlet.transform`` (``heronpy.streamlet.transformoperator``)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any


class TransformOperator:
    """``setup`` once per task, then ``transform`` for each input tuple; emit
    results with ``context.emit(element)`` on the context ``setup`` got."""

    @abstractmethod
    def setup(self, context: Any) -> None:
        """Called once in the task before the first ``transform``."""
        raise NotImplementedError("TransformOperator not implementing setup() method.")

    @abstractmethod
    def transform(self, tup: Any) -> None:
        """Handle one input tuple; its element is ``tup.values[0]``."""
        raise NotImplementedError("TransformOperator not implementing transform() method.")
