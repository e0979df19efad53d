"""``Streamlet.join`` and its outer variants: pairs of equal keys in one window."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.impl.streamletboltbase import KEYED, KEYED_WINDOWED
from heronpy_lite.streamlet.impl.windowoperator import WindowedStreamlet, WindowOperatorBolt
from heronpy_lite.streamlet.keyedwindow import KeyedWindow
from heronpy_lite.streamlet.streamlet import Streamlet
from heronpy_lite.streamlet.window import Window
from heronpy_lite.streamlet.windowconfig import WindowConfig

JOIN_TYPES = ("inner", "outer_left", "outer_right", "outer")


class JoinBolt(WindowOperatorBolt):
    """Per window and key: every (left, right) pair through the join function; for
    outer joins, a key present on one side only gives ``(value, None)`` or
    ``(None, value)``. Keys in the order they first appear, values in window order.
    A streamlet joined with itself is on both sides."""

    INNER, OUTER_LEFT, OUTER_RIGHT, OUTER = JOIN_TYPES

    def process_window(self, window: Any, tuples: list[Any]) -> None:
        fn, element_of = self.plan.function, self.element_of
        how = self.plan.options["how"]
        sides = {src: i.sides for src, i in self.plan.inputs.items()}
        table: dict[Any, tuple[list[Any], list[Any]]] = {}
        for tup in tuples:
            key, value = element_of(tup)
            entry = table.get(key)
            if entry is None:
                entry = table[key] = ([], [])
            for side in sides[(tup.component, tup.stream)]:
                entry[side].append((value, tup))
        bounds = Window(window.start, window.end)
        send = self.send
        for key, (left, right) in table.items():
            keyed = KeyedWindow(key, bounds)
            if left and right:
                for lv, lt in left:
                    for rv, rt in right:
                        send((keyed, fn(lv, rv)), [lt] if lt is rt else [lt, rt])
            elif left and how in ("outer_left", "outer"):
                for lv, lt in left:
                    send((keyed, fn(lv, None)), lt)
            elif right and how in ("outer_right", "outer"):
                for rv, rt in right:
                    send((keyed, fn(None, rv)), rt)


class JoinStreamlet(WindowedStreamlet):
    _prefix = "join"
    _kind = KEYED_WINDOWED
    _keyed = True

    def __init__(
        self,
        how: str,
        window_config: WindowConfig,
        join_function: Any,
        left: Streamlet,
        right: Streamlet,
    ) -> None:
        if how not in JOIN_TYPES:
            raise RuntimeError(f"join type has to be one of {', '.join(JOIN_TYPES)}")
        if not isinstance(right, Streamlet):
            raise RuntimeError("Parent of Join has to be a Streamlet")
        super().__init__(window_config, join_function, "Join", left, right)
        self._how = how

    def _reads(self) -> list[tuple[Streamlet, str]]:
        return [(self._parents[0], KEYED), (self._parents[1], KEYED)]

    def _options(self) -> dict[str, Any]:
        return {"how": self._how}

    def _component(self) -> type:
        return JoinBolt
