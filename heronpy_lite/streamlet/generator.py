"""Sources of elements for ``Builder.new_source`` (``heronpy.streamlet.generator``)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any


class Generator:
    """A source: ``setup`` once per task, then ``get`` for each element.

    The object is built by the topology file in every instance process, so
    it is never pickled; ``setup`` receives the task's `Context` (use
    ``get_partition_index`` and ``get_num_partitions`` to split work).
    """

    @abstractmethod
    def setup(self, context: Any) -> None:
        """Called once in the task before the first ``get``."""
        raise NotImplementedError("Generator not implementing setup() method.")

    @abstractmethod
    def get(self) -> Any:
        """The next element, or None if there is none right now."""
        raise NotImplementedError("Generator not implementing get() method.")
