"""The topology master's state: registered stream managers, the physical
plan, and the topology's run state.

Theory of operation
-------------------
The topology state machine is ``RUNNING <-> PAUSED -> KILLED``: activate
and deactivate move between the first two; kill is final. The physical plan
exists once every container of the packing plan has a registered stream
manager; each later change (a stmgr re-registers from a new port, the state
flips) produces a new plan. Methods return whether the plan changed, so the
runner knows when to broadcast; no I/O and no clock here.
"""

from __future__ import annotations

import enum
from typing import Any

from heronpy_lite.wire.plan import PackingPlan, PhysicalPlan, StmgrLocation


class TopologyState(enum.Enum):
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    KILLED = "KILLED"


_TRANSITIONS = {
    (TopologyState.RUNNING, TopologyState.PAUSED),
    (TopologyState.PAUSED, TopologyState.RUNNING),
    (TopologyState.RUNNING, TopologyState.KILLED),
    (TopologyState.PAUSED, TopologyState.KILLED),
}


class InvalidTransition(Exception):
    pass


class TopologyMasterState:
    def __init__(self, packing: PackingPlan, state: TopologyState) -> None:
        self.packing = packing
        self.state = state
        self.stmgrs: dict[int, StmgrLocation] = {}
        self.instances: dict[int, dict[str, Any]] = {}

    def transition(self, target: TopologyState) -> bool:
        """Move to ``target``; False if already there. InvalidTransition if not allowed."""
        if target == self.state:
            return False
        if (self.state, target) not in _TRANSITIONS:
            raise InvalidTransition(f"cannot go from {self.state.value} to {target.value}")
        self.state = target
        return True

    def register_stmgr(self, container: int, host: str, port: int, pid: int) -> bool:
        """Record a stmgr; True if its entry in the plan (address or pid) changed."""
        if not 1 <= container <= self.packing.num_containers:
            raise ValueError(f"container {container} is not in the packing plan")
        location = StmgrLocation(container, host, port, pid)
        changed = self.stmgrs.get(container) != location
        self.stmgrs[container] = location
        return changed

    def instance_status(
        self, task_id: int, state: str, pid: int, restarts: int, error: str
    ) -> None:
        entry = self.instances.setdefault(task_id, {"error": ""})
        entry.update(state=state, pid=pid, restarts=restarts)
        if error:
            entry["error"] = error

    @property
    def complete(self) -> bool:
        return len(self.stmgrs) == self.packing.num_containers

    def plan(self) -> PhysicalPlan | None:
        """The current physical plan; None until every stmgr has registered."""
        if not self.complete:
            return None
        return self.status_plan()

    def status_plan(self) -> PhysicalPlan:
        """The plan as far as it is known, for status (may lack stmgrs)."""
        state = "PAUSED" if self.state == TopologyState.PAUSED else "RUNNING"
        return PhysicalPlan(
            self.packing, dict(self.stmgrs), state, {k: dict(v) for k, v in self.instances.items()}
        )
