"""Components whose state is checkpointed (``heronpy.api.state.stateful_component``)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any


class StatefulComponent:
    """Mix into a Spout or Bolt to keep state across failures (EFFECTIVELY_ONCE).

    The engine calls ``init_state(state)`` before ``initialize``, with the
    state of the latest complete checkpoint (empty at the first start), and
    ``pre_save(checkpoint_id)`` just before it stores the state for a
    checkpoint. Keep the ``state`` object and write what must survive into it.
    """

    @abstractmethod
    def init_state(self, stateful_state: Any) -> None:
        """Receive the state of the latest complete checkpoint (a `HashMapState`)."""

    @abstractmethod
    def pre_save(self, checkpoint_id: Any) -> None:
        """Called before the state is stored for checkpoint ``checkpoint_id``."""
