"""The tracker API, the web UI in a real headless Chromium, and status, on one
running topology: a spout flooding a bolt that sleeps per tuple (the culprit
of backpressure) and a bolt that raises on every 50th tuple.

The browser is Debian's ``chromium`` driven by Playwright (never a browser
Playwright downloads): headless, no sandbox (tests run as root), a fresh
profile, and the flags that keep it off the network. Without chromium or
Playwright the browser test skips, and fails under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_harness import TOPOLOGIES, Cli
from support import wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PRESSURE = [
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


@pytest.fixture(scope="module")
def topology(cli: Cli) -> Iterator[str]:
    with cli.submitted(TOPOLOGIES / "observed.py", "Observed", *PRESSURE) as name:
        yield name


@pytest.fixture(scope="module")
def tracker(cli: Cli, topology: str) -> Iterator[str]:
    """A tracker of the ``local`` cluster on a free port; its base URL."""
    record = cli.home / "tracker-local.json"
    with open(cli.home / "tracker.out", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "heronpy_lite", "tracker", "local", "--port", "0"],
            env=cli.env,
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for(lambda: record.exists() or proc.poll() is not None, 30, "the tracker's URL")
        assert proc.poll() is None, (cli.home / "tracker.out").read_text()
        url = json.loads(record.read_text())["url"]
        assert url.startswith("http://127.0.0.1:")  # loopback by default
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert not record.exists()  # the tracker removes its record when it stops


def call(url: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, Any]:
    """(HTTP status, the JSON answer) of a GET, or of a POST of ``body``."""
    request = urllib.request.Request(url.rstrip("/") + path, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def get(url: str, path: str) -> Any:
    code, answer = call(url, path)
    assert code == 200, (path, code, answer)
    return answer


def test_the_api_lists_the_topology_and_its_plans(tracker: str, topology: str) -> None:
    assert get(tracker, "/topologies") == {"local": {"default": [topology]}}
    states = get(tracker, "/topologies/states")["local"]["default"]
    assert states[topology]["state"] == "RUNNING" and states[topology]["instances"] == 3
    plan = get(tracker, f"/topologies/logicalplan?topology={topology}")
    assert set(plan["spouts"]) == {"flood"} and set(plan["bolts"]) == {"slow", "raiser"}
    assert sorted(map(tuple, plan["edges"])) == [("flood", "raiser"), ("flood", "slow")]
    physical = get(tracker, f"/topologies/physicalplan?topology={topology}&cluster=local")
    instances = [i for c in physical["containers"][1:] for i in c["instances"]]
    assert sorted(i["component"] for i in instances) == ["flood", "raiser", "slow"]
    assert all(i["pid"] and i["state"] == "running" for i in instances)
    assert physical["containers"][0]["tmaster"]["port"] > 0
    code, answer = call(tracker, "/topologies/info?topology=NoSuchTopology")
    assert code == 404 and "NoSuchTopology" in answer["error"]


def _summary(tracker: str, topology: str) -> dict[str, Any]:
    return dict(get(tracker, f"/topologies/summary?topology={topology}&interval=10"))


def test_rates_saturation_and_the_culprit_of_the_slow_bolt(tracker: str, topology: str) -> None:
    def settled() -> dict[str, Any] | None:
        s = _summary(tracker, topology)
        c = s["components"]
        ok = (
            "slow" in s["backpressure"]["culprits"]
            and c["flood"].get("emitted_per_sec", 0) > 0
            and c["slow"].get("executed_per_sec", 0) > 0
            and c["slow"].get("busy_ms_per_sec", 0) > 500  # sleeping in process()
            and c["flood"].get("backpressured_ms_per_sec", 0) > 500  # throttled
        )
        return s if ok else None

    s = wait_for(settled, 60, "the slow bolt busy and the culprit, the spout backpressured")
    assert list(s["backpressure"]["culprits"]) == ["slow"]
    for i in s["instances"].values():
        total = i["busy_ms_per_sec"] + i["backpressured_ms_per_sec"] + i["idle_ms_per_sec"]
        assert total == pytest.approx(1000, abs=50), i
    # the bolt cannot go faster than one tuple per 2 ms
    assert s["components"]["slow"]["executed_per_sec"] < 520
    assert any("slow: too slow, causing backpressure" in p for p in s["problems"])


def test_an_exception_raised_by_a_bolt_comes_with_its_traceback(
    tracker: str, topology: str
) -> None:
    def raised() -> list[dict[str, Any]]:
        return [
            e
            for e in get(tracker, f"/topologies/exceptions?topology={topology}&component=raiser")
            if e["type"] == "ValueError"
        ]

    (entry,) = wait_for(raised, 60, "the raiser's ValueError")
    assert entry["where"] == "process" and entry["component"] == "raiser"
    assert entry["message"].startswith("tuple ") and entry["message"].endswith(" is bad")
    assert 'raise ValueError(f"tuple {tup.values[0]} is bad")' in entry["traceback"]
    assert entry["stacktrace"] == entry["traceback"] and int(entry["count"]) >= 1
    summary = get(tracker, f"/topologies/exceptionsummary?topology={topology}")
    assert [e["class_name"] for e in summary] == ["ValueError"]
    raiser = _summary(tracker, topology)["components"]["raiser"]
    assert raiser["exceptions_by_type"]["ValueError"] >= 1
    assert raiser["last_exception"]["type"] == "ValueError"


def test_heron_metric_names_are_understood(tracker: str, topology: str) -> None:
    def counts() -> dict[str, float]:
        got = get(
            tracker,
            f"/topologies/metrics?topology={topology}&component=flood"
            "&metricname=__emit-count&interval=10",
        )
        return dict(got["metrics"].get("heron_emitted_total", {}))

    per_task = wait_for(lambda: (c := counts()) and all(v > 0 for v in c.values()) and c, 30)
    assert list(per_task) == ["1"]  # flood is task 1


def test_the_tail_of_an_instance_log(tracker: str, topology: str) -> None:
    files = get(tracker, f"/topologies/container/filestats?topology={topology}")["files"]
    names = {f["name"] for f in files}
    assert "instance-slow-2.log" in names and "stmgr-1.log" in names
    tail = get(
        tracker,
        f"/topologies/container/filedata?topology={topology}&path=instance-slow-2.log"
        "&offset=-1&length=100000",
    )
    assert "task 2 initialized" in tail["data"]
    for bad in ("../../state/topologies/x", ".hidden", ""):
        code, _ = call(tracker, f"/topologies/container/filedata?topology={topology}&path={bad}")
        assert code == 400, bad


def test_other_hosts_and_cross_site_control_are_refused(tracker: str, topology: str) -> None:
    code, _ = call(tracker, "/topologies", Host="attacker.example:80")
    assert code == 421
    body = json.dumps({"topology": topology}).encode()
    # a form a foreign page could post without asking: not JSON
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    code, answer = call(tracker, "/topologies/kill", body, **form)
    assert code == 400 and "JSON" in answer["error"]
    foreign = {"Content-Type": "application/json", "Origin": "http://attacker.example"}
    code, _ = call(tracker, "/topologies/kill", body, **foreign)
    assert code == 403
    code, _ = call(
        tracker, "/topologies/activate", b'{"topology": 3}', **{"Content-Type": "application/json"}
    )
    assert code == 400
    assert _summary(tracker, topology)["state"] == "RUNNING"  # nothing was done


def test_status_shows_rates_saturation_and_problems(cli: Cli, topology: str) -> None:
    def with_exceptions() -> dict[str, Any] | None:
        info = cli.status(topology)
        raiser = info["metrics"]["components"]["raiser"]
        return info if raiser.get("exceptions", 0) >= 1 else None

    info = wait_for(with_exceptions, 60, "status counting the raiser's exceptions")
    components = info["metrics"]["components"]
    assert components["flood"]["emitted_per_sec"] > 0
    assert components["slow"]["execute_latency_ms"] >= 2  # it sleeps 2 ms per tuple
    assert components["raiser"]["last_exception"]["type"] == "ValueError"
    assert {"busy_ms_per_sec", "backpressured_ms_per_sec", "idle_ms_per_sec"} <= set(
        info["metrics"]["instances"]["2"]
    )
    assert any(p.startswith("raiser: ") and "ValueError: tuple" in p for p in info["problems"])
    text = cli.run("status", "local", topology, "--window", "5").stdout
    assert "rates over the last" in text and "busy" in text and "exceptions" in text
    assert "Problems:" in text and "raiser:" in text and "ValueError: tuple" in text


# ---------------------------------------------------------------- the web UI


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("playwright is not installed (pip install -e '.[test]')")
        pytest.skip("playwright is not installed")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (scripts/test.sh installs Debian's package)")
        pytest.skip("chromium is not installed")
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-domain-reliability",
                "--disable-sync",
                "--metrics-recording-only",
                "--no-first-run",
                "--no-default-browser-check",
                "--no-pings",
                "--safebrowsing-disable-auto-update",
            ],
        )
        try:
            yield context
        finally:
            context.close()


def test_the_web_ui_shows_the_topology_and_controls_it(
    cli: Cli, tracker: str, topology: str, browser: Any
) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(tracker)
    page.wait_for_selector(f'#topologies tr[data-topology="{topology}"]', timeout=20_000)
    page.click(f'#topologies a:text("{topology}")')

    # the DAG: every component drawn, labelled with a rate above zero
    for component in ("flood", "slow", "raiser"):
        page.wait_for_function(
            f"""() => {{
                const n = document.querySelector('.node[data-component="{component}"]');
                return n && Number(n.dataset.rate) > 0;
            }}""",
            timeout=60_000,
        )
    assert "/s" in (page.text_content('.node[data-component="flood"] text.rate') or "")
    # the culprit of the slow bolt, marked on its node
    page.wait_for_selector('.node.culprit[data-component="slow"]', timeout=60_000)
    assert page.text_content('.node[data-component="slow"] text.flag') == "culprit"
    assert page.query_selector('.node.culprit[data-component="raiser"]') is None
    assert "culprit slow" in page.inner_text("#backpressure")
    # the bolt's exception, with its traceback
    row = page.wait_for_selector('#exceptions tr[data-component="raiser"]', timeout=60_000)
    assert "ValueError" in row.inner_text() and " is bad" in row.inner_text()
    page.click('#exceptions tr[data-component="raiser"] summary')
    assert "raise ValueError" in page.inner_text('#exceptions tr[data-component="raiser"] pre')
    # an instance's log
    page.click('#instances tr[data-task="2"]')
    page.wait_for_selector("#log", timeout=20_000)
    assert "task 2 initialized" in page.inner_text("#log")

    # deactivate, then activate, from the page (each asks for a confirmation)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#deactivate")
    page.wait_for_selector("#state.PAUSED", timeout=30_000)
    assert cli.status(topology)["state"] == "PAUSED"
    page.once("dialog", lambda dialog: dialog.dismiss())  # "no": nothing happens
    page.click("#activate")
    assert cli.status(topology)["state"] == "PAUSED"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#activate")
    page.wait_for_selector("#state.RUNNING", timeout=30_000)
    assert cli.status(topology)["state"] == "RUNNING"
    assert errors == []
    page.close()
