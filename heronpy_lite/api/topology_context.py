"""What a task knows about its place in the topology (``heronpy.api.topology_context``)."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from typing import Any

from heronpy_lite.api.metrics import IMetric
from heronpy_lite.api.task_hook import ITaskHook

#: A stream of a component, as `get_sources` keys it (heronpy's protobuf StreamId).
StreamId = namedtuple("StreamId", "id component_name")


class TopologyContext:
    """Handed to ``initialize``; built by the instance runtime.

    Args:
        topology_name: the running topology's name.
        task_id: this task.
        component_id: this task's component.
        config: the merged config ``initialize`` also receives.
        sources: component -> {StreamId: grouping} of its inputs.
        component_tasks: component -> its task ids, ascending.
        metric_registrar: called as ``(name, metric, time_bucket_in_sec)``.
        topology_pex_path: the file the topology was submitted as (its copy in
            the topology's working directory): a .py, .zip or .pex.
    """

    def __init__(
        self,
        topology_name: str,
        task_id: int,
        component_id: str,
        config: dict[str, Any],
        sources: dict[str, dict[Any, Any]],
        component_tasks: dict[str, list[int]],
        metric_registrar: Callable[[str, IMetric, float], None],
        topology_pex_path: str = "",
    ) -> None:
        self._topology_name = topology_name
        self._task_id = task_id
        self._component_id = component_id
        self._config = config
        self._sources = sources
        self._component_tasks = component_tasks
        self._metric_registrar = metric_registrar
        self._topology_pex_path = topology_pex_path
        self._registered: set[str] = set()
        #: the registered ITaskHook objects, in order (the instance calls them)
        self.task_hooks: list[Any] = []

    def get_task_id(self) -> int:
        return self._task_id

    def get_component_id(self) -> str:
        return self._component_id

    def get_cluster_config(self) -> dict[str, Any]:
        """The config this task runs with (topology config, then component config)."""
        return self._config

    def get_topology_name(self) -> str:
        return self._topology_name

    def get_sources(self, component_id: str) -> dict[Any, Any] | None:
        """{StreamId: grouping} that ``component_id`` subscribes to; None if unknown."""
        sources = self._sources.get(component_id)
        return dict(sources) if sources is not None else None

    def get_this_sources(self) -> dict[Any, Any] | None:
        return self.get_sources(self.get_component_id())

    def get_component_tasks(self, component_id: str) -> list[int]:
        return list(self._component_tasks.get(component_id, []))

    def register_metric(self, name: str, metric: IMetric, time_bucket_in_sec: float) -> None:
        """Sample ``metric`` every ``time_bucket_in_sec`` seconds and export it."""
        if not isinstance(metric, IMetric):
            raise TypeError(f"register_metric takes an IMetric, got {metric!r}")
        if (
            not isinstance(time_bucket_in_sec, (int, float))
            or isinstance(time_bucket_in_sec, bool)
            or time_bucket_in_sec <= 0
        ):
            raise ValueError(
                f"time_bucket_in_sec must be a positive number, got {time_bucket_in_sec!r}"
            )
        if name in self._registered:
            raise RuntimeError(f"Another metric has already been registered with name: {name}")
        self._registered.add(name)
        self._metric_registrar(name, metric, time_bucket_in_sec)

    def add_task_hook(self, task_hook: Any) -> None:
        """Register an `ITaskHook` for this task (see `heronpy_lite.api.task_hook`)."""
        if not isinstance(task_hook, ITaskHook):
            raise TypeError(
                "In add_task_hook(): attempt to add non ITaskHook instance, given: "
                f"{type(task_hook)!s}"
            )
        self.task_hooks.append(task_hook)

    def get_topology_pex_path(self) -> str:
        """The path of the file the topology was submitted as (.py, .zip or .pex), as
        this task runs it: its copy in the topology's working directory."""
        return self._topology_pex_path

    def get_metrics_collector(self) -> TopologyContext:
        """What ``register_metric`` goes through (heronpy's runtime has a separate
        collector object; here it is the context itself)."""
        return self
