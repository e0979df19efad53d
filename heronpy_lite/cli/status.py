"""``heronpy-lite status CLUSTER NAME``: containers, processes, pids, ports, tasks,
and per component its rates, latencies, saturation and problems."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from typing import Any

from heronpy_lite.cli.common import add_cluster_args, require_topology, state_manager
from heronpy_lite.config import home
from heronpy_lite.scheduler.local import scrape_targets_file
from heronpy_lite.statemgr.base import StateManager
from heronpy_lite.tracker import model

#: what --window defaults to: long enough to smooth a spout's rounds, short enough to
#: show what happens now
DEFAULT_WINDOW = 10.0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "status",
        help="show a topology's processes, rates and problems",
        description="Show a topology's containers, processes, pids, ports and tasks, and "
        "per component: rates and latencies over the last --window seconds (between the "
        "processes' own metric snapshots), busy/backpressured/idle ms per second, pending "
        "trees, timeouts, failures, drops and exceptions.",
    )
    add_cluster_args(p)
    p.add_argument("name")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "--window",
        type=float,
        default=DEFAULT_WINDOW,
        metavar="SECS",
        help=f"rates over this many seconds (default {DEFAULT_WINDOW:g}; at most "
        "heron.metricsmgr.history.secs)",
    )
    p.set_defaults(run=run)


def collect(sm: StateManager, name: str) -> dict[str, Any]:
    require_topology(sm, name)
    return describe(model.read_topology(sm, name))


def describe(t: model.Topology) -> dict[str, Any]:
    """What status shows of the state manager's nodes (no metrics)."""
    return {
        "name": t.name,
        "cluster": t.record.get("cluster"),
        "state": t.state,
        "scheduler_pid": t.scheduler.get("pid"),
        "containers": model.containers(t),
        "components": t.components,
        "backpressure": model.backpressure(t),
        "checkpoints": model.checkpoints(t),
        # the autoscaler's decisions, newest last (tmaster/autoscaling.py)
        "autoscale": t.record.get("autoscale", {}).get("decisions", []),
        "scrape_targets_file": str(scrape_targets_file(t.name)),
    }


#: below this much free space in the working root, status says so
LOW_DISK_BYTES = 1 << 20


def disk_problems() -> list[str]:
    """The working root's disk, if nearly full: every process keeps running on a
    full disk, but cannot write its logs, port files or local state meanwhile."""
    try:
        free = shutil.disk_usage(home()).free
    except OSError:
        return []
    if free >= LOW_DISK_BYTES:
        return []
    return [
        f"the disk of {home()} has {free // 1024} KiB free: processes keep running but "
        "cannot write logs, port files or local state until space is freed"
    ]


_COLUMNS = [  # (heading, key, format)
    ("emitted/s", "emitted_per_sec", "{:.1f}"),
    ("executed/s", "executed_per_sec", "{:.1f}"),
    ("acked/s", "acked_per_sec", "{:.1f}"),
    ("failed/s", "failed_per_sec", "{:.1f}"),
    ("execute ms", "execute_latency_ms", "{:.3f}"),
    ("complete ms", "complete_latency_ms", "{:.3f}"),
    ("busy", "busy_ms_per_sec", "{:.0f}"),
    ("bp", "backpressured_ms_per_sec", "{:.0f}"),
    ("idle", "idle_ms_per_sec", "{:.0f}"),
]
_TOTAL_COLUMNS = [
    ("pending", "pending"),
    ("timed out", "timed_out"),
    ("failed", "failed"),
    ("dropped", "dropped"),
    ("exceptions", "exceptions"),
]


def _cell(row: dict[str, Any], key: str, fmt: str, width: int) -> str:
    value = row.get(key)
    return f"{fmt.format(value) if value is not None else '-':>{width}}"


def _seconds(values: dict[str, float]) -> str:
    return ", ".join(f"{c} {s:.1f}s" for c, s in sorted(values.items(), key=lambda kv: -kv[1]))


