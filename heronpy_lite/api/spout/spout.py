"""Spouts: the sources of a topology (``heronpy.api.spout.spout``)."""

from __future__ import annotations

from typing import Any

from heronpy_lite.api.spout.base_spout import BaseSpout

__all__ = ["BaseSpout", "Spout"]


class Spout(BaseSpout):
    """A source of tuples. Override ``next_tuple``; the rest is optional."""

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        """Called once in the instance process before the first ``next_tuple``."""

    def close(self) -> None:
        """Called when the instance shuts down."""

    def next_tuple(self) -> None:
        """Emit zero or more tuples. Called repeatedly while the topology is active."""
        raise NotImplementedError("Spout.next_tuple is not implemented")

    def ack(self, tup_id: Any) -> None:
        """The tuple tree rooted at ``tup_id`` was fully processed."""

    def fail(self, tup_id: Any) -> None:
        """The tuple tree rooted at ``tup_id`` failed or timed out."""

    def activate(self) -> None:
        """The topology was activated: ``next_tuple`` calls resume."""

    def deactivate(self) -> None:
        """The topology was deactivated: ``next_tuple`` is no longer called."""
