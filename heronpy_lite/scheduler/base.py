"""The scheduler interface: Heron's verbs, one implementation per engine.

Heron's ``IScheduler`` has ``onSchedule(packingPlan)``, ``onKill``,
``onRestart`` and ``onUpdate``; so does `Scheduler`, for one topology. The
CLI verbs call it and nothing else about where containers run:

- ``local`` (`scheduler.local.LocalScheduler`): a scheduler process on this
  machine runs one executor per container.
- ``slurm`` (`scheduler.slurm.SlurmScheduler`): one batch job per container,
  requeued by Slurm when its node dies.
- ``ray`` (`scheduler.ray.RayScheduler`): one detached actor per container in
  a placement group, restarted by Ray when it dies.

`scheduler_for` picks the implementation named by ``heron.scheduler.class``.
Every implementation hands each container the topology's secret
(``security.SECRET_ENV``) and never writes it to the state manager.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from heronpy_lite.config import EngineConfig
from heronpy_lite.errors import ConfigError
from heronpy_lite.statemgr.base import StateManager
from heronpy_lite.wire.plan import PackingPlan


class Scheduler(ABC):
    """Where the containers of one topology run, and the verbs that change it."""

    def __init__(
        self,
        statemgr: StateManager,
        topology: str,
        engine: EngineConfig,
        secret: bytes | None = None,
    ) -> None:
        self.statemgr = statemgr
        self.topology = topology
        self.engine = engine
        #: handed to every container it starts (None: authentication is off, or this
        #: machine does not have it and starts nothing)
        self.secret = secret
        #: what the last verb found worth telling the user (a pid it did not signal)
        self.notes: list[str] = []

    @abstractmethod
    def schedule(self, packing: PackingPlan) -> None:
        """Start every container of ``packing`` (container 0 and 1..N); return once
        they are launched, not necessarily running."""

    @abstractmethod
    def kill(self) -> None:
        """Stop every process of the topology wherever it runs. Removing its nodes
        is the caller's (so that a container that outlives this ends itself)."""

    @abstractmethod
    def restart(self, container: int | None) -> list[int]:
        """Restart ``container`` (every container if None); the containers asked for."""

    @abstractmethod
    def update(self, packing: PackingPlan) -> None:
        """Run the topology with ``packing`` from now on (containers added, removed
        or moved; every container restarts with the new plan)."""

    def problem(self) -> str | None:
        """Why the containers cannot come up, if the scheduler knows (submit
        reports it at once instead of waiting for its deadline)."""
        return None


def scheduler_for(
    statemgr: StateManager, topology: str, engine: EngineConfig, secret: bytes | None = None
) -> Scheduler:
    """The scheduler of ``heron.scheduler.class``."""
    check_placement(engine)
    if engine.scheduler_class == "slurm":
        from heronpy_lite.scheduler.slurm import SlurmScheduler

        return SlurmScheduler(statemgr, topology, engine, secret)
    if engine.scheduler_class == "ray":
        from heronpy_lite.scheduler.ray import RayScheduler

        return RayScheduler(statemgr, topology, engine, secret)
    if engine.scheduler_class == "local":
        from heronpy_lite.scheduler.local import LocalScheduler

        return LocalScheduler(statemgr, topology, engine, secret)
    raise ConfigError(f"scheduler {engine.scheduler_class!r} is not available")


def check_placement(engine: EngineConfig) -> None:
    """ConfigError if a scheduler that places containers on several hosts is configured
    with a state manager that lives on one machine."""
    if engine.scheduler_class != "local" and engine.statemgr_class == "localfs":
        raise ConfigError(
            f"the {engine.scheduler_class} scheduler runs containers on several hosts, and the "
            "localfs state manager is on this machine only: use heron.statemgr.class zookeeper"
        )
