"""heronpy's serializer interface (``heronpy.api.serializer``).

heronpy_lite does not use it: tuples travel as msgpack, and user objects are
never pickled (every instance imports the topology itself). It is here so that
code importing it runs; `PythonSerializer` uses the standard library's pickle
(heronpy: cloudpickle) and is only ever called by user code, on its own data.
"""

from __future__ import annotations

import pickle
from abc import abstractmethod
from typing import Any


class IHeronSerializer:
    """Serializer interface for Heron."""

    @abstractmethod
    def initialize(self, config: Any) -> None:
        """Initializes the serializer."""

    @abstractmethod
    def serialize(self, obj: Any) -> bytes:
        """The object as bytes."""

    @abstractmethod
    def deserialize(self, input_str: bytes) -> Any:
        """The object back from bytes."""


class PythonSerializer(IHeronSerializer):
    """pickle; never applied by heronpy_lite to bytes from a socket."""

    def initialize(self, config: Any = None) -> None:
        pass

    def serialize(self, obj: Any) -> bytes:
        return pickle.dumps(obj)

    def deserialize(self, input_str: bytes) -> Any:
        return pickle.loads(input_str)


default_serializer = PythonSerializer()
