"""``Streamlet.log``: every element in the task's log."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.impl.streamletboltbase import StreamletBolt
from heronpy_lite.streamlet.streamlet import Streamlet


class LogBolt(StreamletBolt):
    """Logs ``str(element)`` at INFO."""

    def process(self, tup: Any) -> None:
        self.logger.info("%s", self.element_of(tup))
        self.ack(tup)


class LogStreamlet(Streamlet):
    _prefix = "log"

    def _component(self) -> type:
        return LogBolt
