"""Component specs: what ``Spout.spec()`` and ``Bolt.spec()`` return."""

from __future__ import annotations

import uuid
from typing import Any

from heronpy_lite.api.stream import Grouping, Stream


class GlobalStreamId:
    """A stream of a component: ``spec['stream']`` or ``GlobalStreamId('name', 'stream')``."""

    def __init__(self, componentId: Any, streamId: str) -> None:
        if not isinstance(componentId, (str, HeronComponentSpec)):
            raise TypeError(f"componentId must be a str or a component spec, got {componentId!r}")
        if not isinstance(streamId, str):
            raise TypeError(f"streamId must be a str, got {streamId!r}")
        self._component_id = componentId
        self.stream_id = streamId

    @property
    def component_id(self) -> str:
        if isinstance(self._component_id, HeronComponentSpec):
            if self._component_id.name is None:
                uid = self._component_id.uuid
                return f"<No name available for HeronComponentSpec yet, uuid: {uid}>"
            return self._component_id.name
        return self._component_id

    def __eq__(self, other: object) -> bool:
        return (
            hasattr(other, "component_id")
            and hasattr(other, "stream_id")
            and self.component_id == other.component_id
            and self.stream_id == other.stream_id
        )

    def __hash__(self) -> int:
        return hash(str(self))

    def __str__(self) -> str:
        return f"{self.component_id}:{self.stream_id}"

    __repr__ = __str__


class HeronComponentSpec:
    """A component in a topology: its class, parallelism, inputs and outputs.

    ``name`` may be None until the spec is assigned to a `Topology` class
    attribute, whose name it then takes.
    """

    def __init__(
        self,
        name: str | None,
        python_class_path: str,
        is_spout: bool,
        par: int,
        inputs: Any = None,
        outputs: Any = None,
        config: Any = None,
        python_class: type | None = None,
    ) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"component name must be a str, got {name!r}")
        self.name = name
        self.python_class_path = python_class_path
        self.python_class = python_class
        self.is_spout = is_spout
        self.parallelism = par
        self.inputs = inputs
        self.outputs = outputs
        self.custom_config = config
        self.uuid = str(uuid.uuid4())

    def get_out_streamids(self) -> set[str]:
        return set(self.output_fields())

    def output_fields(self) -> dict[str, list[str]]:
        """Declared streams and their fields: strings go to ``default``."""
        if self.outputs is None:
            return {}
        if not isinstance(self.outputs, (list, tuple)):
            raise TypeError(f"outputs of {self.name} must be a list, got {self.outputs!r}")
        result: dict[str, list[str]] = {}
        for out in self.outputs:
            if isinstance(out, str):
                result.setdefault(Stream.DEFAULT_STREAM_ID, []).append(out)
            elif isinstance(out, Stream):
                if out.stream_id == Stream.DEFAULT_STREAM_ID:
                    result.setdefault(out.stream_id, []).extend(out.fields)
                else:
                    result[out.stream_id] = list(out.fields)
            else:
                raise TypeError(f"outputs of {self.name} must be str or Stream, got {out!r}")
        return result

    def __getitem__(self, stream_id: str) -> GlobalStreamId:
        if stream_id not in self.get_out_streamids():
            raise ValueError(
                f"{self.name or self.python_class_path} does not declare "
                f"an output stream {stream_id!r}"
            )
        return GlobalStreamId(self, stream_id)

    def __repr__(self) -> str:
        return (
            f"HeronComponentSpec({self.name!r}, {self.python_class_path!r}, par={self.parallelism})"
        )


def normalize_inputs(spec: HeronComponentSpec) -> dict[GlobalStreamId, Any]:
    """heronpy's accepted ``inputs`` forms, as one ``{GlobalStreamId: grouping}`` dict.

    Raises ValueError/TypeError with the component's name for a form heronpy
    would reject.
    """
    inputs = spec.inputs
    where = f"inputs of {spec.name!r}"
    result: dict[GlobalStreamId, Any] = {}
    if isinstance(inputs, dict):
        for key, grouping in inputs.items():
            if not Grouping.is_grouping_sane(grouping):
                raise ValueError(f"{where}: {grouping!r} is not a Grouping")
            result[_stream_key(key, where)] = grouping
    elif isinstance(inputs, (list, tuple)):
        for key in inputs:
            result[_stream_key(key, where)] = Grouping.SHUFFLE
    else:
        raise TypeError(f"{where} must be a dict or a list, got {inputs!r}")
    return result


def _stream_key(key: Any, where: str) -> GlobalStreamId:
    if isinstance(key, HeronComponentSpec):
        return GlobalStreamId(key, Stream.DEFAULT_STREAM_ID)
    if isinstance(key, GlobalStreamId):
        return key
    if isinstance(key, str):
        return GlobalStreamId(key, Stream.DEFAULT_STREAM_ID)
    raise ValueError(f"{where}: {key!r} is neither a component spec nor a stream")
