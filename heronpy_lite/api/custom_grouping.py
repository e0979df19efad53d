"""Custom groupings (``heronpy.api.custom_grouping``)."""

from __future__ import annotations

from typing import Any


class ICustomGrouping:
    """Chooses the destination tasks of each tuple itself.

    One instance is prepared per (sending task, consumer, stream) in the
    sending instance process; ``choose_tasks`` runs at emit time.
    """

    def prepare(self, context: Any, component: str, stream: str, target_tasks: list[int]) -> None:
        """Called once before the first ``choose_tasks``.

        Args:
            context: the sending task's TopologyContext.
            component: the name of the component the tuples come from.
            stream: the stream the tuples are emitted on.
            target_tasks: task ids of the consumer, in ascending order.
        """
        raise NotImplementedError("ICustomGrouping.prepare is not implemented")

    def choose_tasks(self, values: list[Any]) -> list[int]:
        """Return the task ids (a subset of ``target_tasks``) that get ``values``."""
        raise NotImplementedError("ICustomGrouping.choose_tasks is not implemented")
