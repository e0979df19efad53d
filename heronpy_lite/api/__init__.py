"""heronpy_lite's user API: heronpy's names, importable flat from here.

Module paths mirror heronpy 0.20.5's (``heronpy_lite.api.spout.spout.Spout``,
``heronpy_lite.api.bolt.base_bolt.BaseBolt``, ``heronpy_lite.api.task_hook``,
``heronpy_lite.api.global_metrics``, ...). A heronpy topology needs no change:
inside ``heronpy-lite submit`` and its instances ``heronpy.X`` *is*
``heronpy_lite.X`` (see `_import_hook`).
"""

from heronpy_lite.api import api_constants
from heronpy_lite.api.bolt.bolt import BaseBolt, Bolt
from heronpy_lite.api.component.component_spec import GlobalStreamId, HeronComponentSpec
from heronpy_lite.api.custom_grouping import ICustomGrouping
from heronpy_lite.api.metrics import (
    AssignableMetrics,
    CountMetric,
    IMetric,
    IReducer,
    MeanReducer,
    MultiAssignableMetrics,
    MultiCountMetric,
    MultiReducedMetric,
    ReducedMetric,
)
from heronpy_lite.api.spout.spout import BaseSpout, Spout
from heronpy_lite.api.stream import Grouping, Stream
from heronpy_lite.api.topology import Topology, TopologyBuilder
from heronpy_lite.api.topology_context import TopologyContext
from heronpy_lite.api.tuple import HeronTuple, Tuple, TupleHelper
from heronpy_lite.errors import EmitError

__all__ = [
    "AssignableMetrics",
    "BaseBolt",
    "BaseSpout",
    "Bolt",
    "CountMetric",
    "EmitError",
    "GlobalStreamId",
    "Grouping",
    "HeronComponentSpec",
    "HeronTuple",
    "ICustomGrouping",
    "IMetric",
    "IReducer",
    "MeanReducer",
    "MultiAssignableMetrics",
    "MultiCountMetric",
    "MultiReducedMetric",
    "ReducedMetric",
    "Spout",
    "Stream",
    "Topology",
    "TopologyBuilder",
    "TopologyContext",
    "Tuple",
    "TupleHelper",
    "api_constants",
]
