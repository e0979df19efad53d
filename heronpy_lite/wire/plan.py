"""Packing plan and physical plan: the data every role agrees on.

The *packing plan* (written by the scheduler at submit) says which task runs
in which container. The *physical plan* (assembled by the tmaster once every
stream manager has registered) adds where each stream manager listens and
whether the topology is running or paused. Both travel as plain dicts
(msgpack on the wire, JSON in the local state manager).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heronpy_lite.errors import RemoteProtocolError

RUNNING = "RUNNING"
PAUSED = "PAUSED"


@dataclass(frozen=True, slots=True)
class TaskPlacement:
    task_id: int
    component: str
    component_index: int
    container: int


@dataclass(frozen=True, slots=True)
class PackingPlan:
    """Tasks by container. Container 0 holds the tmaster and no tasks."""

    topology: str
    tasks: tuple[TaskPlacement, ...]
    num_containers: int  # data containers, numbered 1..num_containers

    def tasks_in(self, container: int) -> list[TaskPlacement]:
        return [t for t in self.tasks if t.container == container]

    def component_tasks(self, component: str) -> list[int]:
        return sorted(t.task_id for t in self.tasks if t.component == component)

    def layout(self) -> dict[str, list[int]]:
        """Each component's task ids, in index order."""
        out: dict[str, list[int]] = {}
        for t in sorted(self.tasks, key=lambda t: t.task_id):
            out.setdefault(t.component, []).append(t.task_id)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "num_containers": self.num_containers,
            "tasks": [[t.task_id, t.component, t.component_index, t.container] for t in self.tasks],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PackingPlan:
        try:
            return cls(
                topology=str(d["topology"]),
                num_containers=int(d["num_containers"]),
                tasks=tuple(
                    TaskPlacement(int(a), str(b), int(c), int(e)) for a, b, c, e in d["tasks"]
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteProtocolError(f"malformed packing plan: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class StmgrLocation:
    container: int
    host: str
    port: int
    pid: int


@dataclass(frozen=True, slots=True)
class PhysicalPlan:
    packing: PackingPlan
    stmgrs: dict[int, StmgrLocation]
    state: str = RUNNING
    #: task_id -> {"state", "pid", "restarts", "error"}: for status, not routing
    instances: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: container -> the stmgr's last heartbeat statistics (backpressure...): for status
    stmgr_stats: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: EFFECTIVELY_ONCE: {"epoch": E, "restore": C}: the epoch the topology is in and
    #: the checkpoint it started from (-1: the empty state); empty otherwise
    stateful: dict[str, Any] = field(default_factory=dict)

    @property
    def topology(self) -> str:
        return self.packing.topology

    def container_of(self) -> dict[int, int]:
        return {t.task_id: t.container for t in self.packing.tasks}

    def to_dict(self) -> dict[str, Any]:
        return {
            "packing": self.packing.to_dict(),
            "state": self.state,
            "stmgrs": [[s.container, s.host, s.port, s.pid] for s in self.stmgrs.values()],
            "instances": [[k, v] for k, v in sorted(self.instances.items())],
            "stmgr_stats": [[k, v] for k, v in sorted(self.stmgr_stats.items())],
            "stateful": self.stateful,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PhysicalPlan:
        try:
            stmgrs = {
                int(c): StmgrLocation(int(c), str(h), int(p), int(pid))
                for c, h, p, pid in d["stmgrs"]
            }
            return cls(
                packing=PackingPlan.from_dict(d["packing"]),
                stmgrs=stmgrs,
                state=str(d["state"]),
                instances={int(k): dict(v) for k, v in d.get("instances", [])},
                stmgr_stats={int(k): dict(v) for k, v in d.get("stmgr_stats", [])},
                stateful=dict(d.get("stateful") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteProtocolError(f"malformed physical plan: {exc!r}") from exc
