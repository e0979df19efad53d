"""Where a DATA frame goes from this stream manager: a local instance or a peer.

Built from the packing plan, which is fixed for the topology's life, so a
restarted stream manager can route before the tmaster answers.
"""

from __future__ import annotations

from heronpy_lite.wire.plan import PackingPlan


class RoutingTable:
    def __init__(self, packing: PackingPlan, container: int) -> None:
        self.container = container
        self.task_container = {t.task_id: t.container for t in packing.tasks}
        self.local_tasks = frozenset(t.task_id for t in packing.tasks if t.container == container)
        self.task_component = {t.task_id: t.component for t in packing.tasks}
        #: the other data containers (their stream managers are peers)
        self.peers = sorted(set(range(1, packing.num_containers + 1)) - {container})
