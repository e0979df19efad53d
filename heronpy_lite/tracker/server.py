"""The tracker: an HTTP API over one cluster's topologies, and the web UI.

One process per machine or cluster (``heronpy-lite tracker CLUSTER``). It
reads the cluster's state manager (topologies, plans, locations) and each
container's metrics manager (``/window``: rates between the producers' own
timestamps, and recent exceptions), and serves JSON with Heron tracker's
resource names where they fit (``/topologies``, ``/topologies/logicalplan``,
``/topologies/physicalplan``, ``/topologies/metrics``,
``/topologies/exceptions``, ``/topologies/exceptionsummary``,
``/topologies/container/filedata``...), documented in ``openapi.yaml``
beside this file (served as ``/openapi.yaml`` and ``/openapi.json``). ``/``
is the web UI (``static/``: plain HTML, CSS and JavaScript, no build step;
docs/decisions/0026-web-ui.md).

Nothing is polled while nobody asks: each request reads what it needs, and
what was read is kept for `CACHE_SECS` so a page that asks for several
documents at once costs one read.

Control (``POST /topologies/{activate,deactivate,restart,kill}``) runs the
CLI's own functions (docs/decisions/0027-tracker-control.md). It is refused
unless the tracker listens on loopback, and every request must name this
server in its ``Host`` header (no DNS rebinding) and, for control, send
JSON from this origin (no cross-site form posts).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import HeronpyLiteError, StateManagerError, TopologyNotFoundError
from heronpy_lite.scheduler.executor import working_dir
from heronpy_lite.statemgr import StateManager
from heronpy_lite.tracker import model
from heronpy_lite.wire import metric_names as names

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC = HERE / "static"
OPENAPI = HERE / "openapi.yaml"
CACHE_SECS = 1.0
DEFAULT_INTERVAL = 60.0
ENVIRON = "default"  # Heron's tracker groups topologies by cluster and environ
MAX_FILE_CHUNK = 1 << 20
FETCH_TIMEOUT = 3.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(Exception):
    """A request the client must change (400)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Tracker:
    """The tracker of ``cluster``; `app` is its aiohttp application."""

    def __init__(
        self,
        *,
        cluster: str,
        engine: EngineConfig,
        statemgr: StateManager,
        host: str,
        port: int,
    ) -> None:
        self.cluster = cluster
        self.engine = engine
        self.statemgr = statemgr
        self.host = host
        self.port = port
        self.controls_enabled = is_loopback(host)
        self.started = time.time()
        self._topologies: dict[str, tuple[float, model.Topology]] = {}
        self._windows: dict[tuple[str, float], tuple[float, list[dict[str, Any]]]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._openapi = yaml.safe_load(OPENAPI.read_text())
        self.app = web.Application(middlewares=[self._guard])
        self.routes: list[tuple[str, str]] = []
        for method, path, handler in self._route_table():
            self.app.router.add_route(method, path, handler)
            self.routes.append((method, path))
        self.app.router.add_static("/static/", STATIC, show_index=False)
        self.app.on_cleanup.append(self._close_session)

    def _route_table(self) -> list[tuple[str, str, Handler]]:
        get = "GET"
        return [
            (get, "/", self.index),
            (get, "/health", self.health),
            (get, "/openapi.yaml", self.openapi_yaml),
            (get, "/openapi.json", self.openapi_json),
            (get, "/clusters", self.clusters),
            (get, "/topologies", self.topologies),
            (get, "/topologies/states", self.states),
            (get, "/topologies/info", self.info),
            (get, "/topologies/config", self.config),
            (get, "/topologies/logicalplan", self.logicalplan),
            (get, "/topologies/packingplan", self.packingplan),
            (get, "/topologies/physicalplan", self.physicalplan),
            (get, "/topologies/executionstate", self.executionstate),
            (get, "/topologies/schedulerlocation", self.schedulerlocation),
            (get, "/topologies/metadata", self.metadata),
            (get, "/topologies/runtimestate", self.runtimestate),
            (get, "/topologies/backpressure", self.backpressure),
            (get, "/topologies/metrics", self.metrics),
            (get, "/topologies/componentmetrics", self.componentmetrics),
            (get, "/topologies/summary", self.summary),
            (get, "/topologies/exceptions", self.exceptions),
            (get, "/topologies/exceptionsummary", self.exceptionsummary),
            (get, "/topologies/container/filestats", self.filestats),
            (get, "/topologies/container/filedata", self.filedata),
            ("POST", "/topologies/activate", self.control),
            ("POST", "/topologies/deactivate", self.control),
            ("POST", "/topologies/restart", self.control),
            ("POST", "/topologies/kill", self.control),
        ]

    # -- plumbing --

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Requests must name this server (DNS rebinding); errors become JSON."""
        if request.host not in self._allowed_hosts():
            return _error(421, f"this tracker does not answer for host {request.host!r}")
        try:
            return await handler(request)
        except BadRequest as exc:
            return _error(400, str(exc))
        except TopologyNotFoundError as exc:
            return _error(404, str(exc))
        except StateManagerError as exc:
            return _error(503, f"state manager: {exc}")
        except HeronpyLiteError as exc:
            return _error(409, str(exc))

    def _allowed_hosts(self) -> set[str]:
        """``Host`` values naming this server (browsers always send the port)."""
        hosts = {_url_host(self.host)}
        if self.controls_enabled:
            hosts |= {"127.0.0.1", "localhost", "[::1]"}
        return {f"{h}:{self.port}" for h in hosts}

    async def _close_session(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
            )
        return self._session

    def _name(self, request: web.Request) -> str:
        cluster = request.query.get("cluster")
        if cluster is not None and cluster != self.cluster:
            raise TopologyNotFoundError(
                f"this tracker serves cluster {self.cluster!r}, not {cluster!r}"
            )
        name = request.query.get("topology")
        if not name:
            raise BadRequest("the topology parameter is required")
        return name

    @staticmethod
    def _interval(request: web.Request) -> float:
        raw = request.query.get("interval", "")
        if not raw or raw == "-1":
            return DEFAULT_INTERVAL
        try:
            value = float(raw)
        except ValueError:
            raise BadRequest(f"interval must be a number of seconds, got {raw!r}") from None
        if value <= 0:
            raise BadRequest("interval must be > 0")
        return value

    async def topology(self, name: str) -> model.Topology:
        cached = self._topologies.get(name)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_SECS:
            return cached[1]
        t = await asyncio.to_thread(model.read_topology, self.statemgr, name)
        self._topologies[name] = (now, t)
        if len(self._topologies) > 256:  # bounded: drop the oldest
            del self._topologies[min(self._topologies, key=lambda k: self._topologies[k][0])]
        return t

    async def windows(self, t: model.Topology, seconds: float) -> list[dict[str, Any]]:
        """Every metrics manager's ``/window`` of ``t`` (those that answer)."""
        key = (t.name, seconds)
        cached = self._windows.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_SECS:
            return cached[1]
        urls = list(t.window_urls(seconds).values())
        answers = await asyncio.gather(*(self._fetch(url) for url in urls))
        windows = [a for a in answers if a is not None]
        self._windows[key] = (now, windows)
        if len(self._windows) > 256:
            del self._windows[min(self._windows, key=lambda k: self._windows[k][0])]
        return windows

    async def _fetch(self, url: str) -> dict[str, Any] | None:
        try:
            async with self._http().get(url) as response:
                if response.status != 200:
                    return None
                document = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("metrics manager at %s did not answer: %s", url, exc)
            return None
        return document if isinstance(document, dict) else None

    async def _names(self) -> list[str]:
        return await asyncio.to_thread(self.statemgr.list_topologies)

    # -- the UI and the API's description --

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def health(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async def openapi_yaml(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=OPENAPI.read_text(), content_type="application/yaml")

    async def openapi_json(self, request: web.Request) -> web.StreamResponse:
        return _json(self._openapi)

    # -- topologies --

    async def clusters(self, request: web.Request) -> web.StreamResponse:
        return _json([self.cluster])

    async def topologies(self, request: web.Request) -> web.StreamResponse:
        return _json({self.cluster: {ENVIRON: await self._names()}})

    async def states(self, request: web.Request) -> web.StreamResponse:
        result = {}
        for name in await self._names():
            with contextlib.suppress(TopologyNotFoundError):  # killed meanwhile
                t = await self.topology(name)
                result[name] = self._execution(t)
        return _json({self.cluster: {ENVIRON: result}})

    def _execution(self, t: model.Topology) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "environ": ENVIRON,
            "topology": t.name,
            "state": t.state,
            "submitted_at": t.execution.get("submitted_at") or t.record.get("submitted_at"),
            "submitted_by": t.record.get("user"),
            "has_tmaster_location": t.tmaster is not None,
            "has_scheduler_location": bool(t.scheduler),
            "instances": len(t.task_placement()),
            "containers": int(t.packing.get("num_containers", 0)),
        }

    async def info(self, request: web.Request) -> web.StreamResponse:
        t = await self.topology(self._name(request))
        return _json(
            {
                "name": t.name,
                "execution_state": self._execution(t),
                "logical_plan": model.logical_plan(t),
                "physical_plan": self._physical(t),
                "packing_plan": t.packing,
                "scheduler_location": self._scheduler(t),
                "tmaster_location": t.tmaster,
            }
        )

    async def config(self, request: web.Request) -> web.StreamResponse:
        t = await self.topology(self._name(request))
        return _json(t.record.get("config", {}))

    async def logicalplan(self, request: web.Request) -> web.StreamResponse:
        return _json(model.logical_plan(await self.topology(self._name(request))))

    async def packingplan(self, request: web.Request) -> web.StreamResponse:
        return _json((await self.topology(self._name(request))).packing)

    def _physical(self, t: model.Topology) -> dict[str, Any]:
        return {"state": t.state, "containers": model.containers(t)}

    async def physicalplan(self, request: web.Request) -> web.StreamResponse:
        return _json(self._physical(await self.topology(self._name(request))))

    async def executionstate(self, request: web.Request) -> web.StreamResponse:
        return _json(self._execution(await self.topology(self._name(request))))

    def _scheduler(self, t: model.Topology) -> dict[str, Any]:
        return {
            "name": "local",
            "pid": t.scheduler.get("pid"),
            "host": t.scheduler.get("host"),
            "executors": t.scheduler.get("executors", {}),
        }

    async def schedulerlocation(self, request: web.Request) -> web.StreamResponse:
        return _json(self._scheduler(await self.topology(self._name(request))))

    async def metadata(self, request: web.Request) -> web.StreamResponse:
        t = await self.topology(self._name(request))
        return _json(
            {
                "cluster": self.cluster,
                "environ": ENVIRON,
                "topology": t.name,
                "submitted_at": t.record.get("submitted_at"),
                "submitted_by": t.record.get("user"),
                "file": t.record.get("file"),
                "attr": t.record.get("attr"),
            }
        )

    async def runtimestate(self, request: web.Request) -> web.StreamResponse:
        t = await self.topology(self._name(request))
        registered = {int(c) for c, *_ in t.pplan.get("stmgrs", [])}
        wanted = range(1, int(t.packing.get("num_containers", 0)) + 1)
        return _json(
            {
                "has_tmaster": t.tmaster is not None,
                "stmgrs": {str(c): {"is_registered": c in registered} for c in wanted},
            }
        )

    async def backpressure(self, request: web.Request) -> web.StreamResponse:
        return _json(model.backpressure(await self.topology(self._name(request))))

    # -- metrics and exceptions --

    async def _view(self, request: web.Request) -> tuple[model.Topology, dict[str, Any]]:
        t = await self.topology(self._name(request))
        windows = await self.windows(t, self._interval(request))
        return t, model.metrics_view(t, windows)

    async def componentmetrics(self, request: web.Request) -> web.StreamResponse:
        _, view = await self._view(request)
        return _json(view)

    async def summary(self, request: web.Request) -> web.StreamResponse:
        """Everything the UI's topology page shows, in one document."""
        t, view = await self._view(request)
        return _json(
            {
                "name": t.name,
                "cluster": self.cluster,
                "state": t.state,
                "submitted_at": t.record.get("submitted_at"),
                "interval": self._interval(request),
                "window": view["window"],
                "logical_plan": model.logical_plan(t),
                "components": view["components"],
                "instances": view["instances"],
                "backpressure": model.backpressure(t),
                "problems": model.problems(t, view),
                "containers": model.containers(t),
                "controls": self.controls_enabled,
                # the autoscaler's decisions, newest last (tmaster/autoscaling.py)
                "autoscale": t.record.get("autoscale", {}).get("decisions", []),
            }
        )

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        """Heron's ``/topologies/metrics``: per metric, per instance, the value over
        ``interval`` seconds (a counter's increase, a latency's mean in ms, a
        gauge's latest value). Metric names are ours or Heron's (``__emit-count``)."""
        t = await self.topology(self._name(request))
        component = request.query.get("component")
        if not component:
            raise BadRequest("the component parameter is required")
        interval = self._interval(request)
        wanted = {_metric_name(n) for n in request.query.getall("metricname", [])}
        instances = set(request.query.getall("instance", []))
        result: dict[str, dict[str, float]] = {}
        latency: dict[tuple[str, str], list[float]] = {}
        for window in await self.windows(t, interval):
            for source in window.get("sources", []):
                for metric, kind, labels, value, increase in source.get("series", []):
                    task = labels.get("instance_id", "")
                    if labels.get("component") != component or not task:
                        continue
                    if (wanted and metric not in wanted) or (instances and task not in instances):
                        continue
                    per = result.setdefault(metric, {})
                    if kind == "counter" and increase is not None:
                        per[task] = per.get(task, 0.0) + increase
                    elif kind == "gauge":
                        per[task] = per.get(task, 0.0) + value
                    elif kind == "summary" and increase is not None:
                        count, total = latency.setdefault((metric, task), [0.0, 0.0])
                        latency[(metric, task)] = [count + increase[0], total + increase[1]]
        for (metric, task), (count, total) in latency.items():
            if count:
                result.setdefault(metric, {})[task] = 1000 * total / count
        return _json({"interval": interval, "component": component, "metrics": result})

    async def _exceptions(self, request: web.Request) -> list[dict[str, Any]]:
        t = await self.topology(self._name(request))
        tasks = {int(i) for i in request.query.getall("instance", []) if i.isdigit()} or None
        windows = await self.windows(t, self._interval(request))
        return model.exceptions(t, windows, request.query.get("component"), tasks)

    async def exceptions(self, request: web.Request) -> web.StreamResponse:
        """Heron's ExceptionLog fields, plus ours (component, type, message)."""
        return _json(
            [
                {
                    "hostname": "",
                    "instance_id": str(e["task_id"]),
                    "stacktrace": e["traceback"],
                    "lasttime": e["last"],
                    "firsttime": e["first"],
                    "count": str(e["count"]),
                    "logging": e["message"],
                    **e,
                }
                for e in await self._exceptions(request)
            ]
        )

    async def exceptionsummary(self, request: web.Request) -> web.StreamResponse:
        summary: dict[str, dict[str, Any]] = {}
        for e in await self._exceptions(request):
            entry = summary.setdefault(
                e["type"],
                {"class_name": e["type"], "firsttime": e["first"], "lasttime": e["last"], "n": 0},
            )
            entry["n"] += e["count"]
            entry["firsttime"] = min(entry["firsttime"], e["first"])
            entry["lasttime"] = max(entry["lasttime"], e["last"])
        return _json([{**v, "count": str(v.pop("n"))} for v in summary.values()])

    # -- log files --

    def _log_dir(self, name: str) -> Path:
        return working_dir(name) / "log"

    async def filestats(self, request: web.Request) -> web.StreamResponse:
        name = self._name(request)
        await self.topology(name)
        folder = self._log_dir(name)
        files = []
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                with contextlib.suppress(OSError):
                    stat = path.stat()
                    files.append({"name": path.name, "size": stat.st_size, "mtime": stat.st_mtime})
        return _json({"path": str(folder), "files": files})

    async def filedata(self, request: web.Request) -> web.StreamResponse:
        """Heron's ``container/filedata``: ``length`` bytes of a log file from
        ``offset`` (-1: the last ``length`` bytes). Only files of the topology's
        log folder on this host."""
        name = self._name(request)
        await self.topology(name)
        file = request.query.get("path", "")
        if not file or "/" in file or "\\" in file or file.startswith("."):
            raise BadRequest("path must be the name of a file in the topology's log folder")
        try:
            offset = int(request.query.get("offset", "-1"))
            length = min(int(request.query.get("length", "65536")), MAX_FILE_CHUNK)
        except ValueError:
            raise BadRequest("offset and length must be integers") from None
        path = self._log_dir(name) / file
        try:
            data, start = await asyncio.to_thread(_read_slice, path, offset, max(0, length))
        except FileNotFoundError:
            raise TopologyNotFoundError(f"no log file {file!r} for {name!r}") from None
        return _json({"path": file, "offset": start, "length": len(data), "data": data})

    # -- control --

    async def control(self, request: web.Request) -> web.StreamResponse:
        command = request.path.rsplit("/", 1)[1]
        if not self.controls_enabled:
            return _error(403, "control actions need a tracker bound to loopback")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in {f"http://{h}" for h in self._allowed_hosts()}:
            return _error(403, f"control from origin {origin!r} refused")
        if request.content_type != "application/json":
            raise BadRequest("send the control request as JSON (Content-Type: application/json)")
        try:
            body = await request.json()
        except ValueError:
            raise BadRequest("the body is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("topology"), str):
            raise BadRequest('the body must be {"topology": NAME}')
        name = body["topology"]
        container = body.get("container")
        if container is not None and (not isinstance(container, int) or container < 0):
            raise BadRequest("container must be a container number")
        log.info("control: %s %s (container %s) from the UI", command, name, container)
        message = await asyncio.to_thread(self._run_control, command, name, container)
        self._topologies.pop(name, None)
        return _json({"ok": True, "message": message})

    def _run_control(self, command: str, name: str, container: int | None) -> str:
        """The CLI's own code path of each verb (cli/activate, restart, kill)."""
        from heronpy_lite.cli import kill, restart
        from heronpy_lite.cli.common import control, require_topology
        from heronpy_lite.errors import ControlError
        from heronpy_lite.scheduler.base import scheduler_for
        from heronpy_lite.security import load_secret

        control_verbs = ("activate", "deactivate")

        engine = EngineConfig.from_config(require_topology(self.statemgr, name)["config"])
        secret = load_secret(engine, self.cluster, name, required=command in control_verbs)
        if command in control_verbs:
            response = control(self.statemgr, name, command, engine=engine, secret=secret)
            if not response.ok:
                raise ControlError(f"{command} {name}: {response.message}")
            return response.message
        if command == "restart":
            targets = restart.restart_containers(self.statemgr, name, container, engine, secret)
            return f"Restarting container(s) {', '.join(map(str, targets))} of {name!r}."
        scheduler = scheduler_for(self.statemgr, name, engine)
        kill.kill_topology(self.statemgr, name, scheduler, self.cluster)
        return f"Topology {name!r} killed."


def _metric_name(name: str) -> str:
    """Our Prometheus name for ``name``, which may be Heron's (``__emit-count``)."""
    for d in names.DEFINITIONS:
        if d.heron and d.heron == name:
            return d.name
    return name


def _read_slice(path: Path, offset: int, length: int) -> tuple[str, int]:
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - length) if offset < 0 else min(offset, size)
        f.seek(start)
        data = f.read(length)
    if offset < 0 and start > 0:  # begin at a whole line
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            data, start = data[cut + 1 :], start + cut + 1
    return data.decode("utf-8", "replace"), start


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, allow_nan=False, default=str),
        status=status,
        content_type="application/json",
    )


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


async def serve(tracker: Tracker, ready: Callable[[str], None] | None = None) -> None:
    """Serve until cancelled; ``ready(url)`` once listening."""
    runner = web.AppRunner(tracker.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, tracker.host, tracker.port, reuse_address=True)
    try:
        await site.start()
        if tracker.port == 0:
            tracker.port = int(runner.addresses[0][1])
        url = f"http://{_url_host(tracker.host)}:{tracker.port}/"
        log.info("tracker of cluster %s serving on %s", tracker.cluster, url)
        if ready is not None:
            ready(url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def main(argv: list[str] | None = None) -> int:
    """``python -m heronpy_lite.tracker``: what ``heronpy-lite tracker`` runs."""
    from heronpy_lite.cli import main as cli_main

    return cli_main.main(["tracker", *(argv if argv is not None else sys.argv[1:])])
