"""What the window operators (reduce_by_window, reduce_by_key_and_window, joins)
share: a `WindowedBolt` whose windows come from the `WindowConfig`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from heronpy_lite.api.bolt._windows import SESSION, TIME, Windowing
from heronpy_lite.api.bolt.windowed import WindowedBolt
from heronpy_lite.streamlet.impl.streamletboltbase import (
    PLAN,
    Plan,
    StreamletBoltBase,
    is_reliable,
    sender,
)
from heronpy_lite.streamlet.streamlet import Streamlet, _check_callable
from heronpy_lite.streamlet.windowconfig import WindowConfig


class WindowOperatorBolt(WindowedBolt, StreamletBoltBase):
    """A WindowedBolt that reads its `Plan`; ``process_window`` emits results
    anchored to the tuples they come from."""

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        plan = config.get(PLAN)
        if not isinstance(plan, Plan):
            raise RuntimeError(f"{type(self).__name__} is built by the streamlet Builder only")
        self.plan = plan
        super().initialize(config, context)
        self.reliable = is_reliable(config)
        self.send = sender(self.emit, plan, self.reliable)
        self.element_of = plan.element_of()

    def _name(self) -> str:
        return self.plan.name


def folds(bolt: WindowedBolt) -> bool:
    """Whether a reduce operator folds values per pane as they arrive instead of
    keeping the window's values: over time windows, sliding or tumbling, except
    in event time at least once.

    Folding is in arrival order within a pane, which in processing time is time
    order. In event time it is not: at most once folding is what keeps memory
    bounded by keys x panes, so it folds anyway (the function must then be
    commutative too, see docs/decisions/0046); at least once the window holds
    every tuple to ack it in any case, so it keeps the values too and reduces
    them in time order, as a window of tuples always did."""
    w = bolt._windowing
    return w.kind == TIME and not (bolt._reliable and w.event_time)


class _ElementFunction:
    """A function of the element, as the window core wants a function of the tuple."""

    def __init__(self, fn: Callable[[Any], Any], element_of: Callable[[Any], Any]) -> None:
        self._fn = fn
        self._element_of = element_of

    def __call__(self, tup: Any) -> Any:
        return self._fn(self._element_of(tup))


def _key_of_pair(element: Any) -> Any:
    return element[0]


class WindowedStreamlet(Streamlet):
    """A window operation: its WindowConfig becomes the bolt's Windowing."""

    #: keyed operations keep sessions per key
    _keyed = False

    def __init__(
        self, window_config: WindowConfig, function: Any, what: str, *parents: Streamlet
    ) -> None:
        if not isinstance(window_config, WindowConfig):
            raise RuntimeError("window config has to be of type WindowConfig")
        _check_callable(function, what)
        super().__init__(*parents)
        self._window_config = window_config
        self._window_function = function

    def _function(self) -> Any:
        return self._window_function

    def _config(self, plan: Plan) -> dict[str, Any]:
        windowing: Windowing = self._window_config._windowing
        element_of = plan.element_of()
        if windowing.event_time:
            windowing = dataclasses.replace(
                windowing, timestamp=_ElementFunction(windowing.timestamp, element_of)
            )
        if windowing.kind == SESSION and self._keyed:
            windowing = dataclasses.replace(
                windowing, key=_ElementFunction(_key_of_pair, element_of)
            )
        return {PLAN: plan, WindowedBolt.WINDOWING: windowing}
