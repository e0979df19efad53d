"""``heronpy-lite status CLUSTER NAME``: containers, processes, pids, ports, tasks."""

from __future__ import annotations

import argparse
import json
from typing import Any

from heronpy_lite.cli.common import require_topology, state_manager
from heronpy_lite.statemgr.base import (
    EXECUTION_STATE,
    PACKING_PLANS,
    PPLANS,
    SCHEDULERS,
    TMASTERS,
    StateManager,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "status",
        help="show a topology's processes",
        description="Show a topology's containers, processes, pids, ports and tasks.",
    )
    p.add_argument("cluster")
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
    return {
        "name": name,
        "cluster": record.get("cluster"),
        "state": state,
        "scheduler_pid": scheduler.get("pid"),
        "containers": containers,
        "components": record.get("components", {}),
    }


def run(args: argparse.Namespace) -> int:
    with state_manager(args.cluster) as sm:
        info = collect(sm, args.name)
    if args.format == "json":
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    print(f"Topology {info['name']}  state {info['state']}  scheduler pid {info['scheduler_pid']}")
    for c in info["containers"]:
        print(
            f"container {c['container']}: executor pid {c['executor_pid']}"
            f" (restarts {c['executor_restarts']})"
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
