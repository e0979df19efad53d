"""Topology validation (definition_of) and the heronpy-compatible API surface."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

import heronpy_lite.api as api
from heronpy_lite.api import (
    AssignableMetrics,
    Bolt,
    CountMetric,
    GlobalStreamId,
    Grouping,
    IMetric,
    MeanReducer,
    MultiAssignableMetrics,
    MultiCountMetric,
    MultiReducedMetric,
    ReducedMetric,
    Spout,
    Stream,
    Topology,
    TopologyBuilder,
)
from heronpy_lite.api import api_constants as C
from heronpy_lite.api.topology import InputStream, definition_of
from heronpy_lite.config import KEYS
from heronpy_lite.errors import TopologyError

# ------------------------------------------------------------------------ components


class WordSpout(Spout):
    outputs = ["word", "count"]

    def next_tuple(self) -> None:
        pass


class MultiSpout(Spout):
    outputs = ["word", Stream(fields=["cmd", "arg"], name="control")]

    def next_tuple(self) -> None:
        pass


class Sink(Bolt):
    def process(self, tup: Any) -> None:
        pass


class Relay(Bolt):
    outputs = ["out"]

    def process(self, tup: Any) -> None:
        pass


def builder_with_spout(spout: type = WordSpout) -> tuple[TopologyBuilder, Any]:
    builder = TopologyBuilder("t")
    return builder, builder.add_spout("words", spout, par=1)


# ---------------------------------------------------------------------- error paths


def test_unknown_input_component_by_name():
    builder, _ = builder_with_spout()
    builder.add_bolt("sink", Sink, par=1, inputs={"ghost": Grouping.SHUFFLE})
    with pytest.raises(TopologyError, match="bolt 'sink': input component 'ghost' does not exist"):
        definition_of(builder)


def test_unknown_input_component_from_a_spec_not_added_to_the_builder():
    builder, _ = builder_with_spout()
    stray = WordSpout.spec(name="elsewhere")
    builder.add_bolt("sink", Sink, par=1, inputs=[stray])
    with pytest.raises(TopologyError, match="input component 'elsewhere' does not exist"):
        definition_of(builder)


def test_unknown_input_stream():
    builder, _ = builder_with_spout(MultiSpout)
    builder.add_bolt("sink", Sink, par=1, inputs={GlobalStreamId("words", "nope"): Grouping.ALL})
    with pytest.raises(
        TopologyError,
        match=r"component 'words' declares no stream 'nope' \(it declares: control, default\)",
    ):
        definition_of(builder)


def test_unknown_input_stream_via_spec_indexing_fails_at_declaration():
    # heronpy raises ValueError as soon as spec['stream'] names an undeclared stream
    _, words = builder_with_spout()
    with pytest.raises(
        ValueError, match="A given stream id does not exist on this component: nope"
    ):
        words["nope"]


def test_fields_grouping_on_an_undeclared_field():
    builder, words = builder_with_spout()
    builder.add_bolt("sink", Sink, par=1, inputs={words: Grouping.fields("word", "missing")})
    with pytest.raises(TopologyError, match=r"fields\(word, missing\).*no field 'missing'"):
        definition_of(builder)


def test_fields_grouping_on_a_field_of_another_stream():
    builder, words = builder_with_spout(MultiSpout)
    builder.add_bolt("sink", Sink, par=1, inputs={words["control"]: Grouping.fields("word")})
    with pytest.raises(TopologyError, match="words:control, which has no field 'word'"):
        definition_of(builder)


@pytest.mark.parametrize("par", [0, -1, "2", 1.5, None, True], ids=repr)
def test_bolt_parallelism_must_be_an_int_of_at_least_one(par):
    builder, words = builder_with_spout()
    builder.add_bolt("sink", Sink, par=par, inputs=[words])
    with pytest.raises(TopologyError, match=r"component 'sink': par must be an int >= 1, got"):
        definition_of(builder)


@pytest.mark.parametrize("par", [0, -1, "1", 2.0], ids=repr)
def test_spout_parallelism_must_be_an_int_of_at_least_one(par):
    class T(Topology):
        words = WordSpout.spec(par=par)

    with pytest.raises(TopologyError, match=r"component 'words': par must be an int >= 1"):
        definition_of(T)


def test_duplicate_component_name_in_builder():
    builder, _ = builder_with_spout()
    with pytest.raises(TopologyError, match="Attempting to add duplicate spec name: 'words'"):
        builder.add_bolt("words", Sink, par=1, inputs=["words"])


def test_duplicate_component_name_in_topology_class():
    with pytest.raises(ValueError, match="Duplicate component name: same"):

        class Dup(Topology):
            a = WordSpout.spec(name="same")
            b = Sink.spec(name="same", inputs=[a])


def test_duplicate_component_name_between_base_and_subclass():
    class Base(Topology):
        words = WordSpout.spec()

    with pytest.raises(ValueError, match="Duplicate component name: words"):

        class Child(Base):
            other = WordSpout.spec(name="words")


def test_no_spout():
    builder = TopologyBuilder("t")
    builder.add_bolt("sink", Sink, par=1, inputs={"ghost": Grouping.SHUFFLE})
    with pytest.raises(TopologyError, match="A Topology requires at least one Spout"):
        definition_of(builder)


def test_empty_topology_has_no_spout():
    with pytest.raises(ValueError, match="A Topology requires at least one Spout"):

        class Empty(Topology):
            pass


@pytest.mark.parametrize("inputs", [None, {}, []], ids=repr)
def test_bolt_without_inputs(inputs):
    builder, _ = builder_with_spout()
    builder.add_bolt("sink", Sink, par=1, inputs=inputs)
    with pytest.raises(
        TopologyError, match=r"test_validation\.Sink: sink requires at least one input, because"
    ):
        definition_of(builder)


@pytest.mark.parametrize(
    "obj",
    [42, "Topology", None, Topology, TopologyBuilder, object, WordSpout],
    ids=["int", "str", "none", "Topology-base", "builder-class", "object", "spout-class"],
)
def test_non_topology_object(obj):
    with pytest.raises(TopologyError, match="expected a Topology subclass or a TopologyBuilder"):
        definition_of(obj)


def test_invalid_grouping_in_inputs():
    builder, words = builder_with_spout()
    builder.add_bolt("sink", Sink, par=1, inputs={words: "shuffle"})
    with pytest.raises(TopologyError, match="A given grouping is not supported"):
        definition_of(builder)


def test_inputs_of_the_wrong_type():
    builder, _ = builder_with_spout()
    builder.add_bolt("sink", Sink, par=1, inputs=5)
    with pytest.raises(TopologyError, match="Inputs must be a list, dict, or None, given: 5"):
        definition_of(builder)


def test_reserved_stream_name():
    class TickSpout(Spout):
        outputs = [Stream(fields=["x"], name="__tick")]

    builder = TopologyBuilder("t")
    builder.add_spout("s", TickSpout, par=1)
    with pytest.raises(TopologyError, match="stream name '__tick' is reserved"):
        definition_of(builder)


def test_component_config_must_be_a_dict():
    builder = TopologyBuilder("t")
    builder.add_spout("s", WordSpout, par=1, config=["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(
        TopologyError,
        match="Component-specific configuration must be given as a dict type, "
        "given: <class 'list'>",
    ):
        definition_of(builder)


def test_topology_config_keys_must_be_strings():
    builder, _ = builder_with_spout()
    builder.set_config({1: "x"})
    with pytest.raises(
        TopologyError,
        match="Key for topology-wide configuration must be string, given: <class 'int'>: 1",
    ):
        definition_of(builder)


@pytest.mark.parametrize("name", ["", "Topology", None, 5], ids=repr)
def test_invalid_builder_name(name):
    with pytest.raises(TopologyError, match="invalid topology name"):
        TopologyBuilder(name)


def test_config_is_not_a_component_name_in_builder():
    builder = TopologyBuilder("t")
    with pytest.raises(TopologyError, match="config is a reserved name"):
        builder.add_spout("config", WordSpout, par=1)


# ---------------------------------------------------------------------- happy paths


def test_inputs_as_spec_to_grouping():
    builder, words = builder_with_spout()
    builder.add_bolt("sink", Sink, par=2, inputs={words: Grouping.fields("word")})
    d = definition_of(builder)
    assert d.components["sink"].inputs == (
        InputStream("words", "default", Grouping.fields("word")),
    )


def test_inputs_as_spec_stream_to_grouping():
    builder, words = builder_with_spout(MultiSpout)
    builder.add_bolt(
        "sink", Sink, par=1, inputs={words["control"]: Grouping.ALL, words: Grouping.LOWEST}
    )
    d = definition_of(builder)
    assert set(d.components["sink"].inputs) == {
        InputStream("words", "control", Grouping.ALL),
        InputStream("words", "default", Grouping.LOWEST),
    }


def test_inputs_as_a_list_of_specs_mean_shuffle():
    builder, words = builder_with_spout()
    relay = builder.add_bolt("relay", Relay, par=1, inputs=[words])
    builder.add_bolt("sink", Sink, par=1, inputs=[words, relay])
    d = definition_of(builder)
    assert d.components["sink"].inputs == (
        InputStream("words", "default", Grouping.SHUFFLE),
        InputStream("relay", "default", Grouping.SHUFFLE),
    )


def test_inputs_as_global_stream_id_and_plain_names():
    builder, _ = builder_with_spout(MultiSpout)
    builder.add_bolt(
        "sink",
        Sink,
        par=1,
        inputs={GlobalStreamId("words", "control"): Grouping.DIRECT, "words": Grouping.NONE},
    )
    d = definition_of(builder)
    assert set(d.components["sink"].inputs) == {
        InputStream("words", "control", Grouping.DIRECT),
        InputStream("words", "default", Grouping.NONE),
    }


def test_global_stream_id_equality_and_str():
    _, words = builder_with_spout(MultiSpout)
    assert words["control"] == GlobalStreamId("words", "control")
    assert hash(words["control"]) == hash(GlobalStreamId("words", "control"))
    assert str(GlobalStreamId("words", "control")) == "words:control"
    with pytest.raises(TypeError):
        GlobalStreamId(5, "default")


def test_named_streams_declare_their_own_fields():
    builder, _ = builder_with_spout(MultiSpout)
    d = definition_of(builder)
    assert d.components["words"].outputs == {"default": ["word"], "control": ["cmd", "arg"]}


def test_optional_outputs_add_streams_without_touching_the_class():
    builder, words = builder_with_spout()
    builder.add_bolt(
        "relay",
        Relay,
        par=1,
        inputs=[words],
        optional_outputs=["extra", Stream(fields=["a"], name="side")],
    )
    builder.add_bolt("sink", Sink, par=1, inputs={GlobalStreamId("relay", "side"): Grouping.ALL})
    d = definition_of(builder)
    assert d.components["relay"].outputs == {"default": ["out", "extra"], "side": ["a"]}
    assert Relay.outputs == ["out"]
    spout_spec = WordSpout.spec(name="w2", optional_outputs=[Stream(["z"], name="more")])
    assert spout_spec.output_fields() == {"default": ["word", "count"], "more": ["z"]}
    assert WordSpout.outputs == ["word", "count"]


def test_topology_class_attribute_names_become_component_names():
    class WordCount(Topology):
        config = {"topology.stmgrs": 2, "my.key": "v"}
        words = WordSpout.spec(par=2)
        relay = Relay.spec(par=3, inputs={words: Grouping.fields("word")})
        named = Sink.spec(name="explicit", inputs=[relay], config={"k": 1})

    d = definition_of(WordCount)
    assert d.name == "WordCount"
    assert list(d.components) == ["words", "relay", "explicit"]
    assert d.components["words"].is_spout
    assert not d.components["relay"].is_spout
    assert d.components["words"].par == 2
    assert d.components["relay"].inputs == (
        InputStream("words", "default", Grouping.fields("word")),
    )
    assert d.components["explicit"].config == {"k": 1}
    assert d.components["explicit"].python_class is Sink
    assert d.config == {"topology.stmgrs": 2, "my.key": "v"}
    assert WordCount.topology_name == "WordCount"
    assert definition_of(WordCount, name="renamed").name == "renamed"


def test_topology_subclass_inherits_components():
    class Base(Topology):
        words = WordSpout.spec()

    class Child(Base):
        sink = Sink.spec(inputs=[Base.words])

    assert list(definition_of(Child).components) == ["words", "sink"]


def test_builder_definition_keeps_declaration_order_and_config():
    builder = TopologyBuilder("Built")
    words = builder.add_spout("words", WordSpout, par=2, config={"c": 1})
    builder.add_bolt("sink", Sink, par=1, inputs=[words])
    builder.set_config({"topology.debug": True})
    d = definition_of(builder)
    assert d.name == "Built"
    assert list(d.components) == ["words", "sink"]
    assert d.components["words"].config == {"c": 1}
    assert d.config == {"topology.debug": True}
    assert [(c.name, g) for c, g in d.consumers("words", "default")] == [("sink", Grouping.SHUFFLE)]
    assert d.consumers("words", "nope") == []


# ----------------------------------------------------------------------- API surface

EXPECTED_ALL = {
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
}


def test_api_all_is_the_expected_set_and_every_name_resolves():
    assert set(api.__all__) == EXPECTED_ALL
    assert len(api.__all__) == len(EXPECTED_ALL)
    for name in api.__all__:
        assert getattr(api, name) is not None


HERONPY_PATHS = [
    ("heronpy_lite.api.spout.spout", "Spout"),
    ("heronpy_lite.api.spout.spout", "BaseSpout"),
    ("heronpy_lite.api.bolt.bolt", "Bolt"),
    ("heronpy_lite.api.bolt.bolt", "BaseBolt"),
    ("heronpy_lite.api.stream", "Grouping"),
    ("heronpy_lite.api.stream", "Stream"),
    ("heronpy_lite.api.topology", "Topology"),
    ("heronpy_lite.api.topology", "TopologyBuilder"),
    ("heronpy_lite.api.tuple", "Tuple"),
    ("heronpy_lite.api.tuple", "HeronTuple"),
    ("heronpy_lite.api.tuple", "TupleHelper"),
    ("heronpy_lite.api.api_constants", "TOPOLOGY_RELIABILITY_MODE"),
    ("heronpy_lite.api.api_constants", "TopologyReliabilityMode"),
    ("heronpy_lite.api.topology_context", "TopologyContext"),
    ("heronpy_lite.api.custom_grouping", "ICustomGrouping"),
    ("heronpy_lite.api.component.component_spec", "GlobalStreamId"),
    ("heronpy_lite.api.component.component_spec", "HeronComponentSpec"),
    ("heronpy_lite.api.component.base_component", "BaseComponent"),
    *(
        ("heronpy_lite.api.metrics", name)
        for name in (
            "IMetric",
            "CountMetric",
            "MultiCountMetric",
            "IReducer",
            "MeanReducer",
            "ReducedMetric",
            "MultiReducedMetric",
            "AssignableMetrics",
            "MultiAssignableMetrics",
            "MeanReducedMetric",
            "MultiMeanReducedMetric",
        )
    ),
]


@pytest.mark.parametrize(("module", "name"), HERONPY_PATHS, ids=lambda v: v)
def test_heronpy_module_paths_exist(module, name):
    assert getattr(importlib.import_module(module), name) is not None


def test_flat_names_are_the_same_objects_as_the_heronpy_paths():
    from heronpy_lite.api.bolt.bolt import Bolt as B
    from heronpy_lite.api.spout.spout import Spout as S
    from heronpy_lite.api.stream import Grouping as G

    assert (api.Bolt, api.Spout, api.Grouping) == (B, S, G)


def test_api_constants_values_match_heronpy():
    assert C.TOPOLOGY_RELIABILITY_MODE == "topology.reliability.mode"
    assert C.TopologyReliabilityMode.ATMOST_ONCE == "ATMOST_ONCE"
    assert C.TopologyReliabilityMode.ATLEAST_ONCE == "ATLEAST_ONCE"
    assert C.TopologyReliabilityMode.EFFECTIVELY_ONCE == "EFFECTIVELY_ONCE"
    assert C.TOPOLOGY_STMGRS == "topology.stmgrs"
    assert C.TOPOLOGY_DEBUG == "topology.debug"
    assert C.TOPOLOGY_MESSAGE_TIMEOUT_SECS == "topology.message.timeout.secs"
    assert C.TOPOLOGY_MAX_SPOUT_PENDING == "topology.max.spout.pending"
    assert C.TOPOLOGY_TICK_TUPLE_FREQ_SECS == "topology.tick.tuple.freq.secs"
    assert C.TOPOLOGY_ENABLE_MESSAGE_TIMEOUTS == "topology.enable.message.timeouts"
    assert C.TOPOLOGY_COMPONENT_PARALLELISM == "topology.component.parallelism"


# heronpy.api.api_constants names whose key heronpy_lite's config accepts
# (config.KEYS lists them "for heronpy compatibility"): a heronpy topology that
# refers to them by name must import unchanged.
HERONPY_CONSTANTS_OF_ACCEPTED_KEYS = {
    "TOPOLOGY_WORKER_CHILDOPTS": "topology.worker.childopts",
    "TOPOLOGY_COMPONENT_JVMOPTS": "topology.component.jvmopts",
    "TOPOLOGY_TICK_TUPLE_FREQ_SECS": "topology.tick.tuple.freq.secs",
    "TOPOLOGY_ENABLE_MESSAGE_TIMEOUTS": "topology.enable.message.timeouts",
    "TOPOLOGY_DEBUG": "topology.debug",
    "TOPOLOGY_STMGRS": "topology.stmgrs",
    "TOPOLOGY_MESSAGE_TIMEOUT_SECS": "topology.message.timeout.secs",
    "TOPOLOGY_COMPONENT_PARALLELISM": "topology.component.parallelism",
    "TOPOLOGY_MAX_SPOUT_PENDING": "topology.max.spout.pending",
    "TOPOLOGY_AUTO_TASK_HOOKS": "topology.auto.task.hooks",
    "TOPOLOGY_SERIALIZER_CLASSNAME": "topology.serializer.classname",
    "TOPOLOGY_RELIABILITY_MODE": "topology.reliability.mode",
    "TOPOLOGY_STATEFUL_CHECKPOINT_INTERVAL_SECONDS": (
        "topology.stateful.checkpoint.interval.seconds"
    ),
    "TOPOLOGY_STATEFUL_START_CLEAN": "topology.stateful.start.clean",
    "TOPOLOGY_CONTAINER_CPU_REQUESTED": "topology.container.cpu",
    "TOPOLOGY_CONTAINER_RAM_REQUESTED": "topology.container.ram",
    "TOPOLOGY_CONTAINER_DISK_REQUESTED": "topology.container.disk",
    "TOPOLOGY_COMPONENT_RAMMAP": "topology.component.rammap",
    "TOPOLOGY_COMPONENT_CPUMAP": "topology.component.cpumap",
    "TOPOLOGY_COMPONENT_DISKMAP": "topology.component.diskmap",
    "TOPOLOGY_CONTAINER_MAX_RAM_HINT": "topology.container.max.ram.hint",
    "TOPOLOGY_COMPONENT_OUTPUT_BPS": "topology.component.output.bps",
    "TOPOLOGY_NAME": "topology.name",
    "TOPOLOGY_TEAM_NAME": "topology.team.name",
    "TOPOLOGY_TEAM_EMAIL": "topology.team.email",
    "TOPOLOGY_CAP_TICKET": "topology.cap.ticket",
    "TOPOLOGY_PROJECT_NAME": "topology.project.name",
}


@pytest.mark.parametrize(
    ("name", "value"), sorted(HERONPY_CONSTANTS_OF_ACCEPTED_KEYS.items()), ids=lambda v: v
)
def test_api_constants_have_heronpy_names_for_every_accepted_key(name, value):
    assert value in KEYS  # the config accepts the key ...
    assert getattr(C, name, None) == value  # ... so heronpy's name for it must exist


def test_grouping_constants_and_builders():
    assert Grouping.GLOBAL == Grouping.LOWEST
    assert Grouping.LOCAL_OR_SHUFFLE == Grouping.SHUFFLE
    assert Grouping.fields("a", "b") == Grouping.fields(["a", "b"])
    assert Grouping.fields("a").fields == ["a"]
    with pytest.raises(ValueError):
        Grouping.fields()
    with pytest.raises(TypeError):
        Grouping.fields(1)
    with pytest.raises(TypeError):
        Grouping.custom(object())
    assert not Grouping.is_grouping_sane(True)
    assert not Grouping.is_grouping_sane(99)
    assert Grouping.is_grouping_sane(Grouping.DIRECT)


def test_stream_declaration_checks_its_arguments():
    assert Stream().fields == []
    assert Stream().stream_id == "default"
    with pytest.raises(TypeError):
        Stream(fields="word")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Stream(fields=["a"], name=5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- metrics


def test_count_metric_counts_and_resets():
    metric = CountMetric()
    assert isinstance(metric, IMetric)
    metric.incr()
    metric.incr(to_add=4)
    assert metric.get_value_and_reset() == 5
    assert metric.get_value_and_reset() == 0


def test_multi_count_metric_counts_per_key_and_keeps_keys_at_zero():
    metric = MultiCountMetric()
    metric.add_key("registered")
    metric.incr("a")
    metric.incr("a", to_add=2)
    metric.incr("b", 5)
    assert metric.get_value_and_reset() == {"registered": 0, "a": 3, "b": 5}
    assert metric.get_value_and_reset() == {"registered": 0, "a": 0, "b": 0}
    metric.add_key("a")  # re-adding an existing key does not reset it
    metric.incr("a")
    metric.add_key("a")
    assert metric.get_value_and_reset()["a"] == 1


def test_reduced_metric_with_mean_reducer():
    metric = ReducedMetric(MeanReducer)
    assert metric.get_value_and_reset() is None  # no values in this bucket
    for v in (1, 2, 6):
        metric.update(v)
    assert metric.get_value_and_reset() == pytest.approx(3.0)
    assert metric.get_value_and_reset() is None
    metric.update(10)
    assert metric.get_value_and_reset() == pytest.approx(10.0)


def test_multi_reduced_metric_reduces_per_key():
    metric = MultiReducedMetric(MeanReducer)
    metric.add_key("idle")
    metric.update("lat", 10)
    metric.update("lat", 20)
    metric.update("size", 3)
    assert metric.get_value_and_reset() == {"idle": None, "lat": 15.0, "size": 3.0}
    assert metric.get_value_and_reset() == {"idle": None, "lat": None, "size": None}


def test_mean_reduced_metric_helpers():
    from heronpy_lite.api.metrics import MeanReducedMetric, MultiMeanReducedMetric

    single = MeanReducedMetric()
    single.update(4)
    single.update(8)
    assert single.get_value_and_reset() == pytest.approx(6.0)
    multi = MultiMeanReducedMetric()
    multi.update("k", 1)
    assert multi.get_value_and_reset() == {"k": 1.0}


def test_assignable_metrics_is_a_gauge_not_reset_by_sampling():
    metric = AssignableMetrics(7)
    assert metric.get_value_and_reset() == 7
    metric.update(3)
    assert metric.get_value_and_reset() == 3
    assert metric.get_value_and_reset() == 3


def test_multi_assignable_metrics_keeps_the_last_value_per_key():
    metric = MultiAssignableMetrics()
    assert metric.get_value_and_reset() == {}
    metric.update("a", 1)
    metric.update("a", 2)
    metric.update("b", "x")
    assert metric.get_value_and_reset() == {"a": 2, "b": "x"}
    assert metric.get_value_and_reset() == {"a": 2, "b": "x"}


def test_custom_reducer_written_against_heronpy_works():
    from heronpy_lite.api import IReducer

    class MaxReducer(IReducer):
        def init(self) -> None:
            self.value = None

        def reduce(self, value: Any) -> None:
            self.value = value if self.value is None else max(self.value, value)

        def extract(self) -> Any:
            return self.value

    metric = ReducedMetric(MaxReducer)
    for v in (3, 9, 1):
        metric.update(v)
    assert metric.get_value_and_reset() == 9
    assert metric.get_value_and_reset() is None
