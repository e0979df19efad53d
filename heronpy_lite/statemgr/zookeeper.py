"""The ZooKeeper state manager (kazoo): Heron's node layout under a root path.

Every node of `base` lives at ``<root>/<kind>/<name>``; several topologies,
and several roots, share one ZooKeeper without touching each other's nodes.

Theory of operation
-------------------
One kazoo client (one ZooKeeper session) per state manager. kazoo runs its
own threads; this class is the foreign edge where they meet ours:

- Every call blocks the caller for at most ``timeout`` seconds and then
  raises `StateManagerError` (kazoo would otherwise queue a request until the
  server comes back). Async code calls us through ``asyncio.to_thread``.
- kazoo reports connection changes on its connection thread. Listeners added
  with `add_state_listener` are called there with ``"CONNECTED"``,
  ``"SUSPENDED"`` or ``"LOST"``; an asyncio user must only hand the event
  over with ``loop.call_soon_threadsafe``. Watches (`claim`'s ``on_change``)
  fire on kazoo's callback thread, under the same rule.
- While the server is unreachable the session is *suspended*; it survives
  if the client reconnects before the session timeout (a restarted server
  also restores its sessions), and then every ephemeral node is still there.
  If the session *expired*, kazoo opens a new one; we then re-create every
  ephemeral node this client wrote, unless another session holds it now
  (`claim` callers find out on their next claim).

Credentials (``heron.statemgr.zookeeper.auth.file``, docs/decisions/0042)
--------------------------------------------------------------------------
With ``credentials=(user, password)`` the session authenticates with
ZooKeeper's ``digest`` scheme (kazoo ``auth_data``; again after every
reconnect), and every node this client creates, parents made on the way
included, carries the ACL ``digest:user:<hash>:cdrwa``: only a session with
the same credentials can read, change or delete it. Nothing else changes for
the callers: `set`, `create_topology`, `claim` and ephemeral writes all go
through kazoo's ``default_acl``. The ancestors of the root path (``/a`` for
root ``/a/b``), which other roots and other users may share, are created
open, so that one user's credentials never lock another out of theirs. A
node created before credentials were configured keeps its old (open) ACL.
Without credentials, nodes are created open to anyone
(``world:anyone:cdrwa``), as before.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl

from heronpy_lite.errors import ConfigError, StateManagerError
from heronpy_lite.statemgr.base import StateManager

log = logging.getLogger(__name__)

#: Reconnect attempts back off from 0.1 s to this, so a client finds a server
#: that came back within about a second (kazoo's default grows to an hour).
_RECONNECT_MAX_DELAY_SECS = 1.0


def _check_root(root: str) -> str:
    if not root.startswith("/"):
        raise ConfigError(
            f"heron.statemgr.root.path must be an absolute ZooKeeper path, got {root!r}"
        )
    parts = root.strip("/").split("/") if root.strip("/") else []
    if any(p in ("", ".", "..") for p in parts):
        raise ConfigError(f"invalid heron.statemgr.root.path {root!r}")
    return "/" + "/".join(parts) if parts else ""


class ZooKeeperStateManager(StateManager):
    """State in ZooKeeper at ``connection`` (``host:port[,host:port...]``) under ``root``."""

    supports_standby = True

    def __init__(
        self,
        connection: str,
        root: str,
        *,
        session_timeout: float = 10.0,
        timeout: float = 5.0,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        if not connection:
            raise ConfigError(
                "the zookeeper state manager needs heron.statemgr.connection.string "
                "(e.g. --config-property heron.statemgr.connection.string=127.0.0.1:2181)"
            )
        self.connection = connection
        self.root = _check_root(root or "/heronpy_lite")
        self.timeout = timeout
        self._lock = threading.Lock()
        self._ephemerals: dict[str, bytes] = {}
        self._watchers: dict[str, Callable[[Any], None]] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._session_id: int | None = None
        self._closed = False
        #: whether nodes are created with an ACL for these credentials only
        self.secured = credentials is not None
        auth: dict[str, Any] = {}
        if credentials is not None:
            user, password = credentials
            auth = {
                "auth_data": [("digest", f"{user}:{password}")],
                "default_acl": [make_digest_acl(user, password, all=True)],
            }
        try:
            self._client = KazooClient(
                hosts=connection,
                timeout=session_timeout,
                connection_retry=KazooRetry(
                    max_tries=-1, delay=0.1, backoff=2, max_delay=_RECONNECT_MAX_DELAY_SECS
                ),
                **auth,
            )
        except (KazooException, ValueError) as exc:
            raise ConfigError(
                f"invalid heron.statemgr.connection.string {connection!r}: {exc}"
            ) from exc
        self._client.add_listener(self._on_state)
        try:
            self._client.start(timeout=timeout)
        except KazooTimeoutError:
            raise StateManagerError(
                f"cannot reach ZooKeeper at {connection} within {timeout:g}s"
            ) from None
        except (KazooException, ValueError, OSError) as exc:
            self._client.close()
            raise StateManagerError(f"cannot connect to ZooKeeper at {connection}: {exc}") from exc
        self._session_id = self._live_session()
        if self.secured:
            self._open_ancestors()
        log.info("connected to ZooKeeper at %s (root %s)", connection, self.root or "/")

    def _open_ancestors(self) -> None:
        """Create the root's ancestors open to anyone (see the module docstring)."""
        parts = self.root.strip("/").split("/")[:-1] if self.root else []
        path = ""
        for part in parts:
            path += f"/{part}"
            try:
                self._wait(
                    f"create {path}", self._client.create_async(path, b"", acl=OPEN_ACL_UNSAFE)
                )
            except NodeExistsError:
                pass
            except KazooException as exc:
                self.close()
                raise self._fail(f"create {path}", exc) from exc

    # -- plumbing --

    def _full(self, path: str) -> str:
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise StateManagerError(f"invalid state path {path!r}")
        return f"{self.root}/{path}"

    def _wait(self, what: str, result: Any) -> Any:
        """The value of a kazoo async result, or StateManagerError after ``timeout``."""
        try:
            return result.get(timeout=self.timeout)
        except KazooTimeoutError:
            raise StateManagerError(
                f"ZooKeeper at {self.connection} did not answer ({what}) within {self.timeout:g}s"
            ) from None

    def _fail(self, what: str, exc: Exception) -> StateManagerError:
        if isinstance(exc, NoAuthError):
            held = "these credentials" if self.secured else "no credentials"
            return StateManagerError(
                f"ZooKeeper at {self.connection}: {what} is not allowed with {held} "
                "(the node's ACL; heron.statemgr.zookeeper.auth.file)"
            )
        reason = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
        return StateManagerError(f"ZooKeeper at {self.connection}: {what} failed ({reason})")

    def _live_session(self) -> int | None:
        client_id = self._client.client_id
        return int(client_id[0]) if client_id else None

    def _on_state(self, state: str) -> None:
        # kazoo's connection thread: nothing that blocks.
        if self._closed:
            return
        if state == KazooState.CONNECTED:
            session = self._live_session()
            if self._session_id is not None and session != self._session_id:
                log.warning("ZooKeeper session expired; a new session re-creates ephemeral nodes")
                self._client.handler.spawn(self._restore_ephemerals)
            self._session_id = session
        elif state == KazooState.SUSPENDED:
            log.warning("ZooKeeper connection lost; retrying (the session is kept meanwhile)")
        else:
            log.warning("ZooKeeper session lost")
        for listener in list(self._listeners):
            try:
                listener(str(state))
            except Exception:
                log.exception("state listener failed")

    def _restore_ephemerals(self) -> None:
        with self._lock:
            nodes = dict(self._ephemerals)
        for path, data in nodes.items():
            try:
                self._wait(
                    f"re-create {path}",
                    self._client.create_async(
                        self._full(path), data, ephemeral=True, makepath=True
                    ),
                )
                log.info("re-created ephemeral node %s", path)
            except NodeExistsError:
                log.warning("ephemeral node %s is held by another session now", path)
            except (KazooException, StateManagerError) as exc:
                log.error("cannot re-create ephemeral node %s: %s", path, exc)

    # -- primitives --

    def _read(self, path: str) -> bytes | None:
        try:
            data, _ = self._wait(f"read {path}", self._client.get_async(self._full(path)))
        except NoNodeError:
            return None
        except KazooException as exc:
            raise self._fail(f"read {path}", exc) from exc
        return bytes(data)

    def _owner(self, full: str, watch: Callable[[Any], None] | None = None) -> int | None:
        """The node's ephemeral owner session (0: persistent), None if absent."""
        stat = self._wait(f"stat {full}", self._client.exists_async(full, watch=watch))
        return None if stat is None else int(stat.ephemeralOwner)

    def _write(self, path: str, data: bytes, ephemeral: bool = False) -> None:
        full = self._full(path)
        try:
            if ephemeral:
                self._write_ephemeral(path, full, data)
                return
            try:
                self._wait(f"write {path}", self._client.set_async(full, data))
            except NoNodeError:
                try:
                    self._wait(
                        f"create {path}", self._client.create_async(full, data, makepath=True)
                    )
                except NodeExistsError:
                    self._wait(f"write {path}", self._client.set_async(full, data))
        except KazooException as exc:
            raise self._fail(f"write {path}", exc) from exc

    def _write_ephemeral(self, path: str, full: str, data: bytes) -> None:
        """Ours afterwards, whoever held it before (as localfs overwrites)."""
        for _ in range(5):
            try:
                self._wait(
                    f"create {path}",
                    self._client.create_async(full, data, ephemeral=True, makepath=True),
                )
                break
            except NodeExistsError:
                pass
            owner = self._owner(full)
            if owner is None:
                continue
            try:
                if owner == self._live_session():
                    self._wait(f"write {path}", self._client.set_async(full, data))
                    break
                self._wait(f"replace {path}", self._client.delete_async(full))
            except NoNodeError:
                continue
        else:
            raise StateManagerError(f"cannot write ephemeral node {path}: it keeps changing")
        with self._lock:
            self._ephemerals[path] = data

    def _create(self, path: str, data: bytes) -> bool:
        try:
            self._wait(
                f"create {path}", self._client.create_async(self._full(path), data, makepath=True)
            )
        except NodeExistsError:
            return False
        except KazooException as exc:
            raise self._fail(f"create {path}", exc) from exc
        return True

    def _delete(self, path: str) -> None:
        with self._lock:
            for key in [k for k in self._ephemerals if k == path or k.startswith(path + "/")]:
                del self._ephemerals[key]
        try:
            self._delete_tree(self._full(path))
        except KazooException as exc:
            raise self._fail(f"delete {path}", exc) from exc

    def _delete_tree(self, full: str) -> None:
        # kazoo's recursive delete makes unbounded blocking calls; this one is bounded.
        for _ in range(5):
            try:
                children = self._wait(f"list {full}", self._client.get_children_async(full))
            except NoNodeError:
                return
            for child in children:
                self._delete_tree(f"{full}/{child}")
            try:
                self._wait(f"delete {full}", self._client.delete_async(full))
                return
            except NoNodeError:
                return
            except NotEmptyError:
                continue  # a child appeared meanwhile
        raise StateManagerError(f"cannot delete {full}: children keep appearing")

    def _children(self, path: str) -> list[str]:
        try:
            return list(
                self._wait(f"list {path}", self._client.get_children_async(self._full(path)))
            )
        except NoNodeError:
            return []
        except KazooException as exc:
            raise self._fail(f"list {path}", exc) from exc

    def _claim(self, path: str, data: bytes, on_change: Callable[[], None] | None) -> bool:
        full = self._full(path)
        watch = self._watch_for(full, on_change) if on_change is not None else None
        try:
            for _ in range(5):
                with contextlib.suppress(NodeExistsError):
                    self._wait(
                        f"create {path}",
                        self._client.create_async(full, data, ephemeral=True, makepath=True),
                    )
                # exists() (re)arms the watch whether or not we hold the node
                owner = self._owner(full, watch)
                if owner is None:
                    continue  # deleted between our create and exists: try again
                if owner != self._live_session():
                    return False
                try:
                    current, _ = self._wait(f"read {path}", self._client.get_async(full))
                    if current != data:
                        self._wait(f"write {path}", self._client.set_async(full, data))
                except NoNodeError:
                    continue
                with self._lock:
                    self._ephemerals[path] = data
                return True
        except KazooException as exc:
            raise self._fail(f"claim {path}", exc) from exc
        raise StateManagerError(f"cannot claim {path}: it keeps changing")

    def _watch_for(self, full: str, on_change: Callable[[], None]) -> Callable[[Any], None]:
        # kazoo keeps watchers in a set per path: one stable function per path
        # means a re-armed watch is not registered twice.
        with self._lock:
            watcher = self._watchers.get(full)
            if watcher is None:

                def watcher(event: Any) -> None:
                    on_change()

                self._watchers[full] = watcher
            return watcher

    def _delete_if(self, path: str, predicate: Callable[[bytes], bool]) -> bool:
        full = self._full(path)
        try:
            data, stat = self._wait(f"read {path}", self._client.get_async(full))
            if not predicate(bytes(data)):
                return False
            self._wait(f"delete {path}", self._client.delete_async(full, version=stat.version))
        except (NoNodeError, BadVersionError):
            return False
        except KazooException as exc:
            raise self._fail(f"delete {path}", exc) from exc
        with self._lock:
            self._ephemerals.pop(path, None)
        return True

    def add_state_listener(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def close(self) -> None:
        """Close the session: ZooKeeper removes its ephemeral nodes at once."""
        self._listeners.clear()
        if self._closed:
            return
        self._closed = True
        try:
            self._client.stop()
            self._client.close()
        except Exception:
            log.exception("closing the ZooKeeper client failed")

    # -- for tests --

    @property
    def session_id(self) -> int | None:
        return self._session_id


__all__ = ["ZooKeeperStateManager"]
