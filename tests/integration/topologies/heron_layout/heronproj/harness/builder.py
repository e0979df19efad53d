"""A TopologyBuilder that wraps every component (Heron's TestTopologyBuilder shape)."""

import copy

import heronpy.api.api_constants as api_constants
from heronpy.api.stream import Grouping, Stream
from heronpy.api.topology import Topology, TopologyBuilder, TopologyType

from heronproj.harness import constants as c
from heronproj.harness.bolt import WrapperBolt
from heronproj.harness.common import ResultAggregator
from heronproj.harness.spout import WrapperSpout


class HarnessBuilder(TopologyBuilder):
    AGGREGATOR = "__harness_aggregator"
    DEFAULT_CONFIG = {
        api_constants.TOPOLOGY_DEBUG: True,
        api_constants.TOPOLOGY_RELIABILITY_MODE: api_constants.TopologyReliabilityMode.ATLEAST_ONCE,
        api_constants.TOPOLOGY_PROJECT_NAME: "heronpy-lite-harness",
    }

    def __init__(self, name):
        super().__init__(name)
        self.set_config(dict(self.DEFAULT_CONFIG))
        self.spouts = {}
        self.bolts = {}
        self.prev = {}

    def add_spout(
        self, name, spout_cls, par, config=None, optional_outputs=None, max_executions=None
    ):
        user_spec = spout_cls.spec(name)
        outputs = list(getattr(spout_cls, "outputs", [])) + list(optional_outputs or [])
        config = copy.copy(config or {})
        config[c.MAX_EXECUTIONS] = max_executions
        spec = WrapperSpout.spec(name, par, config, user_spec.python_class_path, outputs)
        self.add_spec(spec)
        self.spouts[name] = spec
        return spec

    def add_bolt(self, name, bolt_cls, par, inputs, config=None, optional_outputs=None):
        user_spec = bolt_cls.spec(name)
        outputs = list(getattr(bolt_cls, "outputs", [])) + list(optional_outputs or [])
        spec = WrapperBolt.spec(
            name, par, inputs, config or {}, user_spec.python_class_path, outputs
        )
        self.add_spec(spec)
        self.bolts[name] = spec
        return spec

    def create_topology(self):
        self.add_bolt(self.AGGREGATOR, ResultAggregator, 1, inputs={})
        for name, spec in self.bolts.items():
            if name == self.AGGREGATOR:
                continue
            for istream in spec.get_protobuf().inputs:
                self.prev.setdefault(name, set()).add(istream.stream.component_name)
        non_terminals = set().union(*self.prev.values()) if self.prev else set()
        terminals = {b for b in self.prev if b not in non_terminals}
        terminals |= {s for s in self.spouts if s not in non_terminals}
        for child, parents in self.prev.items():
            for parent in parents:
                self._add_all_grouping(child, parent, c.CONTROL_STREAM)
        for terminal in terminals:
            spec = self.bolts.get(terminal) or self.spouts[terminal]
            for stream in sorted(spec.get_out_streamids()):
                self._add_all_grouping(self.AGGREGATOR, terminal, stream)
        return TopologyType(self.topology_name, (Topology,), self._construct_topo_class_dict())

    def _add_all_grouping(self, child, parent, stream):
        inputs = self.bolts[child].inputs
        parent_spec = self.bolts.get(parent) or self.spouts[parent]
        if stream == Stream.DEFAULT_STREAM_ID:
            inputs[parent_spec] = Grouping.ALL
        else:
            inputs[parent_spec[stream]] = Grouping.ALL
