"""Bolts: the operators of a topology (``heronpy.api.bolt.bolt``)."""

from __future__ import annotations

from typing import Any

from heronpy_lite.api.bolt.base_bolt import BaseBolt

__all__ = ["BaseBolt", "Bolt"]


class Bolt(BaseBolt):
    """An operator. Override ``process``; ``process_tick`` for tick tuples."""

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        """Called once in the instance process before the first tuple."""

    def process(self, tup: Any) -> None:
        """Handle one input tuple."""
        raise NotImplementedError("Bolt.process is not implemented")

    def process_tick(self, tup: Any) -> None:
        """Handle a tick tuple (every ``topology.tick.tuple.freq.secs``)."""
