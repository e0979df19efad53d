"""heronpy 0.20.5's API surface beyond the basics: specs from class paths, the
introspection harnesses read (get_protobuf, TopologyType's attributes), hand-over
(build_and_submit / write), task hooks in a task, global_metrics, and heronpy's
wording for its errors."""

from __future__ import annotations

import logging
from typing import Any

import msgpack
import pytest
from routing_components import make_host

from heronpy_lite.api import (
    Bolt,
    GlobalStreamId,
    Grouping,
    HeronComponentSpec,
    Spout,
    Stream,
    global_metrics,
)
from heronpy_lite.api import api_constants as C
from heronpy_lite.api.custom_grouping import ICustomGrouping
from heronpy_lite.api.metrics import MultiCountMetric
from heronpy_lite.api.task_hook import ITaskHook
from heronpy_lite.api.topology import (
    Topology,
    TopologyBuilder,
    TopologyType,
    definition_of,
    hand_over,
    receiving,
)
from heronpy_lite.api.topology_context import TopologyContext
from heronpy_lite.errors import TopologyError
from heronpy_lite.instance.task_hooks import TaskHooks
from heronpy_lite.proto import topology_pb2


class Words(Spout):
    outputs = ["word", Stream(fields=["msg"], name="error")]

    def next_tuple(self) -> None:
        pass


class Counter(Bolt):
    """Emits [word, 1] for each input; acks "a", fails the others."""

    outputs = ["word", "count"]

    def process(self, tup: Any) -> None:
        self.emit([tup.values[0], 1], anchors=[tup])
        if tup.values[0] == "a":
            self.ack(tup)
        else:
            self.fail(tup)


class FirstTask(ICustomGrouping):
    def prepare(self, context: Any, component: str, stream: str, target_tasks: list[int]) -> None:
        self.tasks = target_tasks

    def choose_tasks(self, values: list[Any]) -> list[int]:
        return [self.tasks[0]]


WORDS_PATH = f"{__name__}.Words"
COUNTER_PATH = f"{__name__}.Counter"


# ---------------------------------------------------------------- specs from paths


def test_a_spec_built_from_a_class_path_resolves_its_class_at_definition() -> None:
    words = HeronComponentSpec("words", WORDS_PATH, True, 2, outputs=["word"])
    count = HeronComponentSpec(
        "count", COUNTER_PATH, False, 3, inputs={words: Grouping.fields("word")}, outputs=["w"]
    )
    assert words.python_class is None  # nothing imported yet
    builder = TopologyBuilder("paths")
    builder.add_spec(words, count)
    definition = definition_of(builder)
    assert definition.components["words"].python_class is Words
    assert definition.components["count"].python_class is Counter
    assert definition.components["count"].par == 3


def test_a_spec_built_from_a_class_takes_its_path() -> None:
    spec = HeronComponentSpec("words", Words, True, 1, outputs=["word"])
    assert spec.python_class is Words and spec.python_class_path == WORDS_PATH


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_module_x.Words", "cannot import 'no_such_module_x.Words': No module named"),
        (f"{__name__}.Nope", f"module '{__name__}' has no attribute 'Nope'"),
        (COUNTER_PATH, "is not a spout class"),
        ("Words", "is not a dotted class path"),
    ],
)
def test_a_class_path_that_does_not_resolve_names_the_component_and_the_path(
    path: str, message: str
) -> None:
    builder = TopologyBuilder("paths")
    builder.add_spec(HeronComponentSpec("words", path, True, 1, outputs=["word"]))
    with pytest.raises(TopologyError, match="component 'words'") as info:
        definition_of(builder)
    assert message in str(info.value)


def test_a_custom_grouping_given_as_a_class_path_is_built_per_definition() -> None:
    builder = TopologyBuilder("t")
    words = builder.add_spout("words", Words, par=1)
    builder.add_bolt(
        "count", Counter, par=2, inputs={words: Grouping.custom(f"{__name__}.FirstTask")}
    )
    (stream,) = definition_of(builder).components["count"].inputs
    assert isinstance(stream.grouping.python_serialized, FirstTask)
    with pytest.raises(TypeError, match="must be ICustomGrouping instance or classpath"):
        Grouping.custom(5)  # type: ignore[arg-type]


# --------------------------------------------------------------------- introspection


