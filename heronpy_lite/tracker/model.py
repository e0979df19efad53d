"""What the tracker, the web UI and ``status`` say about a topology, built from
what the state manager holds and what the metrics managers' ``/window``
answers (see metrics/history.py).

`read_topology` (every node of one topology) and `fetch_windows` (the
metrics managers' windows, for the CLI and the autoscaler) are the blocking
reads; the rest is pure: `containers` (the physical plan with pids and ports),
`logical_plan`, `metrics_view` (per instance and per component: rates and
latencies over the window, saturation, pending trees, timeouts, failures,
drops, exceptions), `exceptions` and `problems` (one line each for what a
user should look at first).

Rates divide each series' increase by the time between the two snapshots
of its own process (``since`` and ``time`` of its source), so they never
alias with the export interval. A process whose latest snapshot is older
than `STALE_INTERVALS` export intervals is *stale* (it died, or its metrics
manager lost it): its totals are kept, its rates are not given.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from heronpy_lite.statemgr.base import (
    EXECUTION_STATE,
    PACKING_PLANS,
    PPLANS,
    SCHEDULERS,
    TMASTERS,
    StateManager,
)
from heronpy_lite.wire import metric_names as names

STALE_INTERVALS = 5


@dataclass
class Topology:
    """Every state-manager node of one topology, as read."""

    name: str
    record: dict[str, Any]
    packing: dict[str, Any]
    pplan: dict[str, Any]
    execution: dict[str, Any]
    scheduler: dict[str, Any]
    tmaster: dict[str, Any] | None
    metricsmgrs: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return str(self.execution.get("state", "UNKNOWN"))

    @property
    def components(self) -> dict[str, dict[str, Any]]:
        return dict(self.record.get("components", {}))

    def task_placement(self) -> dict[int, tuple[str, int, int]]:
        """task id -> (component, index, container)."""
        return {int(t): (str(c), int(i), int(k)) for t, c, i, k in self.packing.get("tasks", [])}

    def instance_status(self) -> dict[int, dict[str, Any]]:
        return {int(k): v for k, v in self.pplan.get("instances", [])}

    def window_urls(self, seconds: float) -> dict[int, str]:
        """container -> its metrics manager's ``/window`` URL."""
        return {
            c: f"http://{m['host']}:{m['port']}/window?seconds={seconds:g}"
            for c, m in sorted(self.metricsmgrs.items())
            if m.get("host") and m.get("port")
        }


def read_topology(sm: StateManager, name: str) -> Topology:
    """Every node of ``name`` (TopologyNotFoundError if it has no record)."""
    return Topology(
        name=name,
        record=sm.get_topology(name),
        packing=sm.get(PACKING_PLANS, name) or {"tasks": [], "num_containers": 0},
        pplan=sm.get(PPLANS, name) or {},
        execution=sm.get(EXECUTION_STATE, name) or {},
        scheduler=sm.get(SCHEDULERS, name) or {},
        tmaster=sm.get(TMASTERS, name),
        metricsmgrs=sm.get_metricsmgrs(name),
    )


def fetch_windows(t: Topology, seconds: float) -> list[dict[str, Any]]:
    """Every metrics manager's ``/window`` (those that answer within 2 s)."""
    windows = []
    for url in t.window_urls(seconds).values():
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                document = json.loads(response.read())
        except (OSError, ValueError):
            continue
        if isinstance(document, dict):
            windows.append(document)
    return windows


def containers(t: Topology) -> list[dict[str, Any]]:
    """Per container: executor, tmaster or stream manager, metrics manager, and
    each instance with its state, pid, restarts and last error."""
    stmgrs = {
        int(c): {"host": h, "port": p, "pid": pid} for c, h, p, pid in t.pplan.get("stmgrs", [])
    }
    instances = t.instance_status()
    executors = t.scheduler.get("executors", {})
    out = []
    for c in range(int(t.packing.get("num_containers", 0)) + 1):
        ex = executors.get(str(c), {})
        entry: dict[str, Any] = {
            "container": c,
            "executor_pid": ex.get("pid"),
            "executor_restarts": ex.get("restarts", 0),
        }
        if c == 0:
            entry["tmaster"] = t.tmaster
        else:
            entry["stmgr"] = stmgrs.get(c)
            entry["instances"] = [
                {
                    "task_id": task,
                    "component": comp,
                    "index": idx,
                    **{
                        k: instances.get(task, {}).get(k)
                        for k in ("state", "pid", "restarts", "error")
                    },
                }
                for task, (comp, idx, cont) in sorted(t.task_placement().items())
                if cont == c
            ]
        manager = t.metricsmgrs.get(c, {})
        entry["metrics_url"] = manager.get("url")
        entry["metrics_pid"] = manager.get("pid")
        out.append(entry)
    return out


