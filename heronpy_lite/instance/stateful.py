"""A task's part in EFFECTIVELY_ONCE: its state, what it stores per checkpoint,
what it restores.

Theory of operation
-------------------
A component that is a `StatefulComponent` gets, before ``initialize``,
``init_state(state)``: a `HashMapState` holding its state at the checkpoint
the topology starts from (empty at the first start). It keeps that object
and writes what must survive into it. For each checkpoint the engine calls
``pre_save(checkpoint_id)`` and stores the state: the whole of it or what
changed (`checkpoint.store.StateWriter`). A component that is not stateful
stores nothing, but takes part all the same: its markers flow and it reports
its (empty) part, so that the checkpoint covers every task.

Optional, as Heron's ``ITwoPhaseStatefulComponent`` in Java (heronpy_lite's
extension, a duck-typed method): ``post_save(checkpoint_id)``, called once
the checkpoint is complete everywhere, which is where a sink commits what it
wrote for it (see topologies/stateful_word_count.py).

This module decides; storing happens on the runner's threads (`WriteState`
jobs). Loading at a restore reads the store directly: the task is paused
then, and has nothing else to do.

Rescaling (docs/decisions/0047-key-groups.md). A checkpoint records the
*layout* it was taken in: each component's task ids, in index order. A task
restoring a checkpoint from another layout (`sources`) loads:

- a keyed bolt (every input fields-grouped): from every task its component
  had then, the entries whose key group it owns now. A `HashMapState` key is
  taken to be the grouped value (a tuple of them for several fields), as in
  a keyed count: its group is the one fields grouping sends that value to;
- any other component: the state of the task that had its index then
  (nothing if there was none): state that is not keyed stays with the index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from heronpy_lite.api.state.state import HashMapState
from heronpy_lite.api.state.stateful_component import StatefulComponent
from heronpy_lite.checkpoint.store import CheckpointStore, StateWriter
from heronpy_lite.errors import CorruptCheckpoint
from heronpy_lite.instance.routing import fields_hash, stable_hash
from heronpy_lite.keygroups import group_owner, key_group

#: the kind a task without state reports for a checkpoint
NONE = "none"


@dataclass(frozen=True, slots=True)
class WriteState:
    """A job for the runner: store ``payload`` as this task's part of ``checkpoint``."""

    checkpoint: int
    kind: str
    payload: bytes
    started: float


@dataclass(frozen=True, slots=True)
class PruneStates:
    """A job for the runner: remove the files no kept checkpoint needs."""

    keep: tuple[int, ...]


Job = WriteState | PruneStates


def is_stateful(component: Any) -> bool:
    return isinstance(component, StatefulComponent)


@dataclass(frozen=True, slots=True)
class Sources:
    """Where a task's state at a checkpoint is: the files of ``tasks``, and of
    their entries those ``keep`` accepts (None: all)."""

    tasks: tuple[int, ...]
    keep: Callable[[Any], bool] | None = None


def state_key_group(key: Any, keygroups: int, key_fields: int = 1) -> int:
    """The key group of a `HashMapState` key: that of the grouped value it is, or
    of the grouped values (a tuple of ``key_fields`` of them) when the grouping
    names several fields."""
    if key_fields > 1 and type(key) is tuple and len(key) == key_fields:
        return key_group(fields_hash(key, range(key_fields)), keygroups)
    return key_group(stable_hash(key), keygroups)


def sources(
    task_id: int,
    component: str,
    index: int,
    now: Sequence[int],
    then: Mapping[str, Sequence[int]] | None,
    key_fields: int,
    keygroups: int,
) -> Sources:
    """Where task ``task_id`` (``component``'s ``index``-th; ``now`` its tasks)
    finds its state at a checkpoint taken with the layout ``then`` (None: this one).
    ``key_fields``: how many fields its grouping names (0: it is not keyed)."""
    if then is None:
        return Sources((task_id,))
    before = tuple(then.get(component, ()))
    if before == tuple(now):
        return Sources((task_id,))
    if key_fields and before:
        n = len(now)

        def mine(key: Any) -> bool:
            return group_owner(state_key_group(key, keygroups, key_fields), keygroups, n) == index

        return Sources(before, mine)
    return Sources(before[index : index + 1])


class TaskState:
    """One task's state across checkpoints and restores."""

    def __init__(self, store: CheckpointStore, task_id: int, full_every: int) -> None:
        self.store = store
        self.task_id = task_id
        self.writer = StateWriter(full_every)
        self.state: HashMapState | None = None

    def load(self, checkpoint: int, where: Sources | None = None) -> tuple[HashMapState, str]:
        """The state at ``checkpoint`` (-1: the empty one), from ``where`` (None: this
        task's own files) and, if it could not be read, why (the state is then
        empty and the topology master is told)."""
        self.writer.restarted()
        where = where or Sources((self.task_id,))
        error = ""
        data: dict[Any, Any] = {}
        if checkpoint >= 0:
            keep = where.keep
            try:
                for task in where.tasks:
                    part = self.store.load(task, checkpoint)
                    data.update(
                        part if keep is None else {k: v for k, v in part.items() if keep(k)}
                    )
            except CorruptCheckpoint as exc:
                data, error = {}, str(exc)
        self.state = HashMapState(data)
        self.state.take_changes()  # what was loaded is not a change
        return self.state, error

    def take(self, component: Any, checkpoint: int) -> tuple[str, bytes]:
        """``pre_save``, then what to store; (NONE, b"") for a component without
        state. Raises what ``pre_save`` raises, and `StateError` for a value that
        is not a msgpack type."""
        if self.state is None or not is_stateful(component):
            return NONE, b""
        component.pre_save(checkpoint)
        return self.writer.payload(self.state)

    def prune(self, keep: tuple[int, ...]) -> int:
        return self.store.prune(self.task_id, keep)

    def write(self, job: WriteState) -> int:
        return self.store.write(self.task_id, job.checkpoint, job.kind, job.payload)
