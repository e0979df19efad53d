"""The base of spouts and bolts (``heronpy.api.component.base_component``)."""

from __future__ import annotations

import logging
from typing import Any


class BaseComponent:
    """A spout or bolt, built by the runtime as ``cls(delegate=host)``.

    ``emit``, ``ack``, ``fail``, ``log`` and ``logger`` forward to the
    delegate, which is the instance process hosting this task.
    """

    def __init__(self, delegate: Any) -> None:
        self.delegate = delegate
        self.logger: logging.Logger = delegate.logger

    def log(self, message: str, level: str | None = None) -> None:
        """Log through the instance's logger.

        Args:
            message: the text.
            level: ``"trace"``, ``"debug"``, ``"info"`` (default), ``"warn"`` or ``"error"``.
        """
        self.delegate.log(message, level)
