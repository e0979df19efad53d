"""What the streamlet sources share: the plan, and replay in ATLEAST_ONCE."""

from __future__ import annotations

from collections import deque
from typing import Any

from heronpy_lite.api.spout.spout import Spout
from heronpy_lite.api.state.state import HashMapState
from heronpy_lite.api.state.stateful_component import StatefulComponent
from heronpy_lite.streamlet.impl.streamletboltbase import (
    KEYED,
    OUTPUT,
    PLAN,
    Plan,
    StreamletBoltBase,
    is_reliable,
    key_value,
)


class StreamletSpoutBase(StreamletBoltBase):
    """The output streams every streamlet source declares (as every operator does)."""


class StreamletSpout(Spout, StatefulComponent, StreamletSpoutBase):
    """A source: ``next_element()`` gives the next element or `NOTHING`.

    ATMOST_ONCE: each element is emitted and forgotten. ATLEAST_ONCE: each
    element is emitted with an id and kept until its tuple tree is acked;
    a failed one is emitted again before any new element (the engine's
    ``topology.max.spout.pending`` bounds how many are kept). An element
    with both kinds of consumers is two trees, replayed separately.
    """

    NOTHING: Any = object()
    _state: Any = None

    def init_state(self, stateful_state: Any) -> None:
        self._state = stateful_state

    def pre_save(self, checkpoint_id: Any) -> None:
        pass

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        plan = config.get(PLAN)
        if not isinstance(plan, Plan):
            raise RuntimeError(f"{type(self).__name__} is built by the streamlet Builder only")
        self.plan = plan
        self.reliable = is_reliable(config)
        self._streams = [
            s for s, on in ((OUTPUT, plan.emits_output), (KEYED, plan.emits_keyed)) if on
        ]
        self._pending: dict[int, tuple[str, Any]] = {}
        self._replay: deque[int] = deque()
        self._next_id = 0
        if not self.reliable and self._streams == [OUTPUT]:
            emit = self.emit

            def send_output(element: Any) -> None:
                emit([element], None, OUTPUT)

            self.send = send_output  # type: ignore[method-assign]
        self.setup(config, context)

    def setup(self, config: dict[str, Any], context: Any) -> None:
        """Source-specific start."""

    def next_element(self) -> Any:
        raise NotImplementedError

    def state(self) -> Any:
        if self._state is None:
            self._state = HashMapState()
        return self._state

    def _values(self, stream: str, element: Any) -> list[Any]:
        return [element] if stream == OUTPUT else list(key_value(element, self.plan.name))

    def send(self, element: Any) -> None:
        """Emit one element on every stream that has consumers."""
        for stream in self._streams:
            if self.reliable:
                tup_id = self._next_id
                self._next_id += 1
                self._pending[tup_id] = (stream, element)
                self.emit(self._values(stream, element), tup_id, stream)
            else:
                self.emit(self._values(stream, element), None, stream)

    def next_tuple(self) -> None:
        if self._replay:
            tup_id = self._replay.popleft()
            stream, element = self._pending[tup_id]
            self.emit(self._values(stream, element), tup_id, stream)
            return
        element = self.next_element()
        if element is not self.NOTHING:
            self.send(element)

    def ack(self, tup_id: Any) -> None:
        self._pending.pop(tup_id, None)

    def fail(self, tup_id: Any) -> None:
        if tup_id in self._pending:
            self._replay.append(tup_id)