def test_get_protobuf_of_a_bolt_has_heronpys_field_names_and_values() -> None:
    words = Words.spec(name="words", par=2)
    bolt = Counter.spec(
        name="count",
        par=3,
        inputs={words: Grouping.fields("word"), words["error"]: Grouping.ALL},
        config={"flag": True, "n": 7, "obj": [1, 2]},
    ).get_protobuf()
    assert isinstance(bolt, topology_pb2.Bolt)
    assert bolt.comp.name == "count"
    assert bolt.comp.class_name == COUNTER_PATH
    assert bolt.comp.spec == topology_pb2.ComponentObjectSpec.Value("PYTHON_CLASS_NAME")
    kvs = [(kv.key, kv.value, kv.type) for kv in bolt.comp.config.kvs]
    string, python = (
        topology_pb2.ConfigValueType.Value(v) for v in ("STRING_VALUE", "PYTHON_SERIALIZED_VALUE")
    )
    assert kvs == [
        (C.TOPOLOGY_COMPONENT_PARALLELISM, "3", string),  # first, then the component's
        ("flag", "true", string),
        ("n", "7", string),
        ("obj", "", python),
    ]
    assert bolt.comp.config.kvs[3].python_value == [1, 2]
    streams = [(i.stream.id, i.stream.component_name, i.gtype) for i in bolt.inputs]
    assert streams == [
        ("default", "words", topology_pb2.Grouping.Value("FIELDS")),
        ("error", "words", Grouping.ALL),
    ]
    assert [k.key for k in bolt.inputs[0].grouping_fields.keys] == ["word"]
    assert [(o.stream.id, o.stream.component_name) for o in bolt.outputs] == [("default", "count")]
    assert [k.key for k in bolt.outputs[0].schema.keys] == ["word", "count"]


def test_get_protobuf_of_a_spout_and_a_custom_grouping() -> None:
    spout = Words.spec(name="words").get_protobuf()
    assert isinstance(spout, topology_pb2.Spout)
    assert [o.stream.id for o in spout.outputs] == ["default", "error"]
    grouper = FirstTask()
    words = Words.spec(name="words")
    (custom,) = (
        Counter.spec(name="c", inputs={words: Grouping.custom(grouper)}).get_protobuf().inputs
    )
    assert custom.gtype == topology_pb2.Grouping.Value("CUSTOM")
    assert custom.custom_grouping_object is grouper
    assert custom.type == topology_pb2.CustomGroupingObjectType.Value("PYTHON_OBJECT")


def test_topology_type_sets_heronpys_class_attributes() -> None:
    class WordCount(Topology):
        config = {C.TOPOLOGY_STMGRS: 2, "debug.flag": False}
        words = Words.spec(par=2)
        count = Counter.spec(inputs={words: Grouping.fields("word")})

    assert WordCount._heron_specs == [WordCount.words, WordCount.count]
    assert WordCount._topo_config == {
        **TopologyType.DEFAULT_TOPOLOGY_CONFIG,
        C.TOPOLOGY_STMGRS: "2",
        "debug.flag": "false",
    }
    assert set(WordCount._protobuf_spouts) == {"words"}
    assert WordCount._protobuf_bolts["count"].inputs[0].stream.component_name == "words"
    proto = WordCount.protobuf_topology
    assert proto.name == WordCount.topology_name == "WordCount"
    assert WordCount.topology_id.startswith("WordCount")
    assert [s.comp.name for s in proto.spouts] == ["words"]
    assert [b.comp.name for b in proto.bolts] == ["count"]
    assert {kv.key: kv.value for kv in proto.topology_config.kvs}[C.TOPOLOGY_STMGRS] == "2"
    # the engine still runs the config as written, not heronpy's strings
    assert definition_of(WordCount).config == {C.TOPOLOGY_STMGRS: 2, "debug.flag": False}


def test_builder_class_dict_is_heronpys() -> None:
    builder = TopologyBuilder("Built")
    words = builder.add_spout("words", Words, par=1)
    builder.add_bolt("count", Counter, par=1, inputs=[words])
    config = {"a": 1}
    builder.set_config(config)
    class_dict = builder._construct_topo_class_dict()
    assert set(class_dict) == {"words", "count", "config"}
    assert class_dict["config"] is config  # heronpy keeps the dict itself
    topology = TopologyType("Built", (Topology,), class_dict)
    assert [s.name for s in topology._heron_specs] == ["words", "count"]


def test_plain_messages_compare_by_field_and_enums_look_up_both_ways() -> None:
    a, b = topology_pb2.StreamId("default", "words"), topology_pb2.StreamId("default", "words")
    assert a == b and a != topology_pb2.StreamId("error", "words")
    assert topology_pb2.Grouping.Value("SHUFFLE") == Grouping.SHUFFLE == 1
    assert topology_pb2.Grouping.Name(7) == "CUSTOM"
    with pytest.raises(ValueError, match="no value defined for name 'NOPE'"):
        topology_pb2.Grouping.Value("NOPE")


# -------------------------------------------------------------------------- hand-over


