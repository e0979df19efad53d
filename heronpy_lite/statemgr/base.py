"""The state manager interface: where topologies, plans and locations live.

Node layout (the same for every backend, as in Heron), under a root::

    topologies/<name>             the topology record (file, attr, config)
    packingplans/<name>           task -> container
    pplans/<name>                 physical plan (stmgr addresses, state, instances)
    executionstate/<name>         RUNNING / PAUSED, submit time, cluster
    tmasters/<name>               tmaster host and ports (ephemeral)
    schedulers/<name>             scheduler pid and host
    metricsmgrs/<name>/<container>  metrics manager URL (ephemeral)

Values are JSON documents. Calls block: async code runs them through
``asyncio.to_thread``. ``create_topology`` is the one atomic claim: two
submits of one name cannot both succeed.

Leader election (the standby tmaster) uses `claim`: create an ephemeral node
unless another live owner holds it, and be told (``on_change``, from a
foreign thread) when it may have changed. Backends that cannot watch nodes
(localfs) grant every claim and run a single tmaster (``supports_standby``).
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from heronpy_lite.errors import CorruptStateError, TopologyNotFoundError

log = logging.getLogger(__name__)

TOPOLOGIES = "topologies"
PACKING_PLANS = "packingplans"
PPLANS = "pplans"
EXECUTION_STATE = "executionstate"
TMASTERS = "tmasters"
SCHEDULERS = "schedulers"
METRICSMGRS = "metricsmgrs"
#: EFFECTIVELY_ONCE: the latest complete checkpoint, the kept ones, the epoch
STATEFUL_CHECKPOINTS = "statefulcheckpoints"

KINDS = (
    TOPOLOGIES,
    PACKING_PLANS,
    PPLANS,
    EXECUTION_STATE,
    TMASTERS,
    SCHEDULERS,
    METRICSMGRS,
    STATEFUL_CHECKPOINTS,
)


class StateManager(ABC):
    """Backend-neutral access to the node layout above."""

    #: whether `claim` is a real election, so a standby tmaster makes sense
    supports_standby = False

    # -- primitives each backend implements (paths are relative, '/'-separated) --

    @abstractmethod
    def _read(self, path: str) -> bytes | None: ...

    @abstractmethod
    def _write(self, path: str, data: bytes, ephemeral: bool = False) -> None: ...

    @abstractmethod
    def _create(self, path: str, data: bytes) -> bool:
        """Create ``path`` only if absent; False if it already existed."""

    @abstractmethod
    def _delete(self, path: str) -> None:
        """Remove ``path`` and anything under it; absent is fine."""

    @abstractmethod
    def _children(self, path: str) -> list[str]: ...

    def _claim(self, path: str, data: bytes, on_change: Callable[[], None] | None) -> bool:
        """Hold ephemeral ``path`` unless another live owner does. Backends
        without watches have a single claimant: it always wins."""
        self._write(path, data, ephemeral=True)
        return True

    def _delete_if(self, path: str, predicate: Callable[[bytes], bool]) -> bool:
        raw = self._read(path)
        if raw is None or not predicate(raw):
            return False
        self._delete(path)
        return True

    def add_state_listener(self, listener: Callable[[str], None]) -> None:  # noqa: B027
        """Call ``listener(state)`` (from a foreign thread) when the connection
        to the backend changes: ``CONNECTED``, ``SUSPENDED``, ``LOST``."""

    def close(self) -> None:  # noqa: B027 (optional hook; localfs holds nothing)
        """Release connections; the object is unusable afterwards."""

    # -- typed access --

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        raw = self._read(f"{kind}/{name}")
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise CorruptStateError(f"corrupt state node {kind}/{name}: {exc}") from exc
        if not isinstance(value, dict):
            raise CorruptStateError(f"corrupt state node {kind}/{name}: not an object")
        return value

    def set(self, kind: str, name: str, value: dict[str, Any], ephemeral: bool = False) -> None:
        self._write(f"{kind}/{name}", json.dumps(value, sort_keys=True).encode(), ephemeral)

    def create_topology(self, name: str, record: dict[str, Any]) -> bool:
        """Claim ``name``; False if a topology of that name exists."""
        return self._create(f"{TOPOLOGIES}/{name}", json.dumps(record, sort_keys=True).encode())

    def get_topology(self, name: str) -> dict[str, Any]:
        record = self.get(TOPOLOGIES, name)
        if record is None:
            raise TopologyNotFoundError(f"no topology named {name!r}")
        return record

    def list_topologies(self) -> list[str]:
        return sorted(self._children(TOPOLOGIES))

    def delete_topology(self, name: str) -> None:
        """Remove every node of ``name`` (the topology record last)."""
        for kind in reversed(KINDS):
            self._delete(f"{kind}/{name}")

    def claim(
        self,
        kind: str,
        name: str,
        value: dict[str, Any],
        on_change: Callable[[], None] | None = None,
    ) -> bool:
        """Hold the ephemeral node ``kind/name`` with ``value``: True if this
        client holds it now (created, or already ours), False if another live
        session does. ``on_change()`` is called once, from a foreign thread,
        when the node next changes or disappears; claim again to re-arm it."""
        return self._claim(f"{kind}/{name}", json.dumps(value, sort_keys=True).encode(), on_change)

    def delete_if(self, kind: str, name: str, predicate: Callable[[dict[str, Any]], bool]) -> bool:
        """Delete ``kind/name`` if its value satisfies ``predicate``; True if deleted."""

        def check(raw: bytes) -> bool:
            try:
                value = json.loads(raw)
            except ValueError:
                return False
            return isinstance(value, dict) and predicate(value)

        return self._delete_if(f"{kind}/{name}", check)

    def set_metricsmgr(self, name: str, container: int, value: dict[str, Any]) -> None:
        self.set(METRICSMGRS, f"{name}/{container}", value, ephemeral=True)

    def get_metricsmgrs(self, name: str) -> dict[int, dict[str, Any]]:
        result = {}
        for child in self._children(f"{METRICSMGRS}/{name}"):
            value = self.get(METRICSMGRS, f"{name}/{child}")
            if value is not None:
                result[int(child)] = value
        return result
