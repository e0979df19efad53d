"""``heronpy-lite tracker CLUSTER``: run the tracker (HTTP API and web UI) in the
foreground until Ctrl-C; ``heronpy-lite ui`` starts one in the background."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

from heronpy_lite import config
from heronpy_lite.cli.common import add_cluster_args, engine_from_args
from heronpy_lite.process import write_atomically
from heronpy_lite.statemgr import state_manager_for


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "tracker",
        help="serve the tracker API and web UI",
        description="Serve a cluster's topologies over HTTP: a JSON API with Heron "
        "tracker's resource names (described at /openapi.yaml) and the web UI at /. "
        "Binds heron.network.bind.host (127.0.0.1) unless --host says otherwise; "
        "control actions from the UI are refused on any address but loopback.",
    )
    add_cluster_args(p)
    p.add_argument("--host", help="address to listen on (default: heron.network.bind.host)")
    p.add_argument("--port", type=int, help="port to listen on (default: heron.tracker.port, 8888)")
    p.set_defaults(run=run)


def record_file(cluster: str) -> Path:
    """Where a running tracker of ``cluster`` leaves its URL and pid (for ``ui``)."""
    return config.home() / f"tracker-{cluster}.json"


def run(args: argparse.Namespace) -> int:
    from heronpy_lite.tracker.server import Tracker, is_loopback, serve

    engine = engine_from_args(args)
    host = args.host or engine.bind_host
    port = engine.tracker_port if args.port is None else args.port
    statemgr = state_manager_for(engine)
    tracker = Tracker(cluster=args.cluster, engine=engine, statemgr=statemgr, host=host, port=port)
    record = record_file(args.cluster)

    def ready(url: str) -> None:
        record.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(record, json.dumps({"url": url, "pid": os.getpid()}))
        print(f"Tracker of cluster {args.cluster!r} on {url}", flush=True)
        if not is_loopback(host):
            print(
                "warning: listening beyond loopback: anyone who reaches it reads the API; "
                "control actions are refused",
                flush=True,
            )

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await serve(tracker, ready)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(record.read_text()).get("pid") == os.getpid():
                record.unlink()
        statemgr.close()
    return 0
