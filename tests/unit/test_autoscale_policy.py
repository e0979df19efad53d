"""The topology master's autoscaler (tmaster/autoscale.py): its config, when a bolt
is hot or cold, and what keeps it from deciding too often."""

from __future__ import annotations

import json
from typing import Any

import pytest

from heronpy_lite.errors import TopologyError
from heronpy_lite.tmaster.autoscale import (
    AutoscaleConfig,
    Autoscaler,
    ComponentSample,
    Decision,
)

BOLTS = {"split": 2, "count": 4}
CULPRIT = ComponentSample(busy_ms_per_sec=500.0, culprit=True)
BUSY = ComponentSample(busy_ms_per_sec=950.0, culprit=False)
IDLE = ComponentSample(busy_ms_per_sec=40.0, culprit=False)
MIDDLE = ComponentSample(busy_ms_per_sec=500.0, culprit=False)


def config(bolts: dict[str, int] = BOLTS, keygroups: int = 128, **keys: Any) -> Any:
    """Enabled, no cooldown unless given; ``min_parallelism=`` sets
    ``topology.autoscale.min.parallelism``."""
    raw = {"topology.autoscale.enabled": True, "topology.autoscale.cooldown.secs": 0}
    raw.update({"topology.autoscale." + k.replace("_", "."): v for k, v in keys.items()})
    return AutoscaleConfig.from_config(raw, bolts, keygroups=keygroups)


def scaler(parallelism: dict[str, int] = BOLTS, started: float = 0.0, **keys: Any) -> Autoscaler:
    return Autoscaler(config(**keys), parallelism, started)


def feed(
    a: Autoscaler, start: float, stop: float, samples: dict[str, ComponentSample], step: float = 5
) -> list[Decision]:
    """Observe every ``step`` seconds from start to stop (inclusive)."""
    out = []
    t = start
    while t <= stop:
        d = a.observe(t, samples)
        if d is not None:
            out.append(d)
        t += step
    return out


# -- config --


def test_disabled_or_absent_gives_none() -> None:
    assert AutoscaleConfig.from_config({}, BOLTS) is None
    assert AutoscaleConfig.from_config({"topology.autoscale.enabled": "false"}, BOLTS) is None
    assert AutoscaleConfig.from_config({"topology.autoscale.enabled": False}, BOLTS) is None


def test_defaults() -> None:
    c = AutoscaleConfig.from_config({"topology.autoscale.enabled": "true"}, BOLTS)
    assert c == AutoscaleConfig(
        min_parallelism={"count": 1, "split": 1},
        max_parallelism={"count": 8, "split": 8},
        components=("count", "split"),
        window=30.0,
        cooldown=60.0,
        busy_high=800.0,
        busy_low=200.0,
    )


def test_default_max_is_capped_by_keygroups() -> None:
    assert config(keygroups=4).max_parallelism == {"count": 4, "split": 4}


@pytest.mark.parametrize(
    "value",
    [{"split": 6}, "split:6", " split : 6 , "],
)
def test_per_component_max(value: object) -> None:
    assert config(max_parallelism=value).max_parallelism == {"count": 8, "split": 6}


def test_one_int_for_every_component_and_other_keys() -> None:
    c = config(
        min_parallelism=2,
        max_parallelism="16",
        window_secs="10",
        busy_high_ms=900,
        busy_low_ms=100.5,
        components="split",
    )
    assert c.min_parallelism == {"count": 2, "split": 2}
    assert c.max_parallelism == {"count": 16, "split": 16}
    assert (c.window, c.busy_high, c.busy_low, c.components) == (10.0, 900.0, 100.5, ("split",))
    assert config(components=["count"]).components == ("count",)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("enabled", "yes"),
        ("min.parallelism", -1),
        ("min.parallelism", 0),
        ("min.parallelism", "split:x"),
        ("min.parallelism", 9),  # above the default max 8
        ("max.parallelism", "bogus:3"),
        ("max.parallelism", {"bogus": 3}),
        ("max.parallelism", 200),  # above the 128 key groups
        ("max.parallelism", True),
        ("max.parallelism", 2.5),
        ("window.secs", 0),
        ("window.secs", "soon"),
        ("cooldown.secs", -5),
        ("busy.high.ms", 1200),
        ("busy.low.ms", 800),  # not below high
        ("busy.low.ms", None),
        ("components", "split,bogus"),
        ("components", 7),
        ("bogus.key", 1),
    ],
)
def test_bad_values_name_the_key_and_the_value(key: str, value: object) -> None:
    raw = {"topology.autoscale.enabled": True, "topology.autoscale." + key: value}
    with pytest.raises(TopologyError) as e:
        AutoscaleConfig.from_config(raw, BOLTS)
    message = str(e.value)
    assert message.startswith(f"topology.autoscale.{key}: {value!r}: ")
    assert "\n" not in message