def test_build_and_submit_hands_the_topology_to_the_receiver_and_nowhere_else() -> None:
    builder = TopologyBuilder("Handed")
    words = builder.add_spout("words", Words, par=1)
    builder.add_bolt("count", Counter, par=1, inputs=[words])
    with pytest.raises(RuntimeError, match="heronpy-lite submit CLUSTER FILE - NAME"):
        builder.build_and_submit()
    got: list[Any] = []
    with receiving(got.append):
        builder.build_and_submit()
    (topology,) = got
    assert isinstance(topology, TopologyType) and topology.__name__ == "Handed"
    assert definition_of(topology).name == "Handed"
    with pytest.raises(ValueError, match="The base Topology class cannot be writable"):
        Topology.write()


def test_an_object_with_to_topology_builder_is_a_topology() -> None:
    class StreamletBuilder:
        def _to_topology_builder(self, name: str) -> TopologyBuilder:
            builder = TopologyBuilder(name)
            builder.add_spout("words", Words, par=1)
            return builder

    assert definition_of(StreamletBuilder(), default_name="FromAttr").name == "FromAttr"
    assert definition_of(StreamletBuilder(), name="Named").name == "Named"
    got: list[Any] = []
    with receiving(got.append):
        hand_over(StreamletBuilder())
    assert definition_of(got[0], name="X").components["words"].python_class is Words
    with pytest.raises(TopologyError, match="needs a topology name"):
        definition_of(StreamletBuilder())


