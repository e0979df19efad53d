"""The Prometheus ``file_sd`` targets file of a topology.

Container 0's executor keeps it current, wherever the containers run: every
container's metrics manager, at the address it published (docs: README,
Metrics). It lives in the topology's working directory, where the CLI runs
(with a multi-host scheduler, the working root is the shared path every
host mounts).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from heronpy_lite.config import home
from heronpy_lite.errors import StateManagerError
from heronpy_lite.process import write_atomically
from heronpy_lite.statemgr.base import StateManager

log = logging.getLogger(__name__)


def scrape_targets_file(topology: str) -> Path:
    """The Prometheus file_sd targets file of ``topology``."""
    return home() / "topologies" / topology / "prometheus_targets.json"


async def write_scrape_targets(statemgr: StateManager, topology: str) -> None:
    """Keep a Prometheus ``file_sd`` file listing every container's /metrics, so
    one scrape config (``file_sd_configs``) finds them all, wherever they move.
    A write that fails (a full disk) is tried again every second, said once."""
    path = scrape_targets_file(topology)
    written = None
    failing = False
    while True:
        try:
            managers = await asyncio.to_thread(statemgr.get_metricsmgrs, topology)
        except StateManagerError:
            managers = None
        if managers is not None:
            targets = [
                {
                    "targets": [f"{m['host']}:{m['port']}"],
                    "labels": {"heron_topology": topology, "heron_container": str(c)},
                }
                for c, m in sorted(managers.items())
                if isinstance(m, dict) and "host" in m and "port" in m
            ]
            if targets != written:
                try:
                    await asyncio.to_thread(
                        write_atomically, path, json.dumps(targets, indent=2) + "\n"
                    )
                except OSError as exc:
                    if not failing:
                        log.warning("cannot write the scrape targets %s, retrying: %s", path, exc)
                    failing = True
                else:
                    if failing:
                        log.info("wrote the scrape targets again")
                    failing = False
                    written = targets
        await asyncio.sleep(1.0)
