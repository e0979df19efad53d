"""The state a stateful component keeps across checkpoints (``heronpy.api.state.state``).

`HashMapState` is what the engine hands to ``init_state``. Besides heronpy's
``put``/``get``/``enumerate``/``clear`` it is a mutable mapping
(``state[key] = value``, ``key in state``, iteration), which heronpy's own
window bolts use but heronpy's class lacks. It remembers which keys changed
since the last checkpoint, so that a checkpoint can store only those; a key
whose value is a list or a dict counts as changed at every checkpoint, since
it may have been changed in place.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, MutableMapping
from typing import Any


class State:
    """A key/value store with iteration (heronpy's interface)."""

    @abstractmethod
    def put(self, key: Any, value: Any) -> None:
        """Set ``key`` to ``value``."""

    @abstractmethod
    def get(self, key: Any) -> Any:
        """The value of ``key``, or None."""

    @abstractmethod
    def enumerate(self) -> Any:
        """Iterate over the state."""

    @abstractmethod
    def clear(self) -> None:
        """Remove every key."""


_MUTABLE = (list, dict)


class HashMapState(State, MutableMapping[Any, Any]):
    """The default `State`: a dict that tracks its changes.

    Keys and values must be msgpack types (str, int, float, bool, None,
    bytes, lists and dicts of them) for the state to be checkpointed.
    """

    def __init__(self, initial: dict[Any, Any] | None = None) -> None:
        self._dict: dict[Any, Any] = dict(initial or {})
        #: keys set or deleted since the last take_changes()
        self._changed: set[Any] = set()
        #: keys whose value is a list or dict (changed in place, unseen)
        self._mutable: set[Any] = {k for k, v in self._dict.items() if type(v) in _MUTABLE}
        self._cleared = False

    # -- heronpy's interface --

    def put(self, key: Any, value: Any) -> None:
        self[key] = value

    def get(self, key: Any, default: Any = None) -> Any:
        return self._dict.get(key, default)

    def enumerate(self) -> Any:
        """``enumerate`` over the keys, as heronpy's HashMapState does: pairs of
        (position, key). Use ``items()`` for (key, value) pairs."""
        return enumerate(self._dict)

    def clear(self) -> None:
        self._dict.clear()
        self._changed.clear()
        self._mutable.clear()
        self._cleared = True

    # -- mapping --

    def __getitem__(self, key: Any) -> Any:
        return self._dict[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._dict[key] = value
        self._changed.add(key)
        if type(value) in _MUTABLE:
            self._mutable.add(key)
        else:
            self._mutable.discard(key)

    def __delitem__(self, key: Any) -> None:
        del self._dict[key]
        self._changed.add(key)
        self._mutable.discard(key)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __repr__(self) -> str:
        return f"HashMapState({self._dict!r})"

    def __str__(self) -> str:
        return str(self._dict)

    # -- for the checkpointing engine --

    def take_changes(self) -> tuple[bool, dict[Any, Any], list[Any]]:
        """What changed since the last call: (cleared first, keys set to their
        values, keys deleted); the record of changes starts empty again. Keys
        holding a list or a dict are always among those set."""
        cleared, self._cleared = self._cleared, False
        changed, self._changed = self._changed, set()
        changed |= self._mutable
        updated = {k: self._dict[k] for k in changed if k in self._dict}
        deleted = [k for k in changed if k not in self._dict]
        return cleared, updated, deleted

    def snapshot(self) -> dict[Any, Any]:
        """Every key and value, as a plain dict (a copy of the mapping, not of the values)."""
        return dict(self._dict)
