"""A streamlet topology's config (``heronpy.streamlet.config``)."""

from __future__ import annotations

from typing import Any

from heronpy_lite.api import api_constants
from heronpy_lite.streamlet.resources import Resources


class Config:
    """Delivery semantics, containers, resources and user keys, for `Runner.run`.

    ``set_delivery_semantics`` sets ``topology.reliability.mode``:
    ATMOST_ONCE and ATLEAST_ONCE are the engine's modes (at least once, the
    sources replay every element whose tuple tree fails, and every operator
    anchors its output to its input); EFFECTIVELY_ONCE is recorded as heronpy
    records it, and refused at submit with a clear error: the streamlet
    operators keep no checkpointed state.
    """

    ATMOST_ONCE = 1
    ATLEAST_ONCE = 2
    EFFECTIVELY_ONCE = 3

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        if config is not None and not isinstance(config, dict):
            raise RuntimeError("Config has to be of type dict")
        self._api_config: dict[str, Any] = config if config is not None else {}

    def set_delivery_semantics(self, semantics: int) -> None:
        modes = {
            Config.ATMOST_ONCE: api_constants.TopologyReliabilityMode.ATMOST_ONCE,
            Config.ATLEAST_ONCE: api_constants.TopologyReliabilityMode.ATLEAST_ONCE,
            Config.EFFECTIVELY_ONCE: api_constants.TopologyReliabilityMode.EFFECTIVELY_ONCE,
        }
        if semantics not in modes:
            raise RuntimeError(f"Unknown Topology delivery semantics {semantics!s}")
        self._api_config[api_constants.TOPOLOGY_RELIABILITY_MODE] = modes[semantics]

    def set_num_containers(self, ncontainers: int) -> None:
        self._api_config[api_constants.TOPOLOGY_STMGRS] = int(ncontainers)

    def set_container_resources(self, resources: Resources) -> None:
        if not isinstance(resources, Resources):
            raise RuntimeError("container resources have to be of type Resources")
        self._api_config[api_constants.TOPOLOGY_CONTAINER_CPU_REQUESTED] = resources.get_cpu()
        self._api_config[api_constants.TOPOLOGY_CONTAINER_RAM_REQUESTED] = resources.get_ram()

    def set_user_config(self, key: str, value: Any) -> None:
        self._api_config[key] = value
