"""Round-robin packing: tasks into containers 1..N.

Task ids are 1, 2, ... in component declaration order, then component index;
the k-th task overall goes to container ``k mod N + 1``. So with N > 1 the
tasks of one component spread over containers, as in Heron's round robin.
"""

from __future__ import annotations

from collections.abc import Iterable

from heronpy_lite.errors import TopologyError
from heronpy_lite.wire.plan import PackingPlan, TaskPlacement


def pack_round_robin(
    topology: str, components: Iterable[tuple[str, int]], num_containers: int
) -> PackingPlan:
    """``components`` is (name, parallelism) in declaration order."""
    if num_containers < 1:
        raise TopologyError(f"topology.stmgrs must be >= 1, got {num_containers}")
    tasks: list[TaskPlacement] = []
    for name, par in components:
        for index in range(par):
            k = len(tasks)
            tasks.append(
                TaskPlacement(
                    task_id=k + 1,
                    component=name,
                    component_index=index,
                    container=k % num_containers + 1,
                )
            )
    return PackingPlan(topology=topology, tasks=tuple(tasks), num_containers=num_containers)
