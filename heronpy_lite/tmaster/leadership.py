"""Who is the topology master: the holder of the ephemeral ``tmasters/<name>``.

Every tmaster process of a topology binds its port, then claims the node
with its address. The one that creates it is active; the others are
standbys: they wait for the node to change (a ZooKeeper watch) and claim
again. The node vanishes when the active one's session ends: at once when
it exits cleanly (it closes its session) or when its executor sees it die
and removes the node it left; after the session timeout if its whole
container died. See docs/decisions/0011-standby-tmaster.md.

The active one keeps claiming on every change too. If the node is gone it
re-creates it; if another session holds it (its own session expired and a
standby won meanwhile), it has lost: `keep` raises `LeadershipLost` and the
process exits, so its executor restarts it as a standby. There is never more
than one active tmaster for longer than it takes to notice.

kazoo calls back on its own threads; `_poke` only hands the event to the
loop with ``call_soon_threadsafe``. Blocking calls go through
``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from heronpy_lite.errors import LeadershipLost, StateManagerError
from heronpy_lite.statemgr.base import TMASTERS, StateManager

log = logging.getLogger(__name__)

#: Watches are one-shot and re-armed by each claim; claiming again this often
#: anyway bounds the cost of a notification lost in a reconnect.
RECHECK_SECS = 5.0


class Leadership:
    def __init__(self, statemgr: StateManager, topology: str) -> None:
        self.statemgr = statemgr
        self.topology = topology
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        statemgr.add_state_listener(lambda state: self._poke())

    def _poke(self) -> None:
        """Called from kazoo's threads: the node or the connection changed."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are exiting
            self._loop.call_soon_threadsafe(self._changed.set)

    async def _claim(self, location: dict[str, Any]) -> bool | None:
        """True if we hold the node, False if another does, None if unknown."""
        try:
            return await asyncio.to_thread(
                self.statemgr.claim, TMASTERS, self.topology, location, self._poke
            )
        except StateManagerError as exc:
            log.warning("cannot check the tmaster node: %s", exc)
            return None

    async def _next_change(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RECHECK_SECS):
                await self._changed.wait()

    async def acquire(self, location: dict[str, Any]) -> None:
        """Return once this process holds the tmaster node (standby until then)."""
        announced = False
        while True:
            self._changed.clear()  # before claiming, so a change during the claim counts
            held = await self._claim(location)
            if held:
                return
            if held is False and not announced:
                announced = True
                holder = await self._holder()
                log.info(
                    "standby tmaster of %s: the active one is pid %s at %s:%s; waiting",
                    self.topology,
                    holder.get("pid"),
                    holder.get("host"),
                    holder.get("port"),
                )
            await self._next_change()

    async def keep(self, location: dict[str, Any]) -> None:
        """Hold the node until another tmaster has it; then raise LeadershipLost."""
        while True:
            await self._next_change()
            self._changed.clear()
            if await self._claim(location) is False:
                holder = await self._holder()
                raise LeadershipLost(
                    f"tmaster pid {holder.get('pid')} holds the tmaster node of {self.topology}"
                )

    async def _holder(self) -> dict[str, Any]:
        try:
            return await asyncio.to_thread(self.statemgr.get, TMASTERS, self.topology) or {}
        except StateManagerError:
            return {}
