"""Key groups: how fields grouping spreads keys over tasks, so that keyed state
can move when a component's parallelism changes (docs/decisions/0047-key-groups.md).

A fields-grouped consumer has a fixed number of *key groups*,
``topology.keygroups`` (its own config's, else the topology's, else 128): the
most tasks it can ever have, as Flink's maximum parallelism. A key's group is
``fields_hash(key) % keygroups`` (instance/routing.py: a hash every process
agrees on), and group ``g`` belongs to the task at index ``g * tasks //
keygroups``: each task owns one contiguous range of groups. Changing the
parallelism moves whole groups; a task's keyed state is the union of its
groups' states, and goes with them (instance/stateful.py).

Pure arithmetic and config lookups; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from heronpy_lite.errors import TopologyError

#: the key (a topology's config, or one component's)
TOPOLOGY_KEYGROUPS: Final = "topology.keygroups"
DEFAULT_KEYGROUPS: Final = 128
#: at most: each fields route of every sender holds a table of them
MAX_KEYGROUPS: Final = 65536


def key_group(key_hash: int, keygroups: int) -> int:
    """The key group of a key whose fields hash is ``key_hash``."""
    return key_hash % keygroups


def group_owner(group: int, keygroups: int, tasks: int) -> int:
    """The index (0..tasks-1) of the task that owns key group ``group``."""
    return group * tasks // keygroups


def keygroups_for(component_config: Mapping[str, Any], topology_config: Mapping[str, Any]) -> int:
    """``topology.keygroups`` of a component: its own config's, else the topology's,
    else `DEFAULT_KEYGROUPS`."""
    value = component_config.get(TOPOLOGY_KEYGROUPS)
    if value is None:
        value = topology_config.get(TOPOLOGY_KEYGROUPS)
    if value is None:
        return DEFAULT_KEYGROUPS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_KEYGROUPS:
        raise TopologyError(
            f"{TOPOLOGY_KEYGROUPS} must be an int from 1 to {MAX_KEYGROUPS}, got {value!r}"
        )
    return value
