"""The base of bolts (``heronpy.api.bolt.base_bolt``): spec, emit, ack, fail."""

from __future__ import annotations

from typing import Any

from heronpy_lite.api.component.base_component import BaseComponent
from heronpy_lite.api.component.component_spec import HeronComponentSpec
from heronpy_lite.api.stream import Stream
from heronpy_lite.api.tuple import TupleHelper


class BaseBolt(BaseComponent):
    """Spec, emit, ack and fail for bolts; subclass `Bolt` instead."""

    @classmethod
    def spec(
        cls,
        name: str | None = None,
        inputs: Any = None,
        par: int = 1,
        config: dict[str, Any] | None = None,
        optional_outputs: list[str | Stream] | None = None,
    ) -> HeronComponentSpec:
        """Declare this bolt in a topology.

        Args:
            name: component name; in a `Topology` class it defaults to the
                attribute name.
            inputs: ``{spec: Grouping}``, ``{spec['stream']: Grouping}`` or a
                list of specs (shuffle grouping).
            par: number of tasks.
            config: component config, merged over the topology's.
            optional_outputs: streams declared in addition to ``outputs``.
        """
        outputs = list(getattr(cls, "outputs", []) or [])
        if optional_outputs is not None:
            outputs.extend(optional_outputs)
        return HeronComponentSpec(
            name,
            f"{cls.__module__}.{cls.__qualname__}",
            False,
            par,
            inputs=inputs,
            outputs=outputs,
            config=config,
            python_class=cls,
        )

    def emit(
        self,
        tup: list[Any] | tuple[Any, ...],
        stream: str = Stream.DEFAULT_STREAM_ID,
        anchors: list[Any] | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        """Emit a tuple.

        Args:
            tup: the values, one per declared field of ``stream``.
            stream: the output stream.
            anchors: input tuples this one derives from (ATLEAST_ONCE trees).
            direct_task: the destination task, for consumers with ``Grouping.DIRECT``.
            need_task_ids: return the list of destination task ids.
        """
        # positional, as heronpy calls its delegate: a wrapper component that is
        # another's delegate may name these parameters as it likes
        task_ids: list[int] | None = self.delegate.emit(
            tup, stream, anchors, direct_task, need_task_ids
        )
        return task_ids

    @staticmethod
    def is_tick(tup: Any) -> bool:
        """True for a tick tuple."""
        return bool(tup.stream == TupleHelper.TICK_TUPLE_ID)

    def ack(self, tup: Any) -> None:
        """Mark an input tuple as processed. Bolts are not auto-acked."""
        self.delegate.ack(tup)

    def fail(self, tup: Any) -> None:
        """Mark an input tuple as failed: its tree's spout gets ``fail``."""
        self.delegate.fail(tup)
