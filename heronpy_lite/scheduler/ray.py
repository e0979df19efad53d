"""The Ray scheduler: one detached actor per container, placed by a placement group.

`RayScheduler.schedule` connects to the cluster named by
``heron.scheduler.ray.address`` and, in the namespace ``heronpy_lite``:

- makes a detached placement group ``heronpy_lite-<topology>`` with one
  bundle per container (``heron.scheduler.ray.cpus.per.container`` CPUs
  each), spread across nodes by default
  (``heron.scheduler.ray.placement.strategy``);
- starts container k (0 = tmaster, 1..N = data) as the detached actor
  ``heronpy_lite-<topology>-<k>`` (`ContainerActor`) in bundle k, with
  ``max_restarts=-1``: Ray restarts it whenever it dies, on another node if
  its node is gone (Ray moves the bundles of a dead node to live ones).

The actor runs the container's executor as its child, in its process group
(every Ray worker leads its own), with the death signal set: when the actor
dies, the executor gets SIGTERM and stops its own children, which die with
it in turn, so nothing is orphaned. When the executor fails, the actor exits
and Ray restarts it; when the executor exits 0 (its topology was killed, its
state is gone, or the name was submitted again), the actor ends itself for
good, removing the topology's placement group.

The topology's code reaches the nodes through Ray's runtime environment: the
topology file's folder (the package root its imports are resolved from, as
on one machine) is the job's ``working_dir``, which Ray uploads once to the
cluster and unpacks on every node that runs a container; the actor hands
that folder to its processes in ``$HERONPY_LITE_CODE_DIR`` and the instances
load the topology from there (`code_location`). heronpy_lite itself must be
installed in the Python every Ray node runs. The topology's secret is an
argument of the actor (kept by Ray's control store for restarts, like any
actor's arguments), handed to the executor in its environment; it is never
written to the state manager nor put on a command line.

``kill`` stops every actor (its executor first, gracefully) and removes the
placement group; ``restart k`` kills actor k and lets Ray restart it;
``update`` kills and schedules again with the new packing plan. Every verb
finds the actors by name, so any machine that reaches the cluster can run
it (docs/decisions/0035-ray-scheduler.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from heronpy_lite import config, security
from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import ControlError, SchedulerError, StateManagerError
from heronpy_lite.scheduler.base import Scheduler
from heronpy_lite.statemgr.base import PACKING_PLANS, SCHEDULERS
from heronpy_lite.wire.plan import PackingPlan

log = logging.getLogger(__name__)

#: the Ray namespace of every actor and placement group heronpy_lite makes
NAMESPACE = "heronpy_lite"
#: where an actor tells its processes the runtime environment put the topology's code
CODE_DIR_ENV = "HERONPY_LITE_CODE_DIR"
#: how long kill waits for Ray to report every actor of the topology gone
_KILL_WAIT_SECS = 30.0


def actor_name(topology: str, container: int) -> str:
    return f"heronpy_lite-{topology}-{container}"


def group_name(topology: str) -> str:
    return f"heronpy_lite-{topology}"


def code_location(record: dict[str, Any]) -> tuple[str, str | None]:
    """(topology file, search folder) of a topology's record, for this process: under
    Ray, the copy the runtime environment unpacked on this node."""
    code_dir = os.environ.get(CODE_DIR_ENV)
    if code_dir:
        return str(Path(code_dir) / Path(record["file"]).name), code_dir
    return record["file"], record.get("search_dir")


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SchedulerError(
            "the ray scheduler needs Ray here: pip install 'ray[default]'"
        ) from None
    return ray


def connect(engine: EngineConfig, code_root: str | None = None) -> Any:
    """The ``ray`` module, connected to the cluster of ``engine`` (with ``code_root``
    as the job's working directory: the package its actors run)."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    # the usage statistics Ray would otherwise send out of the cluster
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(
            address=engine.ray_address or "auto",
            namespace=NAMESPACE,
            runtime_env={"working_dir": code_root} if code_root else None,
            log_to_driver=False,
            logging_level=logging.ERROR,
            include_dashboard=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SchedulerError(
            f"cannot reach the Ray cluster at {engine.ray_address!r}: {exc}"
        ) from None
    return ray


class ContainerActor:
    """One container, as a Ray actor: its executor is its child (module docstring)."""

    def __init__(self, topology: str, container: int, argv: list[str], env: dict[str, str]):
        from heronpy_lite.process import die_with_parent

        self.topology = topology
        self.container = container
        self._stopping = False
        workdir = Path(env["HERONPY_LITE_HOME"]) / "topologies" / topology
        (workdir / "log").mkdir(parents=True, exist_ok=True)
        child_env = {**os.environ, **env, CODE_DIR_ENV: os.getcwd()}
        started = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None

        def run() -> None:
            # the death signal fires when the thread that started the child ends:
            # this one lives as long as the actor
            try:
                with open(workdir / "log" / f"executor-{container}.out", "ab") as out:
                    self.proc = subprocess.Popen(
                        [sys.executable, *argv],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=out,
                        cwd=workdir,
                        env=child_env,
                        preexec_fn=die_with_parent,
                    )
            finally:
                started.set()
            code = self.proc.wait()
            if self._stopping:
                return
            if code == 0:
                # its topology is gone: end for good (Ray would restart an actor that exits)
                _end_topology(topology)
            else:
                os._exit(1)  # Ray restarts the actor, which starts a new executor

        threading.Thread(target=run, name="executor", daemon=True).start()
        started.wait()
        if self.proc is None:
            raise SchedulerError(f"container {container} of {topology}: cannot start its executor")

    def where(self) -> dict[str, Any]:
        """The node, the actor's pid and its executor's pid."""
        ray = _ray()
        return {
            "node_ip": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "executor_pid": self.proc.pid if self.proc else None,
        }

    def stop(self, timeout: float) -> int | None:
        """SIGTERM the executor (it stops its children), SIGKILL it after ``timeout``."""
        self._stopping = True
        proc = self.proc
        if proc is None:
            return None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def _end_topology(topology: str) -> None:
    """From inside an actor whose topology is gone: remove the topology's placement
    group (Ray kills its actors) and this actor, neither to be restarted."""
    ray = _ray()
    _remove_group(ray, topology)
    ray.kill(ray.get_runtime_context().current_actor, no_restart=True)


def _remove_group(ray: Any, topology: str) -> None:
    """Remove the topology's placement group (Ray kills the actors in it), if any."""
    with contextlib.suppress(ValueError):  # none, or already removed
        ray.util.remove_placement_group(ray.util.get_placement_group(group_name(topology)))


class RayScheduler(Scheduler):
    """`Scheduler` through Ray (see the module's docstring)."""

    def _working_root(self) -> str:
        return self.engine.ray_working_root or str(config.home())

    def _argv(self, container: int) -> list[str]:
        from heronpy_lite.process import common_argv
        from heronpy_lite.scheduler.executor import EXECUTOR_MODULE

        log_file = Path(self._working_root()) / "topologies" / self.topology / "log"
        return [
            "-m",
            EXECUTOR_MODULE,
            *common_argv(self.topology, self.engine, log_file / f"executor-{container}.log"),
            "--container",
            str(container),
        ]

    def schedule(self, packing: PackingPlan) -> None:
        if self.engine.authentication and self.secret is None:
            raise ControlError(f"starting {self.topology!r} needs its secret, and there is none")
        record = self.statemgr.get_topology(self.topology)
        ray = connect(self.engine, record.get("search_dir"))
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self._remove_leftovers(ray, packing.num_containers)
        cpus = self.engine.ray_cpus_per_container
        group = ray.util.placement_group(
            [{"CPU": cpus}] * (packing.num_containers + 1),
            strategy=self.engine.ray_placement_strategy,
            name=group_name(self.topology),
            lifetime="detached",
        )
        if not group.wait(timeout_seconds=self.engine.submit_timeout_secs):
            ray.util.remove_placement_group(group)
            raise SchedulerError(
                f"the Ray cluster cannot place {packing.num_containers + 1} containers of "
                f"{cpus:g} CPU ({self.engine.ray_placement_strategy}) within "
                f"{self.engine.submit_timeout_secs:g}s"
            )
        env = {"HERONPY_LITE_HOME": self._working_root(), **security.secret_env(self.secret)}
        actor_class = ray.remote(ContainerActor)
        actors = {}
        for k in range(packing.num_containers + 1):
            actor_class.options(
                name=actor_name(self.topology, k),
                namespace=NAMESPACE,
                lifetime="detached",
                max_restarts=-1,
                num_cpus=cpus,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    group, placement_group_bundle_index=k
                ),
            ).remote(self.topology, k, self._argv(k), env)
            actors[str(k)] = actor_name(self.topology, k)
        self.statemgr.set(
            SCHEDULERS,
            self.topology,
            {
                "engine": "ray",
                "address": self.engine.ray_address,
                "placement_group": group_name(self.topology),
                "actors": actors,
            },
        )
        log.info("started %s as Ray actors %s", self.topology, sorted(actors.values()))

    def _remove_leftovers(self, ray: Any, containers: int) -> None:
        """Kill the actors and placement group an earlier topology of this name left
        (its record is gone, or submit would have refused the name)."""
        for k in range(containers + 1):
            try:
                ray.kill(ray.get_actor(actor_name(self.topology, k)), no_restart=True)
            except ValueError:
                continue
        _remove_group(ray, self.topology)

    def _containers(self) -> list[int]:
        """Every container the topology may have (from its packing plan and record:
        a failed submit may not have recorded its actors)."""
        found: set[int] = set()
        try:
            packing = self.statemgr.get(PACKING_PLANS, self.topology) or {}
            record = self.statemgr.get(SCHEDULERS, self.topology) or {}
        except StateManagerError:
            packing, record = {}, {}
        found |= set(range(int(packing.get("num_containers", 0)) + 1))
        found |= {int(k) for k in record.get("actors", {})}
        return sorted(found)

    def actors(self) -> dict[int, Any]:
        """container -> handle of each of the topology's actors Ray knows."""
        ray = connect(self.engine)
        handles = {}
        for k in self._containers():
            try:
                handles[k] = ray.get_actor(actor_name(self.topology, k))
            except ValueError:
                continue
        return handles

    def kill(self) -> None:
        ray = connect(self.engine)
        handles = self.actors()
        # the executors first, gracefully (they stop their children in order)
        stops = [h.stop.remote(self.engine.kill_timeout_secs) for h in handles.values()]
        try:
            ray.wait(stops, num_returns=len(stops), timeout=self.engine.kill_timeout_secs + 10)
        except Exception as exc:  # an actor that is restarting or dead cannot answer
            log.info("not every container answered stop: %s", exc)
        for handle in handles.values():
            ray.kill(handle, no_restart=True)
        _remove_group(ray, self.topology)
        deadline = time.monotonic() + _KILL_WAIT_SECS
        while time.monotonic() < deadline:
            left = self.actors()
            if not left:
                return
            time.sleep(0.2)
        raise SchedulerError(f"Ray actors {sorted(left)} of {self.topology!r} are still there")

    def restart(self, container: int | None) -> list[int]:
        ray = connect(self.engine)
        handles = self.actors()
        if not handles:
            raise ControlError(f"no Ray actors are running for {self.topology!r}")
        targets = [container] if container is not None else sorted(handles)
        for c in targets:
            if c not in handles:
                raise ControlError(f"{self.topology!r} has no container {c}")
        for c in targets:
            # Ray restarts a killed actor that may restart (its executor gets SIGTERM
            # with the actor, and stops its children)
            ray.kill(handles[c], no_restart=False)
        return targets

    def update(self, packing: PackingPlan) -> None:
        if self.engine.authentication and self.secret is None:
            raise ControlError(f"updating {self.topology!r} needs its secret, and there is none")
        # connect as schedule does, before kill would without the package: a process
        # joins its Ray job once, and the new actors must get the topology's code
        connect(self.engine, self.statemgr.get_topology(self.topology).get("search_dir"))
        self.kill()
        self.statemgr.set(PACKING_PLANS, self.topology, packing.to_dict())
        self.schedule(packing)
