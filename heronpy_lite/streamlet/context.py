"""What a transform operator or a generator knows at run time (``heronpy.streamlet.context``)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any


class Context:
    """Handed to ``TransformOperator.setup`` and ``Generator.setup``."""

    @abstractmethod
    def get_task_id(self) -> int:
        """The task id of this instance of the operator."""

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The config the operator's task runs with."""

    @abstractmethod
    def get_stream_name(self) -> str:
        """The stream the operator reads (its first input's)."""

    @abstractmethod
    def get_num_partitions(self) -> int:
        """How many partitions (tasks) the operator has."""

    @abstractmethod
    def get_partition_index(self) -> int:
        """Which of them this one is, from 0."""

    @abstractmethod
    def get_state(self) -> Any:
        """The operator's `State`: checkpointed where the topology is stateful."""

    @abstractmethod
    def emit(self, values: Any) -> None:
        """Emit one element on the operator's output."""
