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

Failure detection: registering and every heartbeat record the stmgr's last
sign of life (``now`` is passed in). `expired` names the stmgrs silent for
longer than a timeout; the runner then drops them (`remove_stmgr`), which
makes the plan incomplete until they register again, with their new
address if their container was restarted; that registration changes the
plan, and the runner broadcasts it.
"""

from __future__ import annotations

import enum
from typing import Any

from heronpy_lite.errors import InvalidTransition, RegistrationConflict
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


class TopologyMasterState:
    def __init__(self, packing: PackingPlan, state: TopologyState) -> None:
        self.packing = packing
        self.state = state
        self.stmgrs: dict[int, StmgrLocation] = {}
        self.stmgr_stats: dict[int, dict[str, Any]] = {}
        self.instances: dict[int, dict[str, Any]] = {}
        self.last_seen: dict[int, float] = {}
        #: EFFECTIVELY_ONCE: the plan's ``stateful`` (the epoch, what it started from)
        self.stateful: dict[str, Any] = {}

    def transition(self, target: TopologyState) -> bool:
        """Move to ``target``; False if already there. InvalidTransition if not allowed."""
        if target == self.state:
            return False
        if (self.state, target) not in _TRANSITIONS:
            raise InvalidTransition(f"cannot go from {self.state.value} to {target.value}")
        self.state = target
        return True

    def register_stmgr(
        self,
        container: int,
        host: str,
        port: int,
        pid: int,
        now: float = 0.0,
        *,
        connected: bool = False,
        live_within: float = 0.0,
    ) -> bool:
        """Record a stmgr; True if its entry in the plan (address or pid) changed.

        ``connected``: the container's registered stmgr still has its connection
        open. Then, if it also showed a sign of life within ``live_within`` seconds,
        a registration from anyone else (another address or pid) raises
        `RegistrationConflict`: a live stream manager is never replaced, so nobody
        can divert a container's tuples by registering in its name. A dead one
        stops heartbeating and is replaced once ``live_within`` has passed."""
        if not 1 <= container <= self.packing.num_containers:
            raise ValueError(f"container {container} is not in the packing plan")
        location = StmgrLocation(container, host, port, pid)
        current = self.stmgrs.get(container)
        if (
            connected
            and current is not None
            and current != location
            and now - self.last_seen.get(container, float("-inf")) <= live_within
        ):
            raise RegistrationConflict(
                f"container {container} has a live stream manager (pid {current.pid} at "
                f"{current.host}:{current.port})"
            )
        changed = self.stmgrs.get(container) != location
        self.stmgrs[container] = location
        self.last_seen[container] = now
        return changed

    def heartbeat(self, container: int, now: float) -> None:
        """A registered stmgr is alive; heartbeats of unknown stmgrs are ignored."""
        if container in self.stmgrs:
            self.last_seen[container] = now

    def expired(self, now: float, timeout: float) -> list[int]:
        """Registered containers whose stmgr has been silent for more than ``timeout``."""
        return sorted(c for c, seen in self.last_seen.items() if now - seen > timeout)

    def remove_stmgr(self, container: int) -> bool:
        """Forget a stmgr (it stopped heartbeating); True if it was registered."""
        self.last_seen.pop(container, None)
        self.stmgr_stats.pop(container, None)
        return self.stmgrs.pop(container, None) is not None

    def instance_status(
        self, task_id: int, state: str, pid: int, restarts: int, error: str
    ) -> None:
        entry = self.instances.setdefault(task_id, {"error": ""})
        entry.update(state=state, pid=pid, restarts=restarts)
        if error:
            entry["error"] = error

    @property
    def all_running(self) -> bool:
        """Every task of the packing plan reports ``running`` (its component built)."""
        return all(
            self.instances.get(t.task_id, {}).get("state") == "running" for t in self.packing.tasks
        )

    @property
    def complete(self) -> bool:
        return len(self.stmgrs) == self.packing.num_containers

    def plan(self) -> PhysicalPlan | None:
        """The physical plan for stmgrs and instances (no statistics: they do not read
        them); None until every stmgr has registered."""
        if not self.complete:
            return None
        return self.status_plan(with_stats=False)

    def status_plan(self, with_stats: bool = True) -> PhysicalPlan:
        """The plan as far as it is known, for status (may lack stmgrs)."""
        state = "PAUSED" if self.state == TopologyState.PAUSED else "RUNNING"
        return PhysicalPlan(
            self.packing,
            dict(self.stmgrs),
            state,
            {k: dict(v) for k, v in self.instances.items()},
            dict(self.stmgr_stats) if with_stats else {},
            dict(self.stateful),
        )

    def update_stats(self, container: int, stats: dict[str, Any]) -> bool:
        """Record a registered stmgr's heartbeat statistics; True if they changed."""
        if container not in self.stmgrs or self.stmgr_stats.get(container) == stats:
            return False
        self.stmgr_stats[container] = stats
        return True
