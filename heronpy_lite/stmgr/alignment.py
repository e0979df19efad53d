"""Checkpoint alignment in the stream manager: per local bolt task, the markers
of one checkpoint from every source that feeds it (EFFECTIVELY_ONCE).

Theory of operation
-------------------
A bolt's state for checkpoint N must reflect exactly what its sources sent
before their markers for N. Its sources are the tasks of the components it
subscribes to; each sends it one marker per checkpoint, after its data. When
the first marker of N reaches a local task, the task is *aligning*: frames
from a source that has already sent its marker are held back, in order,
while frames from the others go through. When the last source's marker
arrives, the task is handed one marker (it takes its state and sends its own
markers on), then what was held. Sources in other containers are aligned
here too: their frames and markers arrive in order on the peer link.

The bound. Holding is bounded in bytes per task
(``heron.stateful.alignment.buffer.bytes``). Rather than drop the checkpoint
silently when it would pass the bound (Heron's weak point), the task
*declines* it: what was held goes through at once, the task is handed the
marker all the same (so that its own markers flow and nothing downstream
waits for them), and the caller tells the topology master, which fails the
checkpoint, counts it and logs it. The state the task takes for a declined
checkpoint is never used.

A marker of a newer checkpoint ends an older alignment that never finished
(a source of it went away: that checkpoint cannot complete); so does a
restore (`reset`). Pure: the caller passes ``now``; results are plain data.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Aligning:
    checkpoint: int
    started: float
    arrived: set[int] = field(default_factory=set)
    held: deque[tuple[bytes, int]] = field(default_factory=deque)
    held_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Released:
    """What goes to the task now, in order: held frames, and (``marker`` not None)
    the marker first; ``declined`` names the checkpoint it declined, if it did."""

    marker: int | None = None
    frames: tuple[tuple[bytes, int], ...] = ()
    declined: int | None = None
    reason: str = ""
    aligned_seconds: float = 0.0


NOTHING = Released()


class Alignment:
    """The alignment of every local task that has sources."""

    def __init__(self, sources: dict[int, frozenset[int]], bound_bytes: int) -> None:
        #: local task -> the tasks that send it markers
        self.sources = sources
        self.bound_bytes = bound_bytes
        self._aligning: dict[int, _Aligning] = {}
        #: task -> the newest checkpoint it was handed (or declined): older markers are stale
        self._done: dict[int, int] = {}
        self.declined = 0
        #: seconds tasks spent aligning, in total, and the last alignment's
        self.aligned_seconds = 0.0
        self.last_aligned_seconds = 0.0

    def holds(self, task: int, src: int) -> bool:
        """Whether frames from ``src`` to ``task`` are held right now."""
        aligning = self._aligning.get(task)
        return aligning is not None and src in aligning.arrived

    def hold(self, task: int, src: int, frame: bytes, tuples: int, now: float) -> Released:
        """Hold a frame (call when `holds`); past the bound the task declines."""
        aligning = self._aligning[task]
        aligning.held.append((frame, tuples))
        aligning.held_bytes += len(frame)
        if aligning.held_bytes <= self.bound_bytes:
            return NOTHING
        del self._aligning[task]
        self._done[task] = aligning.checkpoint
        self.declined += 1
        reason = (
            f"alignment of task {task} passed its bound of {self.bound_bytes} bytes "
            "(heron.stateful.alignment.buffer.bytes)"
        )
        return Released(
            aligning.checkpoint,
            tuple(aligning.held),
            aligning.checkpoint,
            reason,
            now - aligning.started,
        )

    def marker(self, task: int, src: int, checkpoint: int, now: float) -> Released:
        """``src``'s marker of ``checkpoint`` for ``task``."""
        expected = self.sources.get(task, frozenset())
        aligning = self._aligning.get(task)
        released: tuple[tuple[bytes, int], ...] = ()
        if aligning is not None and aligning.checkpoint < checkpoint:
            released = tuple(aligning.held)  # an older one that cannot finish
            aligning = None
            del self._aligning[task]
        if aligning is None:
            if self._done.get(task, -1) >= checkpoint:
                return Released(frames=released)  # stale, or declined already
            aligning = self._aligning[task] = _Aligning(checkpoint, now)
        elif aligning.checkpoint > checkpoint:
            return Released(frames=released)  # stale
        aligning.arrived.add(src)
        if not expected <= aligning.arrived:
            return Released(frames=released)
        del self._aligning[task]
        self._done[task] = checkpoint
        seconds = now - aligning.started
        self.aligned_seconds += seconds
        self.last_aligned_seconds = seconds
        return Released(checkpoint, released + tuple(aligning.held), None, "", seconds)

    def reset(self) -> None:
        """A restore: nothing held counts any more (checkpoint ids only grow, so
        what was done stays done)."""
        self._aligning.clear()

    @property
    def held_bytes(self) -> int:
        return sum(a.held_bytes for a in self._aligning.values())