def checkpoints(t: Topology) -> dict[str, Any] | None:
    """EFFECTIVELY_ONCE: the epoch, the latest complete checkpoint, its age and
    duration, counts of failed and declined ones (None for other topologies)."""
    stateful = t.pplan.get("stateful") or {}
    if not stateful:
        return None
    info: dict[str, Any] = dict(stateful.get("checkpoints") or {})
    info.setdefault("epoch", stateful.get("epoch", 0))
    if info.get("completed_at"):
        info["age_secs"] = round(max(time.time() - info["completed_at"], 0.0), 3)
    info["restored_from"] = stateful.get("restore", -1)
    return info


def logical_plan(t: Topology) -> dict[str, Any]:
    """Heron tracker's shape: ``spouts`` and ``bolts`` by name, each bolt with its
    ``inputs`` (the components it reads), plus ``edges`` for drawing the DAG."""
    spouts: dict[str, Any] = {}
    bolts: dict[str, Any] = {}
    edges = []
    for name, c in sorted(t.components.items()):
        entry = {"par": c.get("par", 1), "inputs": list(c.get("inputs", []))}
        (spouts if c.get("spout") else bolts)[name] = entry
        edges += [[source, name] for source in entry["inputs"]]
    return {"spouts": spouts, "bolts": bolts, "edges": edges}


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


def backpressure(t: Topology) -> dict[str, Any]:
    return backpressure_summary({int(k): v for k, v in t.pplan.get("stmgr_stats", [])})


# -- metrics --

#: counter -> (the name of its rate, of its total) in a view
_COUNTERS = {
    names.EMITTED: ("emitted_per_sec", "emitted"),
    names.EXECUTED: ("executed_per_sec", "executed"),
    names.ACKED: ("acked_per_sec", "acked"),
    names.FAILED: ("failed_per_sec", "failed"),
    names.TIMED_OUT: ("timed_out_per_sec", "timed_out"),
    names.SPOUT_EXPIRED: ("expired_per_sec", "expired"),
    names.DROPPED: ("dropped_per_sec", "dropped"),
    names.EXCEPTIONS: ("exceptions_per_sec", "exceptions"),
    names.NEXT_TUPLE: ("next_tuple_per_sec", "next_tuple_calls"),
}
_LATENCIES = {
    names.EXECUTE_LATENCY: "execute_latency_ms",
    names.PROCESS_LATENCY: "process_latency_ms",
    names.COMPLETE_LATENCY: "complete_latency_ms",
}
_SATURATION = {
    names.BUSY: "busy_ms_per_sec",
    names.BACKPRESSURED: "backpressured_ms_per_sec",
    names.IDLE: "idle_ms_per_sec",
}
_GAUGES = {
    names.PENDING: "pending",
    names.OUT_QUEUE: "out_queue_bytes",
}
_TOTALS = ("restarts",)


def _task_of(labels: dict[str, str]) -> int | None:
    try:
        return int(labels.get("instance_id", ""))
    except ValueError:
        return None


