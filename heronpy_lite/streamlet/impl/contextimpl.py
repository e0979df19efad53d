"""The `Context` handed to transform operators and generators."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.context import Context
from heronpy_lite.streamlet.impl.streamletboltbase import OUTPUT


class ContextImpl(Context):
    """Backed by the task's TopologyContext; ``emit`` goes to the operator's output."""

    def __init__(self, top_context: Any, state: Any, emitter: Any) -> None:
        self._top_context = top_context
        self._state = state
        self._emitter = emitter

    def get_task_id(self) -> int:
        return int(self._top_context.get_task_id())

    def get_config(self) -> dict[str, Any]:
        return dict(self._top_context.get_cluster_config())

    def get_stream_name(self) -> str:
        sources = self._top_context.get_this_sources() or {}
        return str(next(iter(sources)).id) if sources else OUTPUT

    def get_num_partitions(self) -> int:
        return len(self._top_context.get_component_tasks(self._top_context.get_component_id()))

    def get_partition_index(self) -> int:
        tasks = sorted(self._top_context.get_component_tasks(self._top_context.get_component_id()))
        return tasks.index(self.get_task_id())

    def get_state(self) -> Any:
        return self._state

    def emit(self, values: Any) -> None:
        self._emitter.emit_element(values)
