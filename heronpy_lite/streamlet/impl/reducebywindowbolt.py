"""``Streamlet.reduce_by_window``: one result per window."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.impl.streamletboltbase import WINDOWED
from heronpy_lite.streamlet.impl.windowoperator import (
    WindowedStreamlet,
    WindowOperatorBolt,
    folds,
)
from heronpy_lite.streamlet.window import Window
from heronpy_lite.streamlet.windowconfig import WindowConfig


class ReduceByWindowBolt(WindowOperatorBolt):
    """Emits ``(Window, the window's elements folded with the function)``."""

    def _fold(self) -> Any:
        return self.plan.function if folds(self) else None

    def _item(self, tup: Any) -> Any:
        return (None, self.element_of(tup))

    def process_window(self, window: Any, tuples: list[Any]) -> None:
        if self._folding:  # one key, None: (None, result), at least once with the tuples
            bounds = Window(window.start, window.end)
            for item in tuples:
                self.send((bounds, item[1]), item[2] if self._holding else None)
            return
        fn, element_of = self.plan.function, self.element_of
        result = element_of(tuples[0])
        for tup in tuples[1:]:
            result = fn(result, element_of(tup))
        self.send((Window(window.start, window.end), result), tuples)


class ReduceByWindowStreamlet(WindowedStreamlet):
    _prefix = "reducebywindow"
    _kind = WINDOWED

    def __init__(self, window_config: WindowConfig, reduce_function: Any, parent: Any) -> None:
        super().__init__(window_config, reduce_function, "ReduceByWindow", parent)
        # one result per window unless asked otherwise (heronpy took the parent's
        # partitions, and hashed the element's first item to pick one)
        self._num_partitions = 1

    def _component(self) -> type:
        return ReduceByWindowBolt