def metrics_view(t: Topology, windows: list[dict[str, Any]]) -> dict[str, Any]:
    """``instances`` (task id -> figures) and ``components`` (name -> figures) from
    the metrics managers' windows; ``window`` says over how many seconds the
    rates were measured (the shortest span of a live process)."""
    placement = t.task_placement()
    status = t.instance_status()
    per_task: dict[int, dict[str, Any]] = {}
    latency: dict[int, dict[str, list[float]]] = {}
    spans: list[float] = []
    for window in windows:
        interval = float(window.get("interval", 1.0))
        now = float(window.get("now", 0.0))
        for source in window.get("sources", []):
            span = float(source["time"]) - float(source["since"])
            stale = now - float(source["time"]) > STALE_INTERVALS * interval
            if span > 0 and not stale:
                spans.append(span)
            live = span > 0 and not stale
            for metric, _kind, labels, value, increase in source.get("series", []):
                task = _task_of(labels)
                if task is None or task not in placement:
                    continue
                figures = per_task.setdefault(task, {})
                if metric in _COUNTERS:
                    rate_key, total_key = _COUNTERS[metric]
                    figures[total_key] = figures.get(total_key, 0) + value
                    if live and increase is not None:
                        figures[rate_key] = figures.get(rate_key, 0.0) + increase / span
                elif metric in _LATENCIES and live and increase is not None:
                    count, total = latency.setdefault(task, {}).setdefault(metric, [0.0, 0.0])
                    latency[task][metric] = [count + increase[0], total + increase[1]]
                elif metric in _SATURATION and live and increase is not None:
                    figures[_SATURATION[metric]] = 1000 * increase / span
                elif metric in _GAUGES:
                    figures[_GAUGES[metric]] = figures.get(_GAUGES[metric], 0) + value
                elif metric == names.RESTARTS:
                    figures["restarts"] = value
                elif metric == names.HUNG and value and not stale:
                    figures["hung_seconds"] = value
                    figures["hung_call"] = labels.get("call", "")
                elif metric == names.RSS:
                    figures["rss_bytes"] = value
                if metric == names.EXCEPTIONS:
                    by_type = figures.setdefault("exceptions_by_type", {})
                    by_type[labels.get("type", "")] = value
            for entry in source.get("exceptions", []):
                task = _task_of({"instance_id": source["source"].removeprefix("task-")})
                if task in per_task or task in placement:
                    assert task is not None
                    figures = per_task.setdefault(task, {})
                    last = figures.get("last_exception")
                    if last is None or entry.get("last", 0) >= last.get("last", 0):
                        figures["last_exception"] = _exception_entry(entry, task, placement)
    for task, metrics in latency.items():
        for metric, (count, total) in metrics.items():
            if count:
                per_task[task][_LATENCIES[metric]] = 1000 * total / count
    instances = {}
    for task, (component, index, container) in sorted(placement.items()):
        figures = per_task.get(task, {})
        st = status.get(task, {})
        instances[task] = {
            "task_id": task,
            "component": component,
            "index": index,
            "container": container,
            "state": st.get("state"),
            "pid": st.get("pid"),
            "error": st.get("error") or "",
            **figures,
            "restarts": max(int(figures.get("restarts", 0)), int(st.get("restarts") or 0)),
        }
    components = {}
    for name, spec in sorted(t.components.items()):
        mine = [i for i in instances.values() if i["component"] == name]
        components[name] = _component(name, spec, mine, latency)
    return {
        "window": min(spans) if spans else 0.0,
        "instances": instances,
        "components": components,
    }


def _component(
    name: str,
    spec: dict[str, Any],
    instances: list[dict[str, Any]],
    latency: dict[int, dict[str, list[float]]],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "spout": bool(spec.get("spout")),
        "par": spec.get("par", len(instances)),
        "inputs": list(spec.get("inputs", [])),
    }
    for rate_key, total_key in _COUNTERS.values():
        rates = [i[rate_key] for i in instances if rate_key in i]
        if rates:
            out[rate_key] = sum(rates)
        out[total_key] = sum(i.get(total_key, 0) for i in instances)
    for metric, key in _LATENCIES.items():
        count = sum(latency.get(i["task_id"], {}).get(metric, [0.0, 0.0])[0] for i in instances)
        total = sum(latency.get(i["task_id"], {}).get(metric, [0.0, 0.0])[1] for i in instances)
        if count:
            out[key] = 1000 * total / count
    # the busiest instance colours the component (as Flink's job graph does)
    for key in _SATURATION.values():
        values = [i[key] for i in instances if key in i]
        if values:
            out[key] = max(values) if key != "idle_ms_per_sec" else min(values)
    out["pending"] = sum(i.get("pending", 0) for i in instances)
    out["restarts"] = sum(i.get("restarts", 0) for i in instances)
    by_type: dict[str, float] = {}
    for i in instances:
        for k, v in i.get("exceptions_by_type", {}).items():
            by_type[k] = by_type.get(k, 0) + v
    out["exceptions_by_type"] = by_type
    lasts = [i["last_exception"] for i in instances if "last_exception" in i]
    if lasts:
        out["last_exception"] = max(lasts, key=lambda e: e.get("last", 0))
    errors = [i for i in instances if i.get("error")]
    if errors:
        out["last_error"] = {"task_id": errors[-1]["task_id"], "error": errors[-1]["error"]}
    out["running"] = sum(1 for i in instances if i.get("state") == "running")
    return out


