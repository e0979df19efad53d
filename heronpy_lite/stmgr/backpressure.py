"""The backpressure controller of one stream manager: which local instances
to stop reading from, and what to tell the other stream managers.

Theory of operation
-------------------
Every local instance has an outlet with a high and a low watermark. When an
outlet goes above its high watermark its task is *congested*; it stays so
until the outlet drains below the low watermark (hysteresis, so the state
does not flap on every write). The strategy turns congestion into pauses:

- ``tcp``: no pauses and no messages. A reader that wrote to an outlet above
  its hard limit waits (`Outlet.wait_for_room`), so kernel buffers fill and
  senders block: backpressure spreads hop by hop, and every path sharing a
  connection with the slow one stalls with it.
- ``spout`` (Heron's default): congestion anywhere pauses the spouts
  everywhere. The congested stream manager tells every peer ``start``; each
  stops reading its local spout instances while *any* stream manager (itself
  included) still asks; ``stop`` when the congested outlets have drained.
- ``stage``: congestion of component C pauses only the components that feed
  C, in every container. Those stop reading their own inputs, their outlets
  fill, and the next stage up is paused in turn, until the spouts of that
  path are. Paths that do not feed C keep flowing. When C is on a cycle
  (``topology.enable.cycles``), what is paused is what feeds the cycle from
  outside, never a member of it: pausing a member would stop the cycle from
  draining, and its members would wait for each other for good.

Pauses are by component name: a paused component's instances are not read
from, in every container. The controller also keeps the time each component
spent paused and, where the congestion started, the time each culprit
component spent congested. No I/O and no clock: methods take ``now`` and
return the notices to send to the peers.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Strategy(enum.Enum):
    TCP = "tcp"
    SPOUT = "spout"
    STAGE = "stage"


@dataclass(frozen=True, slots=True)
class Notice:
    """Tell every peer: ``component`` (a culprit) started or stopped congesting."""

    component: str
    start: bool


class BackpressureController:
    def __init__(
        self,
        strategy: Strategy,
        spouts: Iterable[str],
        upstream: dict[str, set[str]],
        task_component: dict[int, str],
    ) -> None:
        self.strategy = strategy
        self.spouts = frozenset(spouts)
        self.upstream = upstream
        self.task_component = task_component
        #: what a congested component pauses under ``stage``: its feeders, or for a
        #: component on a cycle, the cycle's feeders from outside it
        self.feeders = stage_feeders(upstream)
        #: local congested tasks
        self.congested: set[int] = set()
        #: peer container -> culprit components it reported
        self.remote: dict[int, set[str]] = {}
        self._paused: frozenset[str] = frozenset()
        self._paused_since: dict[str, float] = {}
        self._culprit_since: dict[str, float] = {}
        #: seconds each component spent paused here, and congested here (culprits)
        self.paused_seconds: dict[str, float] = {}
        self.culprit_seconds: dict[str, float] = {}

    # -- inputs --

    def task_congested(self, task: int, now: float) -> list[Notice]:
        if task in self.congested:
            return []
        before = self.local_culprits()
        self.congested.add(task)
        return self._culprits_changed(before, now)

    def task_relieved(self, task: int, now: float) -> list[Notice]:
        if task not in self.congested:
            return []
        before = self.local_culprits()
        self.congested.discard(task)
        return self._culprits_changed(before, now)

    def remote_notice(self, container: int, notice: Notice, now: float) -> None:
        components = self.remote.setdefault(container, set())
        if notice.start:
            components.add(notice.component)
        else:
            components.discard(notice.component)
        self._recompute(now)

    def peer_gone(self, container: int, now: float) -> None:
        """A peer's connection closed: it can no longer ask for anything."""
        if self.remote.pop(container, None):
            self._recompute(now)

    def current_notices(self) -> list[Notice]:
        """What a newly connected peer must hear about this stream manager."""
        if self.strategy == Strategy.TCP:
            return []
        return [Notice(c, True) for c in sorted(self.local_culprits())]

    # -- outputs --

    def local_culprits(self) -> set[str]:
        return {self.task_component[t] for t in self.congested}

    @property
    def paused(self) -> frozenset[str]:
        """Components whose local instances must not be read from."""
        return self._paused

    def totals(self, now: float) -> dict[str, dict[str, float]]:
        """Seconds paused per component and congested per culprit, so far."""
        paused = dict(self.paused_seconds)
        for c, since in self._paused_since.items():
            paused[c] = paused.get(c, 0.0) + now - since
        culprit = dict(self.culprit_seconds)
        for c, since in self._culprit_since.items():
            culprit[c] = culprit.get(c, 0.0) + now - since
        return {"paused": paused, "culprit": culprit}

    # -- internals --

    def _culprits_changed(self, before: set[str], now: float) -> list[Notice]:
        after = self.local_culprits()
        for c in after - before:
            self._culprit_since[c] = now
        for c in before - after:
            self.culprit_seconds[c] = (
                self.culprit_seconds.get(c, 0.0) + now - self._culprit_since.pop(c)
            )
        self._recompute(now)
        if self.strategy == Strategy.TCP:
            return []  # congestion is recorded (culprit time) but never announced
        return [Notice(c, True) for c in sorted(after - before)] + [
            Notice(c, False) for c in sorted(before - after)
        ]

    def _recompute(self, now: float) -> None:
        culprits = self.local_culprits().union(*self.remote.values())
        if not culprits or self.strategy == Strategy.TCP:
            paused: frozenset[str] = frozenset()
        elif self.strategy == Strategy.SPOUT:
            paused = self.spouts
        else:
            paused = frozenset().union(*(self.feeders.get(c, frozenset()) for c in culprits))
        for c in paused - self._paused:
            self._paused_since[c] = now
        for c in self._paused - paused:
            self.paused_seconds[c] = (
                self.paused_seconds.get(c, 0.0) + now - self._paused_since.pop(c)
            )
        self._paused = paused


def stage_feeders(upstream: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    """Per component, what ``stage`` pauses when it is congested: the components
    feeding its strongly connected component (itself, or every component on a
    cycle with it) from outside that component."""
    nodes = sorted(set(upstream).union(*upstream.values()))
    reaches = {n: _reachable(n, upstream) for n in nodes}  # n's transitive feeders
    feeders: dict[str, frozenset[str]] = {}
    for n in nodes:
        group = {m for m in reaches[n] if n in reaches[m]} | {n}
        outside = set().union(*(upstream.get(m, set()) for m in group)) - group
        feeders[n] = frozenset(outside)
    return feeders


def _reachable(start: str, upstream: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(upstream.get(start, ()))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(upstream.get(n, ()))
    return seen