def test_min_above_a_per_component_max_names_the_component() -> None:
    with pytest.raises(TopologyError, match=r"min 4 > max 3 for 'split'"):
        config(min_parallelism="split:4", max_parallelism="split:3")


# -- hot, cold, the window --


def test_hot_by_culprit_doubles() -> None:
    a = scaler()
    assert feed(a, 0, 25, {"split": CULPRIT, "count": MIDDLE}) == []
    assert a.observe(30, {"split": CULPRIT, "count": MIDDLE}) == Decision(
        "split",
        2,
        4,
        "backpressure culprit for 30s",
        {"busy_ms_per_sec": 500.0, "culprit_share": 1.0, "samples": 7.0},
        30.0,
    )
    assert a.parallelism == {"split": 4, "count": 4}
    assert a.history == [a.history[0]] and a.history[0].at == 30.0


def test_hot_by_busy_doubles_up_to_max() -> None:
    a = scaler(max_parallelism="count:6")
    assert feed(a, 0, 30, {"count": BUSY}) == [
        Decision(
            "count",
            4,
            6,
            "busy 950 ms/s >= 800 for 30s",
            {"busy_ms_per_sec": 950.0, "culprit_share": 0.0, "samples": 7.0},
            30.0,
        )
    ]


def test_hot_by_culprit_or_busy_mixed() -> None:
    a = scaler()
    feed(a, 0, 25, {"split": CULPRIT})
    d = a.observe(30, {"split": BUSY})
    assert d is not None
    assert (d.component, d.old, d.new) == ("split", 2, 4)
    assert d.reason == "backpressure culprit or busy >= 800 ms/s for 30s"
    assert d.metrics["culprit_share"] == pytest.approx(6 / 7)


def test_cold_halves_down_to_min() -> None:
    a = scaler(min_parallelism="count:3")
    assert feed(a, 0, 30, {"count": IDLE}) == [
        Decision(
            "count",
            4,
            3,
            "busy 40 ms/s <= 200 for 30s",
            {"busy_ms_per_sec": 40.0, "culprit_share": 0.0, "samples": 7.0},
            30.0,
        )
    ]


def test_one_sample_out_of_the_condition_spoils_the_window() -> None:
    a = scaler()
    feed(a, 0, 10, {"split": CULPRIT, "count": IDLE})
    a.observe(15, {"split": MIDDLE, "count": ComponentSample(None)})  # unknown busy: not cold
    assert feed(a, 20, 45, {"split": CULPRIT, "count": IDLE}) == []
    # the spoiled sample at 15 leaves the window at 50 (the one at 20 stands for its start)
    d = a.observe(50, {"split": CULPRIT, "count": IDLE})
    assert d is not None and d.component == "split"


def test_window_not_yet_covered_gives_none() -> None:
    a = scaler()
    assert feed(a, 10, 39, {"split": CULPRIT}, step=1) == []
    d = a.observe(40, {"split": CULPRIT})
    assert d is not None and d.at == 40.0


def test_a_sample_before_the_window_start_covers_it() -> None:
    a = scaler()
    a.observe(0, {"split": CULPRIT})
    a.observe(29, {"split": CULPRIT})
    d = a.observe(31, {"split": CULPRIT})  # the sample at 0 still describes 1..29
    assert d is not None and d.metrics["samples"] == 3.0


# -- cooldown, bounds, one at a time --


def test_no_decision_within_cooldown_of_start() -> None:
    a = scaler(started=100.0, cooldown_secs=60)
    assert feed(a, 100, 155, {"split": CULPRIT}) == []
    d = a.observe(160, {"split": CULPRIT})
    assert d is not None and d.at == 160.0


def test_cooldown_from_history_restored() -> None:
    before = Decision("split", 1, 2, "busy 900 ms/s >= 800 for 30s", {}, 500.0)
    a = Autoscaler(config(cooldown_secs=60), {"split": 2, "count": 4}, 0.0, [before])
    assert feed(a, 500, 555, {"split": CULPRIT}) == []
    assert a.observe(560, {"split": CULPRIT}) is not None
    assert [d.at for d in a.history] == [500.0, 560.0]