def _exception_entry(
    entry: dict[str, Any], task: int, placement: dict[int, tuple[str, int, int]]
) -> dict[str, Any]:
    component, _, container = placement.get(task, ("", 0, 0))
    return {
        "component": component,
        "task_id": task,
        "container": container,
        "where": str(entry.get("where", "")),
        "type": str(entry.get("type", "")),
        "message": str(entry.get("message", "")),
        "traceback": str(entry.get("traceback", "")),
        "count": int(entry.get("count", 0)),
        "first": float(entry.get("first", 0.0)),
        "last": float(entry.get("last", 0.0)),
    }


def exceptions(
    t: Topology,
    windows: list[dict[str, Any]],
    component: str | None = None,
    tasks: set[int] | None = None,
) -> list[dict[str, Any]]:
    """Every recent distinct exception of user code (see instance/exception_log.py),
    the most recent first, optionally of one component or some tasks."""
    placement = t.task_placement()
    out = []
    for window in windows:
        for source in window.get("sources", []):
            task = _task_of({"instance_id": source["source"].removeprefix("task-")})
            if task is None or task not in placement:
                continue
            if component is not None and placement[task][0] != component:
                continue
            if tasks is not None and task not in tasks:
                continue
            out += [_exception_entry(e, task, placement) for e in source.get("exceptions", [])]
    out.sort(key=lambda e: -e["last"])
    return out


def problems(t: Topology, view: dict[str, Any]) -> list[str]:
    """What a user should look at first, one line each (status and the UI)."""
    lines = []
    config = t.record.get("config", {})
    reliable = config.get("topology.reliability.mode") == "ATLEAST_ONCE"
    max_pending = int(config.get("topology.max.spout.pending", 0)) if reliable else 0
    for name, c in view["components"].items():
        if c.get("exceptions"):
            last = c.get("last_exception")
            detail = f"; last: {last['type']}: {last['message']}" if last else ""
            lines.append(f"{name}: {c['exceptions']:g} exceptions in user code{detail}")
        for key, what in (
            ("failed", "failed"),
            ("timed_out", "timed out"),
            ("expired", "expired without an answer"),
            ("dropped", "dropped emits"),
        ):
            if c.get(key):
                lines.append(f"{name}: {c[key]:g} {what}")
        if c.get("spout") and max_pending and c.get("pending", 0) >= max_pending * c["par"]:
            lines.append(
                f"{name}: {c['pending']:g} trees pending, at topology.max.spout.pending: "
                "next_tuple waits for acks (a bolt that does not ack?)"
            )
        if c.get("running", 0) < c.get("par", 0):
            lines.append(f"{name}: {c.get('running', 0)} of {c['par']} instances running")
    for i in view["instances"].values():
        if i.get("hung_seconds"):
            lines.append(
                f"{i['component']}[{i['index']}] (task {i['task_id']}): hung: "
                f"{i.get('hung_call') or 'user code'} has not returned for "
                f"{i['hung_seconds']:.0f}s (heron.instance.hang.timeout.secs)"
            )
        if i.get("error"):
            lines.append(
                f"{i['component']}[{i['index']}] (task {i['task_id']}): last error: {i['error']}"
            )
    bp = backpressure(t)
    for culprit, where in sorted(bp["culprits"].items()):
        lines.append(
            f"{culprit}: too slow, causing backpressure now (container "
            f"{', '.join(map(str, where))})"
        )
    return lines