def print_metrics(view: dict[str, Any], problems: list[str]) -> None:
    components = view["components"]
    width = max([9, *(len(c) for c in components)]) + 2
    print(
        f"  rates over the last {view['window']:.1f}s; busy/bp/idle: ms per second of the "
        "busiest instance"
    )
    print(f"  {'component':<{width}}" + "".join(f"{h:>12}" for h, _, _ in _COLUMNS))
    for name, row in components.items():
        print(f"  {name:<{width}}" + "".join(_cell(row, k, f, 12) for _, k, f in _COLUMNS))
    print(
        f"  {'component':<{width}}"
        + "".join(f"{h:>12}" for h, _ in _TOTAL_COLUMNS)
        + "  last exception"
    )
    for name, row in components.items():
        last = row.get("last_exception")
        text = f"  {last['type']}: {last['message']}"[:80] if last else ""
        print(
            f"  {name:<{width}}"
            + "".join(_cell(row, k, "{:g}", 12) for _, k in _TOTAL_COLUMNS)
            + text
        )
    if problems:
        print("Problems:")
        for line in problems:
            print(f"  {line}")


def run(args: argparse.Namespace) -> int:
    with state_manager(args) as sm:
        require_topology(sm, args.name)
        t = model.read_topology(sm, args.name)
    info = describe(t)
    windows = model.fetch_windows(t, max(args.window, 0.0))
    view = model.metrics_view(t, windows)
    problems = model.problems(t, view)
    problems += disk_problems()
    if args.format == "json":
        info["metrics"] = {
            "window": view["window"],
            "components": view["components"],
            "instances": {str(k): v for k, v in view["instances"].items()},
        }
        info["problems"] = problems
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    print(f"Topology {info['name']}  state {info['state']}  scheduler pid {info['scheduler_pid']}")
    if windows:
        print_metrics(view, problems)
    elif problems:
        print("Problems:", *problems, sep="\n  ")
    bp = info["backpressure"]
    if bp["strategy"]:
        now = (
            "; ".join(
                f"culprit {c} (container {', '.join(map(str, cs))})"
                for c, cs in sorted(bp["culprits"].items())
            )
            or "none now"
        )
        if bp["paused"]:
            now += f"; paused {', '.join(bp['paused'])}"
        print(f"Backpressure ({bp['strategy']}): {now}")
        if bp["culprit_seconds"]:
            print(f"  caused by: {_seconds(bp['culprit_seconds'])}")
        if bp["paused_seconds"]:
            print(f"  paused:    {_seconds(bp['paused_seconds'])}")
    cp = info.get("checkpoints")
    if cp:
        print(_checkpoints_line(cp))
    for d in info["autoscale"][-3:]:
        when = time.strftime("%H:%M:%S", time.localtime(d.get("wall", 0)))
        metrics = ", ".join(f"{k} {v:g}" for k, v in d.get("metrics", {}).items())
        print(
            f"Autoscale {when}: {d['component']} {d['old']} -> {d['new']}: {d['reason']}"
            + (f" ({metrics})" if metrics else "")
        )
    for c in info["containers"]:
        print(
            f"container {c['container']}: executor pid {c['executor_pid']}"
            f" (restarts {c['executor_restarts']})"
            + (
                f"  metrics {c['metrics_url']} (pid {c['metrics_pid']})"
                if c.get("metrics_url")
                else ""
            )
        )
        if c["container"] == 0:
            tm = c["tmaster"] or {}
            print(f"  tmaster  pid {tm.get('pid')}  {tm.get('host')}:{tm.get('port')}")
            continue
        sm_ = c["stmgr"] or {}
        print(f"  stmgr    pid {sm_.get('pid')}  {sm_.get('host')}:{sm_.get('port')}")
        for i in c["instances"]:
            line = (
                f"  task {i['task_id']:<4} {i['component']}[{i['index']}]  "
                f"{i['state'] or 'unknown'}  pid {i['pid']}  restarts {i['restarts'] or 0}"
            )
            if i.get("error"):
                line += f"  last error: {i['error']}"
            print(line)
    return 0


def _checkpoints_line(cp: dict[str, Any]) -> str:
    """EFFECTIVELY_ONCE, in one line or two."""
    latest = cp.get("latest", -1)
    if latest is None or latest < 0:
        head = "Checkpoints: none complete yet"
    else:
        age = cp.get("age_secs")
        head = f"Checkpoints: latest {latest}" + (f" ({age:.1f}s ago)" if age is not None else "")
        head += (
            f", took {cp.get('last_duration_secs', 0):.3f}s, {cp.get('last_size_bytes', 0)} bytes"
        )
    head += (
        f"; epoch {cp.get('epoch', 0)}"
        + (" (restoring)" if cp.get("restoring") else "")
        + f"; {cp.get('completed', 0)} complete, {cp.get('failed', 0)} failed,"
        f" {cp.get('declined', 0)} declined, {cp.get('restores', 0)} restores"
    )
    if cp.get("last_failure"):
        head += f"\n  last failure: {cp['last_failure']}"
    return head
