"""Metrics over real HTTP: every container's /metrics, parsed with
prometheus_client's parser, holds the exact known counts; user metrics,
backpressure time, restart counters and the file_sd targets file; and a real
Prometheus server scrapes them through that file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_harness import TOPOLOGIES, Cli
from prometheus_client.parser import text_string_to_metric_families
from support import free_port, wait_for

N_PER_TASK = 1000
TOTAL = 3 * N_PER_TASK


def scrape(url: str) -> list[Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return [s for f in text_string_to_metric_families(text) for s in f.samples]


def samples(urls: list[str], name: str, **labels: str) -> list[Any]:
    return [
        s
        for url in urls
        for s in scrape(url)
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def total(urls: list[str], name: str, **labels: str) -> float:
    return sum(s.value for s in samples(urls, name, **labels))


@pytest.fixture(scope="module")
def metered(cli: Cli) -> Iterator[dict[str, Any]]:
    with cli.submitted(TOPOLOGIES / "metered.py", "Metered") as name:
        info = cli.status(name)
        urls = [c["metrics_url"] for c in info["containers"]]
        assert all(urls), info["containers"]
        # every process reports on its own 1 s clock: wait until all have caught up
        wait_for(
            lambda: all(total(urls, name_, component=c) == TOTAL for name_, c in CONVERGED),
            60,
            "every counter at its known total",
        )
        yield {"name": name, "urls": urls, "info": info}


CONVERGED = [
    ("heron_acked_total", "spout"),
    ("heron_acked_total", "first"),
    ("heron_acked_total", "second"),
    ("heron_emitted_total", "first"),
    ("heron_executed_total", "second"),
    ("heron_user_processed_total", "first"),
]


def test_engine_counters_are_exact_per_component_and_stream(metered: dict[str, Any]) -> None:
    urls = metered["urls"]
    emitted = samples(urls, "heron_emitted_total", component="spout", stream="default")
    assert sorted(s.value for s in emitted) == [N_PER_TASK] * 3  # one series per task
    assert {s.labels["topology"] for s in emitted} == {"Metered"}
    expected = {
        ("heron_emitted_total", "first", "default"): TOTAL,
        ("heron_executed_total", "first", "default"): TOTAL,
        ("heron_executed_total", "second", "default"): TOTAL,
    }
    for (name, component, stream), value in expected.items():
        assert total(urls, name, component=component, stream=stream) == value, name
    for component in ("spout", "first", "second"):
        assert total(urls, "heron_acked_total", component=component) == TOTAL
        failed = samples(urls, "heron_failed_total", component=component)
        assert failed and not any(s.value for s in failed)  # exported, and zero
    executed = samples(urls, "heron_executed_total", component="first")
    assert {s.labels["source_component"] for s in executed} == {"spout"}
    assert total(urls, "heron_complete_latency_seconds_count", component="spout") == TOTAL
    assert total(urls, "heron_execute_latency_seconds_count", component="first") == TOTAL
    tuples = total(urls, "heron_stmgr_tuples_total")
    assert tuples >= 2 * TOTAL  # every tuple passes at least one stream manager


def test_user_metrics_appear_with_their_values(metered: dict[str, Any]) -> None:
    urls = metered["urls"]
    wait_for(
        lambda: total(urls, "heron_user_processed_total", component="first") == TOTAL,
        10,
        "the user CountMetric's total",
    )
    means = samples(urls, "heron_user_value_mean", component="first")
    assert len(means) == 2 and all(s.value == 5.0 for s in means)


def test_killing_an_instance_raises_its_restart_counter(cli: Cli, metered: dict[str, Any]) -> None:
    urls, name = metered["urls"], metered["name"]
    victim = next(
        i
        for c in cli.status(name)["containers"][1:]
        for i in c["instances"]
        if i["component"] == "second"
    )
    task = str(victim["task_id"])
    assert total(urls, "heron_restarts_total", instance_id=task) == 0
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(
        lambda: total(urls, "heron_restarts_total", instance_id=task) == 1,
        30,
        "the restarted instance's restart counter",
    )


def test_file_sd_lists_every_container_endpoint(cli: Cli, metered: dict[str, Any]) -> None:
    path = Path(cli.status(metered["name"])["scrape_targets_file"])
    groups = json.loads(path.read_text())
    endpoints = {f"http://{t}/metrics" for g in groups for t in g["targets"]}
    assert endpoints == set(metered["urls"])
    assert {g["labels"]["heron_container"] for g in groups} == {"0", "1", "2"}


def test_text_status_shows_component_rates(cli: Cli, metered: dict[str, Any]) -> None:
    text = cli.run("status", "local", metered["name"]).stdout
    assert "emitted/s" in text and "executed/s" in text and "complete ms" in text
    assert all(f"metrics {url}" in text for url in metered["urls"])


def test_backpressure_time_is_reported_for_the_right_component(cli: Cli, tmp_path: Path) -> None:
    config = [
        "--config-property",
        "test.sleep.ms=2",
        "--config-property",
        "heron.stmgr.connection.buffer.high.bytes=262144",
        "--config-property",
        "heron.stmgr.connection.buffer.low.bytes=131072",
        "--config-property",
        "heron.instance.out.buffer.high.bytes=65536",
        "--config-property",
        "heron.network.socket.buffer.bytes=65536",
    ]
    with cli.submitted(
        TOPOLOGIES / "pressure.py", "Pressure", *config, name="MeteredPressure", output=tmp_path
    ) as name:
        urls = [c["metrics_url"] for c in cli.status(name)["containers"]]
        wait_for(
            lambda: total(urls, "heron_backpressure_culprit_seconds_total", component="slow") > 2,
            30,
            "the culprit's seconds",
        )
        assert total(urls, "heron_backpressure_culprit_seconds_total", component="fast") == 0
        assert total(urls, "heron_backpressure_seconds_total", component="flood") > 1
        # each process reports once a second: the spout's own count may lag the stmgr's
        wait_for(
            lambda: total(urls, "heron_spout_throttled_seconds_total", component="flood") > 1,
            10,
            "the spout's throttled seconds",
        )
        (tmp_path / "speedup").touch()
        (tmp_path / "stop").touch()


# ---------------------------------------------------------------- a real Prometheus

PROMETHEUS = shutil.which("prometheus")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    if PROMETHEUS is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus is not installed (scripts/test.sh installs Debian's package)")
        pytest.skip("prometheus is not installed")
    targets = tmp_path / "targets.json"
    targets.write_text("[]")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: heronpy_lite\n    file_sd_configs:\n"
        f"      - files: ['{targets}']\n        refresh_interval: 1s\n"
    )
    port = free_port()
    with open(tmp_path / "prometheus.out", "wb") as out:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield f"http://127.0.0.1:{port}", targets
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_real_prometheus_scrapes_the_file_sd_targets(
    cli: Cli, metered: dict[str, Any], prometheus: tuple[str, Path]
) -> None:
    base, targets = prometheus
    source = Path(cli.status(metered["name"])["scrape_targets_file"])
    # the topology's file, as the README's scrape config points Prometheus at it
    with tempfile.NamedTemporaryFile("w", dir=targets.parent, delete=False) as tmp:
        tmp.write(source.read_text())
    os.replace(tmp.name, targets)
    query = 'sum(heron_emitted_total{topology="Metered",component="spout"})'

    def answer() -> float | None:
        url = f"{base}/api/v1/query?query={urllib.parse.quote(query)}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                result = json.load(response)["data"]["result"]
        except OSError:
            return None
        return float(result[0]["value"][1]) if result else None

    wait_for(lambda: answer() == TOTAL, 60, f"Prometheus answering {query} with {TOTAL}")


def test_a_restarted_metrics_manager_hears_from_every_process_again(
    cli: Cli, metered: dict[str, Any]
) -> None:
    """Last in this module: the container's /metrics moves to a new port."""
    name = metered["name"]
    before = cli.status(name)["containers"][1]
    os.kill(before["metrics_pid"], signal.SIGKILL)

    def restarted_url() -> str | None:
        now = cli.status(name)["containers"][1]
        moved = now["metrics_pid"] not in (None, before["metrics_pid"])
        return now["metrics_url"] if moved else None

    wait_for(lambda: restarted_url() is not None, 30, "a new metrics manager for container 1")
    url = restarted_url()
    assert url is not None
    tasks = [str(i["task_id"]) for i in before["instances"]]

    def every_task_reported() -> bool:
        got = {s.labels["instance_id"] for s in samples([url], "heron_restarts_total")}
        return set(tasks) <= got and bool(samples([url], "heron_stmgr_bytes_total"))

    # its instances and stream manager were never restarted: they must find it again
    wait_for(every_task_reported, 30, "every process of container 1 reporting again")
