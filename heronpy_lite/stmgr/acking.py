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
``{spout_task: AckBatch(acked=[...], failed=[...])}``; the stream manager
uses the same calls on encoded bodies (`apply_body`, `expire_bodies`).

`PyXorTracker` here is the reference; `_ctracker.c` does the same in C and is
what `make_tracker` returns where it was built (see
docs/decisions/0015-compiled-tuple-path.md).
"""

from __future__ import annotations

import importlib
from collections import Counter
from typing import Any

from heronpy_lite import extensions
from heronpy_lite.errors import RemoteProtocolError
from heronpy_lite.wire.acking import AckBatch

_XOR = 0
_INIT = 1
_GEN = 2


class PyXorTracker:
    def __init__(self, timeout_secs: float | None, now: float, buckets: int = 3) -> None:
        if buckets < 2:
            raise ValueError("XorTracker needs at least 2 buckets")
        #: spout task -> root -> [xor, init seen, generation]
        self.trees: dict[int, dict[int, list[int]]] = {}
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
        return sum(len(t) for t in self.trees.values())

    @property
    def entries(self) -> dict[tuple[int, int], list[int]]:
        """Every live tree as (task, root) -> [xor, init seen, generation]."""
        return {(task, root): e for task, t in self.trees.items() for root, e in t.items()}

    def apply(self, task: int, batch: AckBatch, now: float) -> dict[int, AckBatch]:
        """Apply one incoming batch for spout ``task``; return the verdicts.

        The per-tree work is inlined: this runs once per acked tuple."""
        self._advance(now)
        trees = self.trees.get(task)
        if trees is None:
            trees = self.trees[task] = {}
        generation = self.generation
        acked: list[int] = []
        failed: list[int] = []
        pairs = iter(batch.init)
        for root, value in zip(pairs, pairs, strict=True):  # (root, init XOR) pairs
            entry = trees.get(root)
            if entry is None:
                if value:
                    trees[root] = [value, 1, generation]
                else:
                    acked.append(root)  # a tree with no edge left: complete already
            else:
                entry[_XOR] ^= value
                entry[_INIT] = 1
                if not entry[_XOR]:
                    del trees[root]
                    acked.append(root)
        pairs = iter(batch.update)
        for root, value in zip(pairs, pairs, strict=True):  # (root, XOR contribution) pairs
            entry = trees.get(root)
            if entry is None:
                trees[root] = [value, 0, generation]
            else:
                entry[_XOR] ^= value
                if not entry[_XOR] and entry[_INIT]:
                    del trees[root]
                    acked.append(root)
        for root in batch.fail:
            entry = trees.pop(root, None)
            if entry is not None and entry[_INIT]:
                failed.append(root)
        if not acked and not failed:
            return {}
        self.acked += len(acked)
        self.failed += len(failed)
        return {task: AckBatch(acked=acked, failed=failed)}

    def expire(self, now: float) -> dict[int, AckBatch]:
        """Rotate buckets that are due; fail the trees of the generation that fell off."""
        out: dict[int, AckBatch] = {}
        self._advance(now)
        if self.generation == self._scanned:
            return out
        self._scanned = self.generation
        oldest_alive = self.generation - self.buckets + 1
        for task, trees in self.trees.items():
            expired = [root for root, e in trees.items() if e[_GEN] < oldest_alive]
            for root in expired:
                entry = trees.pop(root)
                if entry[_INIT]:
                    self.timed_out += 1
                    self.timed_out_by_task[task] += 1
                    out.setdefault(task, AckBatch()).failed.append(root)
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
        self.trees.pop(task, None)

    def apply_body(self, task: int, body: bytes | memoryview, now: float) -> bytes | None:
        """`apply` on an encoded acking body: the verdict body for ``task``, or None."""
        verdict = self.apply(task, AckBatch.decode(body), now).get(task)
        return None if verdict is None else verdict.encode()

    def expire_bodies(self, now: float) -> list[tuple[int, bytes]]:
        """`expire`, as (spout task, verdict body) pairs."""
        return [(task, batch.encode()) for task, batch in self.expire(now).items()]


def _load_native() -> Any:
    try:
        native = importlib.import_module("heronpy_lite.stmgr._ctracker")
    except ImportError:
        return None
    native.configure(RemoteProtocolError)
    return native.XorTracker


#: the C tracker, or None where it was not built
NATIVE: Any = _load_native()


def make_tracker(timeout_secs: float | None, now: float, buckets: int = 3) -> Any:
    """The tracker a stream manager uses: C where built and not switched off."""
    cls = NATIVE if NATIVE is not None and extensions.enabled() else PyXorTracker
    return cls(timeout_secs, now, buckets)
