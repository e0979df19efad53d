"""``heronpy-lite status CLUSTER NAME``: containers, processes, pids, ports, tasks."""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from heronpy_lite.cli.common import add_cluster_args, require_topology, state_manager
from heronpy_lite.scheduler.local import scrape_targets_file
from heronpy_lite.statemgr.base import (
    EXECUTION_STATE,
    PACKING_PLANS,
    PPLANS,
    SCHEDULERS,
    TMASTERS,
    StateManager,
)
from heronpy_lite.wire import metric_names as names


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "status",
        help="show a topology's processes",
        description="Show a topology's containers, processes, pids, ports and tasks.",
    )
    add_cluster_args(p)
    p.add_argument("name")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


def collect(sm: StateManager, name: str) -> dict[str, Any]:
    record = require_topology(sm, name)
    packing = sm.get(PACKING_PLANS, name) or {"tasks": [], "num_containers": 0}
    plan = sm.get(PPLANS, name) or {}
    scheduler = sm.get(SCHEDULERS, name) or {}
    tmaster = sm.get(TMASTERS, name)
    state = (sm.get(EXECUTION_STATE, name) or {}).get("state", "UNKNOWN")
    stmgrs = {int(c): {"host": h, "port": p, "pid": pid} for c, h, p, pid in plan.get("stmgrs", [])}
    instances = {int(k): v for k, v in plan.get("instances", [])}
    executors = scheduler.get("executors", {})
    containers = []
    for c in range(int(packing["num_containers"]) + 1):
        ex = executors.get(str(c), {})
        entry: dict[str, Any] = {
            "container": c,
            "executor_pid": ex.get("pid"),
            "executor_restarts": ex.get("restarts", 0),
        }
        if c == 0:
            entry["tmaster"] = tmaster
        else:
            entry["stmgr"] = stmgrs.get(c)
            entry["instances"] = [
                {
                    "task_id": t,
                    "component": comp,
                    "index": idx,
                    **{
                        k: instances.get(t, {}).get(k)
                        for k in ("state", "pid", "restarts", "error")
                    },
                }
                for t, comp, idx, cont in packing["tasks"]
                if cont == c
            ]
        containers.append(entry)
    stats = {int(k): v for k, v in plan.get("stmgr_stats", [])}
    managers = sm.get_metricsmgrs(name)
    for entry in containers:
        manager = managers.get(entry["container"], {})
        entry["metrics_url"] = manager.get("url")
        entry["metrics_pid"] = manager.get("pid")
    return {
        "name": name,
        "cluster": record.get("cluster"),
        "state": state,
        "scheduler_pid": scheduler.get("pid"),
        "containers": containers,
        "components": record.get("components", {}),
        "backpressure": backpressure_summary(stats),
        "scrape_targets_file": str(scrape_targets_file(name)),
    }


_RATES = {
    names.EMITTED: "emitted/s",
    names.EXECUTED: "executed/s",
    names.ACKED: "acked/s",
    names.FAILED: "failed/s",
}
_LATENCIES = {
    names.EXECUTE_LATENCY: "execute",
    names.COMPLETE_LATENCY: "complete",
}


def _scrape(urls: list[str]) -> dict[tuple[str, str], float]:
    """(metric, component) -> value summed over every container's endpoint."""
    totals: dict[tuple[str, str], float] = {}
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name = sample.name
                if name.endswith("_created"):
                    continue
                key = (name, sample.labels.get("component", ""))
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def component_rates(urls: list[str], seconds: float = 1.0) -> dict[str, dict[str, float]]:
    """Per component: tuple rates over ``seconds`` and mean latencies (ms) over it."""
    before = _scrape(urls)
    began = time.monotonic()
    time.sleep(seconds)  # the measuring window of the rates
    after = _scrape(urls)
    elapsed = time.monotonic() - began
    result: dict[str, dict[str, float]] = {}
    for (name, component), value in after.items():
        delta = value - before.get((name, component), 0.0)
        if name in _RATES and component:
            result.setdefault(component, {})[_RATES[name]] = delta / elapsed
        for metric, label in _LATENCIES.items():
            if name == metric + "_sum" and component:
                count = after.get((metric + "_count", component), 0.0) - before.get(
                    (metric + "_count", component), 0.0
                )
                if count:
                    result.setdefault(component, {})[f"{label} ms"] = 1000 * delta / count
    return result


def backpressure_summary(stats: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Backpressure over every stmgr's last heartbeat: which components are the
    culprits (now, and seconds so far) and which are paused (now, and seconds)."""
    culprits_now: dict[str, list[int]] = {}
    culprit_seconds: dict[str, float] = {}
    paused_now: set[str] = set()
    paused_seconds: dict[str, float] = {}
    strategy = None
    for container, s in sorted(stats.items()):
        bp = s.get("backpressure", {})
        strategy = bp.get("strategy", strategy)
        for c in bp.get("culprits", []):
            culprits_now.setdefault(c, []).append(container)
        for c, secs in bp.get("culprit_seconds", {}).items():
            culprit_seconds[c] = culprit_seconds.get(c, 0.0) + secs
        paused_now.update(bp.get("paused", []))
        for c, secs in bp.get("paused_seconds", {}).items():
            # instances of one component pause in parallel in each container
            paused_seconds[c] = max(paused_seconds.get(c, 0.0), secs)
    return {
        "strategy": strategy,
        "culprits": culprits_now,
        "culprit_seconds": culprit_seconds,
        "paused": sorted(paused_now),
        "paused_seconds": paused_seconds,
    }


def _seconds(values: dict[str, float]) -> str:
    return ", ".join(f"{c} {s:.1f}s" for c, s in sorted(values.items(), key=lambda kv: -kv[1]))


def run(args: argparse.Namespace) -> int:
    with state_manager(args) as sm:
        info = collect(sm, args.name)
    if args.format == "json":
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    print(f"Topology {info['name']}  state {info['state']}  scheduler pid {info['scheduler_pid']}")
    urls = [c["metrics_url"] for c in info["containers"] if c.get("metrics_url")]
    if urls:
        rates = component_rates(urls)
        columns = [*_RATES.values(), "execute ms", "complete ms"]
        print(f"  {'component':<20}" + "".join(f"{c:>13}" for c in columns))
        for component in sorted(info["components"]):
            row = rates.get(component, {})
            cells = "".join(
                (f"{row[c]:>13.3f}" if c.endswith("ms") else f"{row[c]:>13.1f}")
                if c in row
                else f"{'-':>13}"
                for c in columns
            )
            print(f"  {component:<20}{cells}")
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
