"""The checkpoint coordinator of the topology master (EFFECTIVELY_ONCE).

Theory of operation
-------------------
A checkpoint is a globally consistent cut: every task's state as of the same
point in every stream (Chandy-Lamport, as Heron and Flink run it; see
docs/decisions/0029-effectively-once.md):

1. Every ``topology.stateful.checkpoint.interval.seconds`` the coordinator
   starts checkpoint N: ``StartCheckpoint(N)`` to every stream manager, which
   passes it to its local spouts. Ids only grow, across restores and
   restarts of the tmaster (the next one is recorded before it starts).
2. A spout takes its state and sends a *marker* for N to every task it
   feeds, after everything it emitted before; markers travel with the data.
   Stream managers align them for each local bolt (`stmgr/alignment.py`);
   a bolt takes its state and sends its markers on.
3. Every task reports ``StateStored(N)``; when all have, N is complete: it is
   recorded (the ``record``, kept in ``statefulcheckpoints/<name>``), the
   oldest beyond ``kept`` is forgotten, and ``CheckpointComplete(N)`` goes to
   everyone (two-phase sinks commit; files no kept checkpoint needs go).

At most one checkpoint is in flight; one that fails (``CheckpointFailed``: a
state that cannot be stored, an alignment over its bound) or does not
complete within ``timeout`` is abandoned, counted, logged, and the next one
starts at the next interval.

Recovery. When a task's process or a stream manager is replaced,
`replaced` starts epoch E+1 with ``Restore(C, E+1)``, C the latest complete
checkpoint (-1, the empty state, if there is none): every task goes back to
C, every stream manager drops what belongs to older epochs, spouts wait.
When every stream manager has answered ``RestoreDone(E+1)``, ``Resume(E+1)``
lets them go. If a task could not load C (a file missing or damaged), C is
forgotten and the previous kept checkpoint is restored instead, in a new
epoch. The epoch is recorded before ``Restore`` is sent, so a tmaster that
takes over knows it, and one that finds a restore unfinished starts it again.

Pure: every method takes ``now`` and returns the messages to broadcast to the
stream managers; `dirty` says the record must be written (before those
messages are sent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from heronpy_lite.wire import messages as m

log = logging.getLogger(__name__)


@dataclass
class _InFlight:
    checkpoint: int
    started: float
    waiting: set[int]
    size: int = 0


@dataclass
class CheckpointStats:
    """What ``status`` and the metrics show."""

    completed: int = 0
    failed: int = 0
    declined: int = 0
    restores: int = 0
    last_duration: float = 0.0
    last_size: int = 0
    last_completed_wall: float = 0.0
    last_failure: str = ""
    kinds: dict[str, int] = field(default_factory=dict)


class CheckpointCoordinator:
    def __init__(
        self,
        *,
        tasks: list[int],
        containers: list[int],
        interval: float,
        timeout: float,
        kept: int,
        record: dict[str, Any] | None,
        now: float,
        layout: dict[str, list[int]] | None = None,
    ) -> None:
        self.tasks = frozenset(tasks)
        #: each component's task ids now, in index order: recorded with every
        #: checkpoint, so that a restore into another layout (a rescale) knows
        #: which task's state is whose (instance/stateful.py: sources)
        self.layout = dict(layout or {})
        self.containers = frozenset(containers)
        self.interval = interval
        self.timeout = timeout
        self.kept_max = kept
        record = record or {}
        #: complete checkpoints kept, oldest first
        self.kept: list[int] = [int(c) for c in record.get("kept", [])]
        #: the layout of each kept checkpoint (and of the one restored from)
        self.layouts: dict[int, dict[str, list[int]]] = {
            int(c): layout for c, layout in record.get("layouts", {}).items()
        }
        self.epoch = int(record.get("epoch", 0))
        self.next_id = int(record.get("next", 1))
        #: the checkpoint this epoch started from (-1: the empty state)
        self.restored_from = int(record.get("restore", -1))
        #: a restore was in progress when the record was written: start it again
        self.restoring: set[int] | None = None
        self._resume_restore = bool(record.get("restoring"))
        #: whether any record existed: a first start restores nothing
        self.started_before = bool(record)
        self.in_flight: _InFlight | None = None
        self.next_start = now + interval
        self.dirty = not record
        self.stats = CheckpointStats()
        self.stats.completed = int(record.get("completed", 0))
        self._failed_restore: set[int] = set()

    # -- what others read --

    @property
    def latest(self) -> int:
        """The latest complete checkpoint, -1 if none."""
        return self.kept[-1] if self.kept else -1

    def plan_info(self) -> dict[str, Any]:
        """The physical plan's ``stateful``: the epoch and what it started from."""
        return {
            "epoch": self.epoch,
            "restore": self.restored_from,
            "layout": self.layouts.get(self.restored_from, self.layout),
        }

    def record(self) -> dict[str, Any]:
        """What ``statefulcheckpoints/<name>`` holds (the state manager)."""
        self.dirty = False
        return {
            "latest": self.latest,
            "kept": list(self.kept),
            "epoch": self.epoch,
            "restore": self.restored_from,
            "next": self.next_id,
            "restoring": self.restoring is not None,
            "completed": self.stats.completed,
            "completed_at": self.stats.last_completed_wall,
            "layouts": {str(c): layout for c, layout in self.layouts.items()},
        }

    def status(self, now_wall: float) -> dict[str, Any]:
        s = self.stats
        age = now_wall - s.last_completed_wall if s.last_completed_wall else None
        return {
            "latest": self.latest,
            "kept": list(self.kept),
            "epoch": self.epoch,
            "restoring": self.restoring is not None,
            "in_flight": self.in_flight.checkpoint if self.in_flight else None,
            "completed": s.completed,
            "failed": s.failed,
            "declined": s.declined,
            "restores": s.restores,
            "last_duration_secs": round(s.last_duration, 4),
            "last_size_bytes": s.last_size,
            "age_secs": round(age, 3) if age is not None else None,
            "completed_at": s.last_completed_wall or None,
            "last_failure": s.last_failure,
        }

    # -- time --

    def tick(self, now: float, ready: bool) -> list[m.Message]:
        """Start a checkpoint if one is due; abandon one that took too long.
        ``ready``: every stream manager is registered and the topology RUNNING."""
        if self._resume_restore and ready:
            self._resume_restore = False
            return self.replaced("a restore was in progress when the tmaster stopped", now)
        flight = self.in_flight
        if flight is not None and now - flight.started > self.timeout:
            waiting = sorted(flight.waiting)
            reason = f"not complete after {self.timeout:g}s (no state from tasks {waiting})"
            self._fail(flight.checkpoint, reason, declined=False)
        if self.in_flight is not None or self.restoring is not None or not ready:
            return []
        if now < self.next_start:
            return []
        checkpoint = self.next_id
        self.next_id += 1
        self.dirty = True  # recorded before it starts: ids never repeat
        self.in_flight = _InFlight(checkpoint, now, set(self.tasks))
        self.next_start = now + self.interval
        return [m.StartCheckpoint(checkpoint)]

    # -- a checkpoint's progress --

    def stored(self, msg: m.StateStored, now: float, now_wall: float) -> list[m.Message]:
        flight = self.in_flight
        if flight is None or msg.checkpoint != flight.checkpoint:
            return []  # an abandoned one, or of an older epoch
        flight.waiting.discard(msg.task_id)
        flight.size += msg.size
        self.stats.kinds[msg.kind] = self.stats.kinds.get(msg.kind, 0) + 1
        if flight.waiting:
            return []
        self.in_flight = None
        self.kept.append(flight.checkpoint)
        del self.kept[: -self.kept_max]
        self.layouts[flight.checkpoint] = self.layout
        for c in set(self.layouts) - {*self.kept, self.restored_from}:
            del self.layouts[c]
        self.stats.completed += 1
        self.stats.last_duration = now - flight.started
        self.stats.last_size = flight.size
        self.stats.last_completed_wall = now_wall
        self.dirty = True
        log.info(
            "checkpoint %d complete: %d bytes in %.3fs",
            flight.checkpoint,
            flight.size,
            self.stats.last_duration,
        )
        failed = self.stats.failed + self.stats.declined
        # the files to keep: the kept checkpoints', and the one this epoch started from,
        # which a replaced task's first build loads (from the plan) before its restore
        keep = sorted({*self.kept, self.restored_from} - {-1})
        return [
            m.CheckpointComplete(
                flight.checkpoint, keep, self.stats.last_duration, flight.size, failed
            )
        ]

    def failed(self, msg: m.CheckpointFailed) -> None:
        flight = self.in_flight
        if flight is not None and msg.checkpoint == flight.checkpoint:
            declined = msg.where.startswith("stmgr")
            self._fail(msg.checkpoint, f"{msg.where}: {msg.reason}", declined)

    def _fail(self, checkpoint: int, reason: str, declined: bool) -> None:
        self.in_flight = None
        if declined:
            self.stats.declined += 1
        else:
            self.stats.failed += 1
        self.stats.last_failure = f"checkpoint {checkpoint}: {reason}"
        log.warning(
            "checkpoint %d %s: %s", checkpoint, "declined" if declined else "failed", reason
        )

    # -- recovery --

    def replaced(self, why: str, now: float) -> list[m.Message]:
        """A task or a stream manager lost its state: restore every task, in a new epoch,
        to the latest complete checkpoint it can load."""
        if not self.started_before:
            return []  # the first start: nothing to go back to
        if self.in_flight is not None:
            self._fail(self.in_flight.checkpoint, f"abandoned: {why}", declined=False)
        self.epoch += 1
        usable = [c for c in self.kept if c not in self._failed_restore]
        self.restored_from = usable[-1] if usable else -1
        self.restoring = set(self.containers)
        self.stats.restores += 1
        self.dirty = True
        log.warning("restoring checkpoint %d in epoch %d: %s", self.restored_from, self.epoch, why)
        return [m.Restore(self.restored_from, self.epoch, self.plan_info()["layout"])]

    def restore_done(self, msg: m.RestoreDone, now: float) -> list[m.Message]:
        if self.restoring is None or msg.epoch != self.epoch:
            return []
        if msg.failed:
            bad = self.restored_from
            self._failed_restore.add(bad)
            self.kept = [c for c in self.kept if c != bad]
            reasons = "; ".join(f"task {t}: {e}" for t, e in msg.failed)
            log.error("checkpoint %d cannot be restored (%s): falling back", bad, reasons)
            return self.replaced(f"checkpoint {bad} could not be loaded", now)
        self.restoring.discard(msg.container)
        if self.restoring:
            return []
        self.restoring = None
        self.dirty = True
        self.next_start = now + self.interval
        log.info("every task restored checkpoint %d: epoch %d", self.restored_from, self.epoch)
        return [m.Resume(self.epoch)]

    def started(self) -> None:
        """Every stream manager is registered for the first time: from now on a
        replaced process means a restore."""
        self.started_before = True
        self.dirty = True
