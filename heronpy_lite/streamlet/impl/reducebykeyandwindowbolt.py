"""``Streamlet.reduce_by_key_and_window``: one result per key and window."""

from __future__ import annotations

from typing import Any

from heronpy_lite.api.bolt._windows import hashable
from heronpy_lite.streamlet.impl.streamletboltbase import (
    KEYED,
    KEYED_WINDOWED,
    keyed_plain,
)
from heronpy_lite.streamlet.impl.windowoperator import (
    WindowedStreamlet,
    WindowOperatorBolt,
    folds,
)
from heronpy_lite.streamlet.keyedwindow import KeyedWindow
from heronpy_lite.streamlet.streamlet import Streamlet
from heronpy_lite.streamlet.window import Window
from heronpy_lite.streamlet.windowconfig import WindowConfig


class ReduceByKeyAndWindowBolt(WindowOperatorBolt):
    """Emits ``(KeyedWindow(key, Window), values of the key folded)`` per key, in the
    order keys first appear in the window; anchored to that key's tuples."""

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        super().initialize(config, context)
        #: every input is the keyed stream of a plain streamlet: read keys inline
        self.plain_keys = all(i.read is keyed_plain for i in self.plan.inputs.values())

    def _fold(self) -> Any:
        return self.plan.function if folds(self) else None

    def _item(self, tup: Any) -> Any:
        if self.plain_keys:
            key, value = tup.values
            return (key if type(key) is str else hashable(key), value)
        return self.element_of(tup)

    def process_window(self, window: Any, tuples: list[Any]) -> None:
        if self._folding:
            bounds = Window(window.start, window.end)
            send = self.send
            if self._holding:  # (key, result, the key's tuples in the window)
                for key, result, anchors in tuples:
                    send((KeyedWindow(key, bounds), result), anchors)
            else:
                for key, result in tuples:
                    send((KeyedWindow(key, bounds), result), None)
            return
        fn, element_of, reliable = self.plan.function, self.element_of, self.reliable
        plain = self.plain_keys
        groups: dict[Any, list[Any]] = {}
        for tup in tuples:
            if plain:
                key, value = tup.values
                if type(key) is not str:
                    key = hashable(key)
            else:
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
