"""The XOR tracker: tuple trees of the spout tasks in this container.

Theory of operation
-------------------
One entry per (spout task, root): the running XOR of the tree's edge ids
(see `wire/acking.py`) and whether the spout's ``init`` has arrived. XOR is
commutative, so updates may come before the init (a bolt in another
container can be quicker than the spout's own frame); a tree is complete
when its XOR is 0 *and* its init has been seen.

Timeouts use rotating buckets, not a timer per tree: each entry records the
generation it was created in; every ``timeout / (buckets - 1)`` seconds the
generation advances, and the trees of the generation that falls out of the
last ``buckets`` fail. A tree therefore fails between ``timeout`` and
``timeout * buckets / (buckets - 1)`` after it was created. A rotation scans
the live entries only (bounded by max spout pending), so finished trees
cost nothing. Updates for a root that is already finished or expired
create an orphan entry that expires the same way (it is never reported,
having no init).

Everything takes ``now`` and returns what to tell the spouts:
``{spout_task: AckBatch(acked=[...], failed=[...])}``.
"""

from __future__ import annotations

from collections import Counter

from heronpy_lite.wire.acking import AckBatch

_XOR = 0
_INIT = 1
_GEN = 2


class XorTracker:
    def __init__(self, timeout_secs: float | None, now: float, buckets: int = 3) -> None:
        if buckets < 2:
            raise ValueError("XorTracker needs at least 2 buckets")
        #: (task, root) -> [xor, init seen, generation]
        self.entries: dict[tuple[int, int], list[int]] = {}
        self.generation = 0
        self._scanned = 0
        self.buckets = buckets
        self.period = timeout_secs / (buckets - 1) if timeout_secs else None
        self.next_rotation = now + self.period if self.period else float("inf")
        self.acked = 0
        self.failed = 0
        self.timed_out = 0
        self.timed_out_by_task: Counter[int] = Counter()

    def __len__(self) -> int:
        return len(self.entries)

    def apply(self, task: int, batch: AckBatch, now: float) -> dict[int, AckBatch]:
        """Apply one incoming batch for spout ``task``; return the verdicts."""
        out: dict[int, AckBatch] = {}
        self._advance(now)
        entries = self.entries
        it = iter(batch.init)
        for root, xor in zip(it, it, strict=True):
            self._xor(task, root, xor, True, out)
        it = iter(batch.update)
        for root, xor in zip(it, it, strict=True):
            self._xor(task, root, xor, False, out)
        for root in batch.fail:
            entry = entries.pop((task, root), None)
            if entry is not None and entry[_INIT]:
                self.failed += 1
                out.setdefault(task, AckBatch()).failed.append(root)
        return out

    def _xor(self, task: int, root: int, xor: int, init: bool, out: dict[int, AckBatch]) -> None:
        key = (task, root)
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = [xor, int(init), self.generation]
        else:
            entry[_XOR] ^= xor
            if init:
                entry[_INIT] = 1
        if entry[_XOR] == 0 and entry[_INIT]:
            del self.entries[key]
            self.acked += 1
            out.setdefault(task, AckBatch()).acked.append(root)

    def expire(self, now: float) -> dict[int, AckBatch]:
        """Rotate buckets that are due; fail the trees of the generation that fell off."""
        out: dict[int, AckBatch] = {}
        self._advance(now)
        if self.generation == self._scanned:
            return out
        self._scanned = self.generation
        oldest_alive = self.generation - self.buckets + 1
        expired = [k for k, e in self.entries.items() if e[_GEN] < oldest_alive]
        for key in expired:
            entry = self.entries.pop(key)
            if entry[_INIT]:
                self.timed_out += 1
                self.timed_out_by_task[key[0]] += 1
                out.setdefault(key[0], AckBatch()).failed.append(key[1])
        return out

    def _advance(self, now: float) -> None:
        """Bring the generation up to ``now`` (a new tree must not join a stale one)."""
        if now >= self.next_rotation:
            assert self.period is not None
            rotations = int((now - self.next_rotation) // self.period) + 1
            self.generation += rotations
            self.next_rotation += rotations * self.period

    def drop_task(self, task: int) -> None:
        """Forget every tree of ``task`` (its instance restarted: it has forgotten them)."""
        for key in [k for k in self.entries if k[0] == task]:
            del self.entries[key]
