"""``heronpy-lite ui CLUSTER [NAME]``: open the web UI, starting a tracker for the
cluster in the background if none runs."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import webbrowser
from typing import Any

from heronpy_lite import config
from heronpy_lite.cli.common import add_cluster_args
from heronpy_lite.cli.tracker import record_file
from heronpy_lite.errors import ControlError
from heronpy_lite.liveness import pid_alive

START_TIMEOUT = 15.0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "ui",
        help="open the web UI",
        description="Open the web UI of a cluster (a topology's page with NAME). Uses the "
        "cluster's running tracker, or starts one in the background (it keeps running; "
        "stop it with kill PID).",
    )
    add_cluster_args(p)
    p.add_argument("name", nargs="?", help="a topology to open")
    p.add_argument("--port", type=int, help="port of a tracker started here")
    p.add_argument("--no-browser", action="store_true", help="print the URL only, open no browser")
    p.set_defaults(run=run)


def running_tracker(cluster: str) -> dict[str, Any] | None:
    """The URL and pid of this cluster's tracker, if one runs and answers."""
    try:
        record = json.loads(record_file(cluster).read_text())
        url, pid = str(record["url"]), int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(pid):
        return None
    try:
        with urllib.request.urlopen(url + "health", timeout=2) as response:
            if response.status != 200:
                return None
    except OSError:
        return None
    return {"url": url, "pid": pid}


def start_tracker(args: argparse.Namespace) -> dict[str, Any]:
    """Start ``heronpy-lite tracker`` detached (its log beside the topologies)."""
    argv = [sys.executable, "-m", "heronpy_lite", "tracker", args.cluster]
    if args.config_path:
        argv += ["--config-path", args.config_path]
    for prop in args.config_property:
        argv += ["--config-property", prop]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    log = config.home() / "log" / f"tracker-{args.cluster}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            env={**os.environ, "HERONPY_LITE_HOME": str(config.home())},
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = running_tracker(args.cluster)
        if found is not None and found["pid"] == proc.pid:
            return found
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    raise ControlError(f"the tracker did not start; see {log}")


def _can_open_a_browser() -> bool:
    # without a display, webbrowser would pick a text browser and take the terminal
    return sys.platform == "darwin" or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def run(args: argparse.Namespace) -> int:
    tracker = running_tracker(args.cluster)
    started = tracker is None
    if tracker is None:
        tracker = start_tracker(args)
    url = tracker["url"] + (f"#/topology/{args.name}" if args.name else "")
    how = f"started, pid {tracker['pid']}" if started else f"pid {tracker['pid']}"
    print(f"Web UI: {url}  (tracker {how})")
    if not args.no_browser and _can_open_a_browser():
        webbrowser.open(url)
    return 0
