"""The tracker's pure parts: its routes are exactly those openapi.yaml describes,
and the figures it builds from metrics-manager windows (rates between the
snapshots' own times, saturation, problems); the config's "did you mean"."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from heronpy_lite import config
from heronpy_lite.cli import launching
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import ConfigError
from heronpy_lite.statemgr.localfs import LocalFileStateManager
from heronpy_lite.tracker import model
from heronpy_lite.tracker.server import OPENAPI, Tracker, is_loopback


def test_every_route_is_in_the_openapi_file_and_every_documented_one_exists(
    tmp_path: Path,
) -> None:
    engine = EngineConfig.from_config(config.resolve("local"))
    tracker = Tracker(
        cluster="local",
        engine=engine,
        statemgr=LocalFileStateManager(tmp_path),
        host="127.0.0.1",
        port=8888,
    )
    document = yaml.safe_load(OPENAPI.read_text())
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post")
    }
    assert set(tracker.routes) == documented
    assert document["openapi"].startswith("3.")


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.0.1", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.5", "example.org"))


def _topology() -> model.Topology:
    return model.Topology(
        name="T",
        record={
            "config": {
                "topology.reliability.mode": "ATLEAST_ONCE",
                "topology.max.spout.pending": 10,
            },
            "components": {
                "spout": {"par": 1, "spout": True, "inputs": []},
                "bolt": {"par": 2, "spout": False, "inputs": ["spout"]},
            },
        },
        packing={
            "num_containers": 1,
            "tasks": [[1, "spout", 0, 1], [2, "bolt", 0, 1], [3, "bolt", 1, 1]],
        },
        pplan={
            "instances": [
                [1, {"state": "running", "pid": 11, "restarts": 0, "error": ""}],
                [2, {"state": "running", "pid": 12, "restarts": 0, "error": ""}],
                [
                    3,
                    {"state": "failed", "pid": 13, "restarts": 2, "error": "initialize() raised X"},
                ],
            ],
            "stmgr_stats": [[1, {"backpressure": {"strategy": "spout", "culprits": ["bolt"]}}]],
        },
        execution={"state": "RUNNING"},
        scheduler={},
        tmaster=None,
    )


def _labels(task: int, component: str, **extra: str) -> dict[str, str]:
    return {"component": component, "instance_id": str(task), **extra}


def _window() -> dict[str, Any]:
    spout = _labels(1, "spout")
    return {
        "now": 110.5,
        "interval": 1,
        "sources": [
            {
                "source": "task-1",
                "since": 100.0,
                "time": 110.0,
                "exceptions": [],
                "series": [
                    ["heron_emitted_total", "counter", {**spout, "stream": "default"}, 5000, 1000],
                    ["heron_acked_total", "counter", spout, 4000, 800],
                    ["heron_pending_trees", "gauge", spout, 10, None],
                    ["heron_complete_latency_seconds", "summary", spout, [4000, 8.0], [800, 4.0]],
                    ["heron_busy_seconds_total", "counter", spout, 3.0, 2.0],
                    ["heron_backpressured_seconds_total", "counter", spout, 9.0, 7.0],
                    ["heron_idle_seconds_total", "counter", spout, 1.0, 1.0],
                ],
            },
            {
                "source": "task-2",
                "since": 105.0,
                "time": 110.0,
                "exceptions": [
                    {
                        "where": "process",
                        "type": "KeyError",
                        "message": "'k'",
                        "traceback": "tb",
                        "count": 7,
                        "first": 101.0,
                        "last": 109.0,
                    }
                ],
                "series": [
                    [
                        "heron_executed_total",
                        "counter",
                        _labels(2, "bolt", source_component="spout", stream="default"),
                        900,
                        500,
                    ],
                    [
                        "heron_exceptions_total",
                        "counter",
                        _labels(2, "bolt", type="KeyError"),
                        7,
                        2,
                    ],
                    ["heron_busy_seconds_total", "counter", _labels(2, "bolt"), 5.0, 4.5],
                ],
            },
            {  # a process that stopped reporting a while ago: totals, no rates
                "source": "task-3",
                "since": 60.0,
                "time": 70.0,
                "exceptions": [],
                "series": [
                    [
                        "heron_executed_total",
                        "counter",
                        _labels(3, "bolt", source_component="spout", stream="default"),
                        300,
                        300,
                    ],
                ],
            },
            {
                "source": "stmgr",
                "since": 100.0,
                "time": 110.0,
                "exceptions": [],
                "series": [["heron_timed_out_total", "counter", spout, 12, 3]],
            },
        ],
    }


def test_figures_per_instance_and_component() -> None:
    view = model.metrics_view(_topology(), [_window()])
    spout = view["instances"][1]
    assert spout["emitted_per_sec"] == 100.0 and spout["acked_per_sec"] == 80.0
    assert spout["complete_latency_ms"] == pytest.approx(5.0)
    assert (
        spout["busy_ms_per_sec"],
        spout["backpressured_ms_per_sec"],
        spout["idle_ms_per_sec"],
    ) == (
        200.0,
        700.0,
        100.0,
    )
    assert spout["timed_out"] == 12 and spout["timed_out_per_sec"] == pytest.approx(0.3)
    assert view["instances"][2]["executed_per_sec"] == 100.0  # over its own 5 s
    stale = view["instances"][3]
    assert stale["executed"] == 300 and "executed_per_sec" not in stale
    bolt = view["components"]["bolt"]
    assert bolt["executed"] == 1200 and bolt["executed_per_sec"] == 100.0
    assert bolt["busy_ms_per_sec"] == 900.0  # the busiest instance
    assert bolt["exceptions"] == 7 and bolt["exceptions_by_type"] == {"KeyError": 7}
    assert bolt["last_exception"]["type"] == "KeyError" and bolt["running"] == 1
    assert view["window"] == 5.0


def test_problems_say_what_to_look_at_first() -> None:
    t = _topology()
    problems = model.problems(t, model.metrics_view(t, [_window()]))
    assert "bolt: 7 exceptions in user code; last: KeyError: 'k'" in problems
    assert "spout: 12 timed out" in problems
    assert any(
        p.startswith("spout: 10 trees pending, at topology.max.spout.pending") for p in problems
    )
    assert "bolt: 1 of 2 instances running" in problems
    assert "bolt[1] (task 3): last error: initialize() raised X" in problems
    assert "bolt: too slow, causing backpressure now (container 1)" in problems


def test_a_hung_instance_is_a_problem_while_it_is_hung() -> None:
    t = _topology()
    window = _window()
    spout = _labels(1, "spout")
    window["sources"][0]["series"] += [
        ["heron_instance_hung_seconds", "gauge", {**spout, "call": "next_tuple()"}, 31.4, None],
        ["heron_instance_rss_bytes", "gauge", spout, 5e7, None],
    ]
    view = model.metrics_view(t, [window])
    assert view["instances"][1]["hung_call"] == "next_tuple()"
    assert view["instances"][1]["rss_bytes"] == 5e7
    assert (
        "spout[0] (task 1): hung: next_tuple() has not returned for 31s "
        "(heron.instance.hang.timeout.secs)"
    ) in model.problems(t, view)
    window["sources"][0]["series"][-2][3] = 0.0  # it returned
    assert not any("hung" in p for p in model.problems(t, model.metrics_view(t, [window])))


def test_exceptions_newest_first_and_filtered() -> None:
    t = _topology()
    assert [e["type"] for e in model.exceptions(t, [_window()])] == ["KeyError"]
    assert model.exceptions(t, [_window()], component="spout") == []
    assert model.exceptions(t, [_window()], tasks={3}) == []


def test_a_typo_in_a_key_prefix_warns_with_did_you_mean(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="heronpy_lite.config"):
        resolved = config.resolve("local", properties={"topolgy.stmgrs": "2"})
    assert resolved["topolgy.stmgrs"] == 2  # still user config, as before
    assert "did you mean 'topology.stmgrs'?" in caplog.text
    with pytest.raises(ConfigError, match=r"did you mean 'topology.stmgrs'\?"):
        config.resolve("local", properties={"topology.stmgr": "2"})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="heronpy_lite.config"):
        config.resolve("local", properties={"test.output.dir": "/tmp/x"})
    assert caplog.text == ""


class _Terminal:
    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.written = ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.written += text

    def flush(self) -> None:
        pass


def test_the_progress_line_shows_on_a_terminal_only() -> None:
    terminal = _Terminal(True)
    progress = launching.Progress("WordCount", terminal)  # type: ignore[arg-type]
    progress.update(1, 4, 2, 2)
    progress.update(1, 4, 2, 2)  # unchanged: not written again
    progress.clear()
    assert terminal.written.count("starting WordCount: 2/2 stream managers registered, 1/4") == 1
    assert terminal.written.endswith("\r\x1b[K")
    pipe = _Terminal(False)
    launching.Progress("WordCount", pipe).update(1, 4, 2, 2)  # type: ignore[arg-type]
    assert pipe.written == ""
