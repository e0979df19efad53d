"""``heronpy.connectors.mock.arraylooper``: an iterable, over and over."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from typing import Any

from heronpy_lite.streamlet.generator import Generator


class ArrayLooper(Generator):
    """Emits the items of ``user_iterable`` in order, forever; ``sleep`` seconds
    before each one if given (heronpy's pacing: it blocks the source's task)."""

    def __init__(self, user_iterable: Iterable[Any], sleep: float | None = None) -> None:
        super().__init__()
        if not isinstance(user_iterable, Iterable):
            raise RuntimeError("ArrayLooper must be passed an iterable")
        self._user_iterable = user_iterable
        self._sleep = sleep
        self._curiter: Iterator[Any] | None = None

    def setup(self, context: Any) -> None:
        self._curiter = itertools.cycle(self._user_iterable)

    def get(self) -> Any:
        if self._sleep is not None:
            time.sleep(self._sleep)
        assert self._curiter is not None
        return next(self._curiter)
