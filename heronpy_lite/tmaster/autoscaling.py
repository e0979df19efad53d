"""The autoscaler's loop in the topology master (opt-in:
``topology.autoscale.enabled``; the policy is tmaster/autoscale.py).

Every `sample_period` it reads what ``status`` reads (the state manager's
nodes and the metrics managers' windows; tracker/model.py): each bolt's busy
milliseconds per second (its busiest task) and whether a stream manager
names it the backpressure culprit. A decision is logged, recorded in the
topology's node (``autoscale``: the last decisions, which ``status`` shows,
with the metrics that led to each), and carried out by ``heronpy-lite
update``, started as a process of its own outside the topology (it stops
this tmaster with every other process of the topology, and starts the new
plan, whose tmaster observes afresh after its cooldown).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from typing import Any

from heronpy_lite.api.api_constants import TOPOLOGY_RELIABILITY_MODE
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import TopologyError
from heronpy_lite.keygroups import DEFAULT_KEYGROUPS, keygroups_for
from heronpy_lite.scheduler import identity
from heronpy_lite.scheduler.executor import working_dir
from heronpy_lite.statemgr.base import TOPOLOGIES, StateManager
from heronpy_lite.tmaster.autoscale import AutoscaleConfig, ComponentSample, Decision
from heronpy_lite.tracker import model

log = logging.getLogger(__name__)

#: decisions kept in the topology's node
RECORDED = 20


def config_of(record: dict[str, Any]) -> AutoscaleConfig | None:
    """The topology's autoscale config (None: off); TopologyError if malformed, or
    where the autoscaler cannot run. The bolts it may scale are those ``update``
    may rescale: at EFFECTIVELY_ONCE not a stateful bolt whose state is not keyed."""
    config = record["config"]
    effectively_once = config.get(TOPOLOGY_RELIABILITY_MODE) == "EFFECTIVELY_ONCE"
    bolts = {
        c: int(s["par"])
        for c, s in record["components"].items()
        if not s.get("spout")
        and not (effectively_once and s.get("stateful") and not s.get("keyed"))
    }
    groups = min(
        [keygroups_for(record["components"][c].get("config", {}), config) for c in bolts]
        or [DEFAULT_KEYGROUPS]
    )
    scaling = AutoscaleConfig.from_config(config, bolts, groups)
    if scaling is not None and config.get("heron.scheduler.class", "local") != "local":
        # the update runs in the tmaster's container, which it stops on those schedulers
        raise TopologyError(
            "topology.autoscale.enabled: the autoscaler runs on the local scheduler only "
            "(on slurm and ray its update would stop itself with the tmaster's container)"
        )
    return scaling


def sample_period(config: AutoscaleConfig) -> float:
    return min(max(config.window / 6, 0.5), 5.0)


def sample(sm: StateManager, name: str, seconds: float) -> dict[str, ComponentSample]:
    """Each bolt's busy share over the last ``seconds`` and culprit flag (blocking)."""
    t = model.read_topology(sm, name)
    view = model.metrics_view(t, model.fetch_windows(t, seconds))
    culprits = model.backpressure(t).get("culprits", {})
    return {
        c: ComponentSample(figures.get("busy_ms_per_sec"), c in culprits)
        for c, figures in view["components"].items()
        if not figures.get("spout")
    }


def record_decision(sm: StateManager, name: str, decision: Decision) -> None:
    """Append ``decision`` (with the wall time) to the topology's node (blocking)."""
    record = sm.get_topology(name)
    entry = {**decision.to_dict(), "wall": time.time()}
    decisions = [*record.get("autoscale", {}).get("decisions", []), entry][-RECORDED:]
    sm.set(TOPOLOGIES, name, {**record, "autoscale": {"decisions": decisions}})


def launch_update(engine: EngineConfig, record: dict[str, Any], decision: Decision) -> int:
    """Start ``heronpy-lite update`` for ``decision``, detached, outside the
    topology's process markers (it stops every process carrying them); its
    output goes to the topology's log folder. The pid."""
    name = record["name"]
    argv = [
        sys.executable,
        "-m",
        "heronpy_lite",
        "update",
        record["cluster"],
        name,
        "--component-parallelism",
        f"{decision.component}:{decision.new}",
    ]
    if engine.statemgr_root_path:
        argv += ["--config-property", f"heron.statemgr.root.path={engine.statemgr_root_path}"]
    if engine.statemgr_connection_string:
        argv += [
            "--config-property",
            f"heron.statemgr.connection.string={engine.statemgr_connection_string}",
        ]
    env = {k: v for k, v in os.environ.items() if k != identity.TOPOLOGY_VAR}
    folder = working_dir(name) / "log"
    with open(folder / "autoscale.log", "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return proc.pid
