"""The base of spouts (``heronpy.api.spout.base_spout``): spec and emit."""

from __future__ import annotations

import copy
from typing import Any

from heronpy_lite.api.component.base_component import BaseComponent
from heronpy_lite.api.component.component_spec import HeronComponentSpec
from heronpy_lite.api.stream import Stream


class BaseSpout(BaseComponent):
    """Spec and emit for spouts; subclass `Spout` instead."""

    @classmethod
    def spec(
        cls,
        name: str | None = None,
        par: int = 1,
        config: dict[str, Any] | None = None,
        optional_outputs: list[str | Stream] | None = None,
    ) -> HeronComponentSpec:
        """Declare this spout in a topology.

        Args:
            name: component name; in a `Topology` class it defaults to the
                attribute name.
            par: number of tasks.
            config: component config, merged over the topology's.
            optional_outputs: streams declared in addition to ``outputs``.
        """
        outputs = copy.copy(list(getattr(cls, "outputs", []) or []))
        if optional_outputs is not None:
            outputs.extend(optional_outputs)
        return HeronComponentSpec(
            name,
            f"{cls.__module__}.{cls.__qualname__}",
            True,
            par,
            inputs=None,
            outputs=outputs,
            config=config,
            python_class=cls,
        )

    def emit(
        self,
        tup: list[Any] | tuple[Any, ...],
        tup_id: Any = None,
        stream: str = Stream.DEFAULT_STREAM_ID,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        """Emit a tuple.

        Args:
            tup: the values, one per declared field of ``stream``.
            tup_id: a message id; ``ack(tup_id)``/``fail(tup_id)`` report its fate.
            stream: the output stream.
            direct_task: the destination task, for consumers with ``Grouping.DIRECT``.
            need_task_ids: return the list of destination task ids.
        """
        # positional, as heronpy calls its delegate (see BaseBolt.emit)
        task_ids: list[int] | None = self.delegate.emit(
            tup, tup_id, stream, direct_task, need_task_ids
        )
        return task_ids
