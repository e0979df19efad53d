"""Config resolution: defaults, layers, auto-typing, validation, EngineConfig."""

from __future__ import annotations

import dataclasses
import re

import pytest

from heronpy_lite.config import (
    KEYS,
    EngineConfig,
    auto_type,
    check_value,
    cluster_names,
    component_config,
    parse_properties,
    resolve,
)
from heronpy_lite.errors import ConfigError


def test_resolve_local_has_the_defaults():
    config = resolve("local")
    assert config["topology.stmgrs"] == 1
    assert config["topology.reliability.mode"] == "ATMOST_ONCE"
    assert config["topology.max.spout.pending"] == 100
    assert config["topology.enable.message.timeouts"] is True
    assert config["topology.debug"] is False
    assert config["topology.backpressure.strategy"] == "spout"
    assert config["heron.wire.max.frame.bytes"] == 32 * 1024 * 1024
    assert config["heron.instance.batch.max.tuples"] == 1024
    assert config["heron.stmgr.reconnect.interval.secs"] == pytest.approx(0.2)
    # from the cluster file
    assert config["heron.statemgr.class"] == "localfs"
    assert config["heron.statemgr.root.path"] == ""


def test_every_resolved_key_is_known():
    assert set(resolve("local")) <= set(KEYS)


def test_local_is_a_known_cluster():
    assert "local" in cluster_names()


def test_unknown_cluster_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown cluster 'nowhere' \(known: .*local"):
        resolve("nowhere")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3", 3),
        ("-7", -7),
        ("1.5", 1.5),
        ("true", True),
        ("True", True),
        ("false", False),
        ("FALSE", False),
        ("hello", "hello"),
        ("", ""),
        ("127.0.0.1", "127.0.0.1"),
        (3, 3),
        (None, None),
        ([1, "2"], [1, "2"]),
    ],
)
def test_auto_type(raw, expected):
    value = auto_type(raw)
    assert value == expected
    assert type(value) is type(expected)


def test_config_properties_are_auto_typed():
    props = parse_properties(
        [
            "topology.stmgrs=3",
            "topology.debug=true",
            "heron.stmgr.heartbeat.interval.secs=1.5",
            "my.flag=false",
            "my.name=wordcount",
        ]
    )
    config = resolve("local", properties=props)
    assert config["topology.stmgrs"] == 3
    assert type(config["topology.stmgrs"]) is int
    assert config["topology.debug"] is True
    assert config["heron.stmgr.heartbeat.interval.secs"] == 1.5
    assert config["my.flag"] is False
    assert config["my.name"] == "wordcount"


def test_parse_properties_splits_on_the_first_equals_and_strips_the_key():
    assert parse_properties([" my.key =a=b", "empty="]) == {"my.key": "a=b", "empty": ""}


@pytest.mark.parametrize("item", ["novalue", "=3", " =3"])
def test_parse_properties_rejects_malformed_items(item):
    with pytest.raises(ConfigError, match="expects KEY=VALUE"):
        parse_properties([item])


@pytest.mark.parametrize("key", ["heron.no.such.key", "topology.stmgr", "topology.nope"])
def test_unknown_engine_and_topology_keys_are_config_errors(key):
    with pytest.raises(ConfigError, match=re.escape(f"unknown config key '{key}'")):
        resolve("local", properties={key: "1"})
    with pytest.raises(ConfigError, match=re.escape(f"unknown config key '{key}'")):
        resolve("local", topology_config={key: 1})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("topology.stmgrs", "0"),
        ("topology.stmgrs", "-1"),
        ("topology.stmgrs", "abc"),
        ("topology.stmgrs", 1.5),
        ("topology.stmgrs", True),
        ("topology.reliability.mode", "EXACTLY_ONCE"),
        ("topology.reliability.mode", "EXACTLY_ONCE"),
        ("topology.max.spout.pending", 0),
        ("topology.message.timeout.secs", 0),
        ("topology.message.timeout.secs", "soon"),
        ("topology.message.timeout.secs", False),
        ("topology.enable.message.timeouts", 1),
        ("topology.debug", "yes"),
        ("topology.backpressure.strategy", "drop"),
        ("heron.wire.max.frame.bytes", 1000),
        ("heron.instance.batch.max.tuples", 0),
        ("heron.instance.spout.idle.sleep.ms", -1),
        ("heron.statemgr.class", "etcd"),
        ("heron.network.bind.host", 5),
    ],
)
def test_wrong_types_and_ranges_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}' must be")):
        resolve("local", properties={key: value})
    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}' must be")):
        check_value(key, value)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("heron.instance.spout.idle.sleep.ms", "0", 0),
        ("topology.message.timeout.secs", "0.5", 0.5),
        ("topology.message.timeout.secs", 30, 30),
        ("heron.wire.max.frame.bytes", "1024", 1024),
        ("topology.reliability.mode", "ATLEAST_ONCE", "ATLEAST_ONCE"),
        ("topology.team.name", ["anything", "goes"], ["anything", "goes"]),
    ],
)
def test_boundary_values_are_accepted(key, value, expected):
    assert resolve("local", properties={key: value})[key] == expected