def test_at_its_bound_gives_no_decision() -> None:
    a = scaler({"split": 8, "count": 1})
    assert feed(a, 0, 100, {"split": BUSY, "count": IDLE}) == []  # max 8, min 1
    b = scaler({"split": 2, "count": 4}, keygroups=4)  # via config(): max 4
    assert b.config.max_parallelism["count"] == 4
    assert feed(b, 0, 100, {"count": BUSY}) == []
    assert feed(b, 101, 131, {"split": BUSY})[0].new == 4


def test_beyond_its_max_never_scales_down_when_hot() -> None:
    a = scaler({"split": 10, "count": 4})
    assert feed(a, 0, 100, {"split": BUSY}) == []


def test_only_the_chosen_components_scale() -> None:
    a = scaler(components="count")
    assert feed(a, 0, 100, {"split": CULPRIT}) == []


def test_one_decision_at_a_time_hot_first_then_samples_cleared() -> None:
    a = scaler()
    samples = {"split": BUSY, "count": IDLE}
    first = feed(a, 0, 30, samples)
    assert [(d.component, d.old, d.new) for d in first] == [("split", 2, 4)]
    # every bolt's samples went: count's cold window starts again at 35
    assert feed(a, 35, 60, samples) == []
    d = a.observe(65, samples)
    assert d is not None
    assert (d.component, d.old, d.new, d.at) == ("split", 4, 8, 65.0)  # hot beats cold again
    assert a.parallelism == {"split": 8, "count": 4}
    d = feed(a, 70, 100, samples)[0]
    assert (d.component, d.old, d.new, d.at) == ("count", 4, 2, 100.0)


def test_among_hot_the_culprit_longest_then_the_busiest() -> None:
    a = scaler()
    feed(a, 0, 10, {"split": BUSY, "count": CULPRIT})
    feed(a, 15, 25, {"split": CULPRIT, "count": CULPRIT})
    d = a.observe(30, {"split": CULPRIT, "count": CULPRIT})
    assert d is not None and d.component == "count"  # culprit since 0, split since 15

    b = scaler()
    feed(b, 0, 25, {"split": BUSY, "count": ComponentSample(990.0)})
    d = b.observe(30, {"split": BUSY, "count": ComponentSample(990.0)})
    assert d is not None and d.component == "count"


def test_flapping_is_prevented_by_the_cooldown_and_a_fresh_window() -> None:
    a = scaler(cooldown_secs=60)
    ups = feed(a, 0, 60, {"split": BUSY})
    assert [(d.old, d.new, d.at) for d in ups] == [(2, 4, 60.0)]
    # the lull right after: cold from 61 on, but no decision within the cooldown
    assert feed(a, 61, 119, {"split": IDLE}, step=1) == []
    d = a.observe(120, {"split": IDLE})
    assert d is not None and (d.old, d.new, d.at) == (4, 2, 120.0)


def test_after_a_short_cooldown_the_new_plan_still_needs_a_full_window() -> None:
    a = scaler(cooldown_secs=10)
    assert [d.at for d in feed(a, 0, 30, {"split": BUSY})] == [30.0]
    assert feed(a, 31, 60, {"split": IDLE}, step=1) == []  # cooldown over at 40
    d = a.observe(61, {"split": IDLE})
    assert d is not None and (d.old, d.new, d.at) == (4, 2, 61.0)


def test_history_is_bounded() -> None:
    a = scaler({"split": 1, "count": 4})
    t = 0.0
    for i in range(60):
        sample = BUSY if i % 2 == 0 else IDLE
        assert feed(a, t, t + 30, {"split": sample}), i
        t += 35
    assert len(a.history) == 50
    assert a.history[-1].at == t - 5


def test_decision_to_dict_from_dict_roundtrip() -> None:
    d = Decision("split", 2, 4, "backpressure culprit for 30s", {"culprit_share": 1.0}, 30.5)
    data = json.loads(json.dumps(d.to_dict()))
    assert data == {
        "component": "split",
        "old": 2,
        "new": 4,
        "reason": "backpressure culprit for 30s",
        "metrics": {"culprit_share": 1.0},
        "at": 30.5,
    }
    assert Decision.from_dict(data) == d