# ------------------------------------------------------------------ heronpy's errors


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Stream(fields=[1]), TypeError, "All field names must be strings, given: 1"),
        (lambda: Stream(fields="w"), TypeError, "Stream fields must be a list, tuple or None"),
        (lambda: Stream(name=None), TypeError, "Stream's name cannot be None"),
        (lambda: Stream(direct="x"), TypeError, "'direct' must be either True or False"),
        (lambda: Grouping.fields(), ValueError, "List cannot be empty for fields grouping"),
        (lambda: Grouping.fields(1), TypeError, "Non-string cannot be specified in fields"),
        (lambda: GlobalStreamId(1, "s"), TypeError, "componentId must be either string or"),
        (lambda: GlobalStreamId("c", 1), TypeError, "streamId must be string type"),
        (lambda: TopologyBuilder("t").add_spec(1), TypeError, "Argument to add_spec needs to be"),
        (lambda: TopologyBuilder("t").set_config([]), TypeError, "Argument to set_config needs"),
        (lambda: Grouping.custom_object("J", []), NotImplementedError, "not yet implemented"),
        (
            lambda: Words.spec(name="w")["nope"],
            ValueError,
            "A given stream id does not exist on this component: nope",
        ),
        (
            lambda: TopologyType("NoSpout", (Topology,), {"b": Counter.spec(inputs=["x"])}),
            ValueError,
            "A Topology requires at least one Spout",
        ),
        (
            lambda: TopologyType("T", (Topology,), {"w": Spout.spec()}),
            ValueError,
            "heronpy_lite.api.spout.spout.Spout: w requires at least one output, because it is",
        ),
    ],
)
def test_heronpy_errors_have_heronpys_wording(make: Any, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        make()
    assert message in str(info.value)


def test_direct_streams_are_still_accepted() -> None:
    assert Stream(fields=["x"], name="d", direct=True).direct  # heronpy refuses; we route them
    assert Grouping.is_grouping_sane(Grouping.DIRECT)


# -------------------------------------------------------------------------- task hooks


class Recording(ITaskHook):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def prepare(self, conf: dict[str, Any], context: Any) -> None:
        self.events.append(("prepare", context.get_task_id()))

    def clean_up(self) -> None:
        self.events.append(("clean_up", None))

    def emit(self, emit_info: Any) -> None:
        self.events.append(("emit", emit_info))

    def spout_ack(self, info: Any) -> None:
        self.events.append(("spout_ack", info))

    def spout_fail(self, info: Any) -> None:
        self.events.append(("spout_fail", info))

    def bolt_execute(self, info: Any) -> None:
        self.events.append(("bolt_execute", info))

    def bolt_ack(self, info: Any) -> None:
        self.events.append(("bolt_ack", info))

    def bolt_fail(self, info: Any) -> None:
        self.events.append(("bolt_fail", info))


def context_for(host: Any) -> TopologyContext:
    return TopologyContext(
        "t", host.task_id, host.component_name, {}, {}, {}, lambda *a: None, "/x/t.py"
    )


def topology() -> TopologyBuilder:
    builder = TopologyBuilder("t")
    words = builder.add_spout("words", Words, par=1)
    builder.add_bolt("count", Counter, par=2, inputs={words: Grouping.fields("word")})
    return builder


@pytest.mark.usefixtures("tuple_path")
def test_a_task_without_hooks_keeps_the_engine_emit() -> None:
    host = make_host(topology(), "words")
    emit = host.emit
    hooks = TaskHooks(host, context_for(host), {})
    hooks.start(host.component, {}, is_spout=True)
    assert host.emit is emit and "ack" not in vars(host.component)
    hooks.clean_up()  # nothing to call


@pytest.mark.usefixtures("tuple_path")
def test_spout_hooks_see_emits_with_destinations_and_acks_with_latency() -> None:
    host = make_host(topology(), "words")
    context = context_for(host)
    hooks = TaskHooks(host, context, {})
    hook = Recording()
    context.add_task_hook(hook)
    hooks.start(host.component, {}, is_spout=True)
    assert host.component.emit(["a"], tup_id="m1", need_task_ids=True) in ([2], [3])
    assert host.component.emit(["a"], tup_id="m1") is None
    host.ack_immediately()  # at most once: both acked after the round
    kinds = [k for k, _ in hook.events]
    assert kinds == ["prepare", "emit", "emit", "spout_ack", "spout_ack"]
    emit_info = hook.events[1][1]
    assert (emit_info.values, emit_info.stream_id, emit_info.task_id) == (["a"], "default", 1)
    assert emit_info.out_tasks == hook.events[2][1].out_tasks and len(emit_info.out_tasks) == 1
    ack = hook.events[3][1]
    assert (ack.message_id, ack.spout_task_id) == ("m1", 1) and ack.complete_latency_ms >= 0
    hooks.clean_up()
    assert hook.events[-1] == ("clean_up", None)
    with pytest.raises(TypeError, match="attempt to add non ITaskHook instance"):
        context.add_task_hook(object())


@pytest.mark.usefixtures("tuple_path")
def test_bolt_hooks_see_execute_ack_and_fail_and_a_failing_hook_is_contained() -> None:
    host = make_host(topology(), "count")
    context = context_for(host)
    hook = Recording()
    context.add_task_hook(hook)

    class Broken(Recording):
        def bolt_execute(self, info: Any) -> None:
            raise RuntimeError("hook bug")

    context.add_task_hook(Broken())
    hooks = TaskHooks(host, context, {})
    hooks.start(host.component, {}, is_spout=False)
    host.process_batch(1, "default", msgpack.packb([["a"], ["b"]]))
    kinds = [k for k, _ in hook.events]
    assert kinds == [
        "prepare",
        *("emit", "bolt_ack", "bolt_execute"),
        *("emit", "bolt_fail", "bolt_execute"),
    ]
    execute = hook.events[3][1]
    assert execute.heron_tuple.values == ["a"] and execute.executing_task_id == host.task_id
    assert execute.execute_latency_ms >= 0
    acked, failed = hook.events[2][1], hook.events[5][1]
    assert (acked.heron_tuple.values, acked.acking_task_id) == (["a"], host.task_id)
    assert (failed.heron_tuple.values, failed.failing_task_id) == (["b"], host.task_id)
    assert acked.process_latency_ms >= 0 and failed.fail_latency_ms >= 0
    assert host.exceptions["RuntimeError"] == 2  # the broken hook, once per tuple


def test_auto_task_hooks_are_built_from_the_config() -> None:
    host = make_host(topology(), "count")
    context = context_for(host)
    TaskHooks(host, context, {C.TOPOLOGY_AUTO_TASK_HOOKS: [f"{__name__}.Recording"]})
    assert [type(h) for h in context.task_hooks] == [Recording]
    with pytest.raises(RuntimeError, match=r"Error with loading task hook class: nope\.Hook"):
        TaskHooks(host, context_for(host), {C.TOPOLOGY_AUTO_TASK_HOOKS: ["nope.Hook"]})


# ------------------------------------------------------------------------ global metrics


def test_global_metrics_register_once_and_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(global_metrics, "registered", False)
    monkeypatch.setattr(global_metrics, "metricsContainer", MultiCountMetric())
    registered: list[tuple[str, Any, float]] = []
    context = TopologyContext("t", 1, "c", {}, {}, {}, lambda *a: registered.append(a))
    global_metrics.init(context, 1.0)
    global_metrics.init(context, 1.0)
    global_metrics.incr("count")
    global_metrics.safe_incr("count", 4)
    ((name, metric, bucket),) = registered
    assert (name, bucket) == ("__auto__", 1.0)
    assert metric.get_value_and_reset() == {"count": 5}
    with pytest.raises(RuntimeError, match="Another metric has already been registered"):
        context.register_metric("__auto__", MultiCountMetric(), 1)
    assert context.get_topology_pex_path() == ""
    assert context.get_metrics_collector() is context
    logging.getLogger(__name__).debug("ok")