def test_user_keys_pass_through():
    config = resolve(
        "local",
        topology_config={"my.key": "hello", "my.dict": {"a": [1, 2]}, "count": 5},
        properties={"other.key": "x y z"},
    )
    assert config["my.key"] == "hello"
    assert config["my.dict"] == {"a": [1, 2]}
    assert config["count"] == 5
    assert config["other.key"] == "x y z"


def test_precedence_properties_over_topology_config_over_defaults():
    assert resolve("local")["topology.stmgrs"] == 1
    assert resolve("local", topology_config={"topology.stmgrs": 2})["topology.stmgrs"] == 2
    both = resolve(
        "local",
        topology_config={"topology.stmgrs": 2, "topology.debug": True},
        properties={"topology.stmgrs": "4"},
    )
    assert both["topology.stmgrs"] == 4
    assert both["topology.debug"] is True  # not overridden: the topology's value stays


def test_config_path_layer_sits_between_cluster_and_topology_config(tmp_path):
    (tmp_path / "a.yaml").write_text("topology.stmgrs: 5\nmy.key: from-a\n")
    (tmp_path / "b.yaml").write_text("my.key: from-b\n")  # later file wins
    (tmp_path / "ignored.txt").write_text("topology.stmgrs: 9\n")
    config = resolve("local", config_path=str(tmp_path))
    assert config["topology.stmgrs"] == 5
    assert config["my.key"] == "from-b"
    assert (
        resolve("local", config_path=str(tmp_path), topology_config={"topology.stmgrs": 2})[
            "topology.stmgrs"
        ]
        == 2
    )


def test_config_path_must_be_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="is not a directory"):
        resolve("local", config_path=str(tmp_path / "missing"))


@pytest.mark.parametrize("text", ["- a list\n- of items\n", "key: [unclosed\n", "1: one\n"])
def test_config_path_file_must_be_a_mapping_of_str_keys(tmp_path, text):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        resolve("local", config_path=str(tmp_path))


def test_config_path_values_are_validated(tmp_path):
    (tmp_path / "c.yaml").write_text("topology.stmgrs: 0\n")
    with pytest.raises(ConfigError, match=r"'topology\.stmgrs' must be"):
        resolve("local", config_path=str(tmp_path))


def test_component_config_merges_with_the_component_winning():
    topology = {"topology.debug": False, "my.key": 1, "shared": "topology"}
    merged = component_config(topology, {"topology.debug": "true", "shared": "component", "x": 2})
    assert merged == {"topology.debug": True, "my.key": 1, "shared": "component", "x": 2}
    assert topology == {"topology.debug": False, "my.key": 1, "shared": "topology"}


def test_component_config_is_validated():
    with pytest.raises(ConfigError, match=r"unknown config key 'topology\.typo'"):
        component_config({}, {"topology.typo": 1})
    with pytest.raises(ConfigError, match=r"'topology\.debug' must be"):
        component_config({}, {"topology.debug": "maybe"})


def test_engine_config_from_resolved_config():
    engine = EngineConfig.from_config(resolve("local"))
    assert engine.statemgr_class == "localfs"
    assert engine.statemgr_root_path == ""
    assert engine.bind_host == "127.0.0.1"
    assert engine.max_frame_bytes == 32 * 1024 * 1024
    assert engine.batch_max_tuples == 1024
    assert engine.flush_interval_ms == 2
    assert engine.stmgr_buffer_high_bytes == 4 * 1024 * 1024
    assert engine.stmgr_buffer_low_bytes == 2 * 1024 * 1024
    assert engine.stmgr_buffer_hard_bytes == 16 * 1024 * 1024
    assert engine.socket_buffer_bytes == 1024 * 1024
    assert engine.restart_backoff_min_secs == pytest.approx(0.2)
    assert engine.submit_timeout_secs == 60


def test_engine_config_follows_overrides():
    config = resolve("local", properties={"heron.instance.batch.max.tuples": "16"})
    assert EngineConfig.from_config(config).batch_max_tuples == 16


def test_engine_config_maps_every_field_to_a_known_key():
    fields = {f.name for f in dataclasses.fields(EngineConfig)}
    assert set(EngineConfig._KEYMAP) == fields
    assert all(key in KEYS for key in EngineConfig._KEYMAP.values())


def test_engine_config_with_a_missing_key_is_a_config_error():
    config = resolve("local")
    del config["heron.kill.timeout.secs"]
    with pytest.raises(ConfigError, match=r"'heron\.kill\.timeout\.secs' has no value"):
        EngineConfig.from_config(config)


def test_engine_config_is_frozen():
    engine = EngineConfig.from_config(resolve("local"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        engine.batch_max_tuples = 1  # type: ignore[misc]
