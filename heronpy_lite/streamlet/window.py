"""A window's bounds, as window operators hand them on (``heronpy.streamlet.window``)."""

from __future__ import annotations

from typing import Any


class Window(tuple):  # type: ignore[type-arg]
    """The bounds of one window: ``start`` and ``end`` in seconds.

    A tuple ``(start, end)`` underneath, so it crosses processes as any
    msgpack value does (arriving as a list where the API does not rebuild it);
    heronpy's private ``_start_time`` and ``_end_time`` are kept as aliases.
    """

    __slots__ = ()

    def __new__(cls, start_time: Any, end_time: Any) -> Window:
        return tuple.__new__(cls, (start_time, end_time))

    @property
    def start(self) -> Any:
        return self[0]

    @property
    def end(self) -> Any:
        return self[1]

    _start_time = start
    _end_time = end

    def get_start_time(self) -> Any:
        return self[0]

    def get_end_time(self) -> Any:
        return self[1]

    def __getnewargs__(self) -> tuple[Any, Any]:
        return (self[0], self[1])

    def __repr__(self) -> str:
        return f"Window {{start_time: {self[0]}, end_time: {self[1]}}}"
