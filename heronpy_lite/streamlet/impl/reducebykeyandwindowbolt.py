"""``Streamlet.reduce_by_key_and_window``: one result per key and window."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.impl.streamletboltbase import KEYED, KEYED_WINDOWED
from heronpy_lite.streamlet.impl.windowoperator import WindowedStreamlet, WindowOperatorBolt
from heronpy_lite.streamlet.keyedwindow import KeyedWindow
from heronpy_lite.streamlet.streamlet import Streamlet
from heronpy_lite.streamlet.window import Window
from heronpy_lite.streamlet.windowconfig import WindowConfig


class ReduceByKeyAndWindowBolt(WindowOperatorBolt):
    """Emits ``(KeyedWindow(key, Window), values of the key folded)`` per key, in the
    order keys first appear in the window; anchored to that key's tuples."""

    def process_window(self, window: Any, tuples: list[Any]) -> None:
        fn, element_of, reliable = self.plan.function, self.element_of, self.reliable
        groups: dict[Any, list[Any]] = {}
        for tup in tuples:
            key, value = element_of(tup)
            group = groups.get(key)
            if group is None:
                groups[key] = [value, [tup] if reliable else None]
            else:
                group[0] = fn(group[0], value)
                if reliable:
                    group[1].append(tup)
        bounds = Window(window.start, window.end)
        for key, (result, anchors) in groups.items():
            self.send((KeyedWindow(key, bounds), result), anchors)


class ReduceByKeyAndWindowStreamlet(WindowedStreamlet):
    _prefix = "reducebykeyandwindow"
    _kind = KEYED_WINDOWED
    _keyed = True

    def __init__(self, window_config: WindowConfig, reduce_function: Any, parent: Any) -> None:
        super().__init__(window_config, reduce_function, "ReduceByKeyAndWindow", parent)
        self._num_partitions = 1  # heronpy's default

    def _reads(self) -> list[tuple[Streamlet, str]]:
        return [(self._parents[0], KEYED)]

    def _component(self) -> type:
        return ReduceByKeyAndWindowBolt
