"""A key and its window, as keyed window operators hand them on
(``heronpy.streamlet.keyedwindow``)."""

from __future__ import annotations

from typing import Any

from heronpy_lite.streamlet.window import Window


class KeyedWindow(tuple):  # type: ignore[type-arg]
    """``key`` and `Window` of one result of a keyed window operation.

    A tuple ``(key, window)`` underneath (see `Window`); equal key and bounds
    make equal, hashable KeyedWindows.
    """

    __slots__ = ()

    def __new__(cls, key: Any, window: Window) -> KeyedWindow:
        if not isinstance(window, Window):
            raise RuntimeError("Window of KeyedWindow has to be of type Window")
        return tuple.__new__(cls, (key, window))

    @property
    def key(self) -> Any:
        return self[0]

    @property
    def window(self) -> Window:
        return self[1]  # type: ignore[no-any-return]

    _key = key
    _window = window

    def get_key(self) -> Any:
        return self[0]

    def get_window(self) -> Window:
        return self[1]  # type: ignore[no-any-return]

    def __getnewargs__(self) -> tuple[Any, Any]:
        return (self[0], self[1])

    def __repr__(self) -> str:
        return f"KeyedWindow {{key: {self[0]}, window: {self[1]!r}}}"
