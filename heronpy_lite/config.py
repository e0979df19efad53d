"""Configuration: defaults, cluster file, user files, overrides -> one frozen config.

Resolution order (later wins): ``config/defaults.yaml``, the cluster file
``config/clusters/<cluster>.yaml``, YAML files in ``--config-path``, the
topology's own config from the API, then ``--config-property`` (what the
user types at submit wins over what the code says; see
docs/decisions/0001-config-precedence.md). A component's spec config wins over all
of these for that component.

Keys follow Heron's scheme: ``heron.*`` are engine internals, ``topology.*``
what a topology sets. Every key of either family must be known (`KEYS`), so
a typo is an error rather than a silent no-op; any other key is user config,
passed through to components untouched. Values given as strings (YAML or
``--config-property``) are converted as heronpy does: numeric strings to
numbers, "true"/"false" to booleans.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from heronpy_lite.api import api_constants as C
from heronpy_lite.errors import ConfigError
from heronpy_lite.keygroups import MAX_KEYGROUPS, TOPOLOGY_KEYGROUPS
from heronpy_lite.tmaster.autoscale import KEYS as AUTOSCALE_KEYS

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


@dataclass(frozen=True, slots=True)
class Key:
    kind: type | tuple[type, ...]
    check: Callable[[Any], bool] | None = None
    expect: str = ""


def _positive(v: Any) -> bool:
    return bool(v > 0)


def _non_negative(v: Any) -> bool:
    return bool(v >= 0)


def _one_of(*options: str) -> Key:
    return Key(str, lambda v: v in options, "one of " + ", ".join(options))


_NUM = (int, float)

#: accept a topology whose components form a cycle (api/topology.py, docs/decisions/0043)
TOPOLOGY_ENABLE_CYCLES = "topology.enable.cycles"

#: Every known key, with its type and range. Defaults and documentation of
#: each key live in config/defaults.yaml.
KEYS: dict[str, Key] = {
    # -- topology.* (what a topology sets) --
    C.TOPOLOGY_STMGRS: Key(int, _positive, "an int >= 1"),
    C.TOPOLOGY_RELIABILITY_MODE: _one_of("ATMOST_ONCE", "ATLEAST_ONCE", "EFFECTIVELY_ONCE"),
    # EFFECTIVELY_ONCE (docs/decisions/0029-effectively-once.md)
    C.TOPOLOGY_STATEFUL_CHECKPOINT_INTERVAL_SECONDS: Key(_NUM, _positive, "a number > 0"),
    C.TOPOLOGY_STATEFUL_START_CLEAN: Key(bool),
    C.TOPOLOGY_MAX_SPOUT_PENDING: Key(int, _positive, "an int >= 1"),
    C.TOPOLOGY_MESSAGE_TIMEOUT_SECS: Key(_NUM, _positive, "a number > 0"),
    C.TOPOLOGY_ENABLE_MESSAGE_TIMEOUTS: Key(bool),
    C.TOPOLOGY_TICK_TUPLE_FREQ_SECS: Key(_NUM, _positive, "a number > 0"),
    C.TOPOLOGY_BACKPRESSURE_STRATEGY: _one_of("tcp", "spout", "stage"),
    C.TOPOLOGY_DEBUG: Key(bool),
    C.TOPOLOGY_COMPONENT_PARALLELISM: Key(int, _positive, "an int >= 1"),
    # dotted paths of ITaskHook classes every task registers (api/task_hook.py)
    C.TOPOLOGY_AUTO_TASK_HOOKS: Key(
        list, lambda v: all(isinstance(p, str) for p in v), "a list of dotted class paths"
    ),
    TOPOLOGY_ENABLE_CYCLES: Key(bool),
    # key groups of a fields-grouped bolt (keygroups.py, docs/decisions/0047-key-groups.md)
    TOPOLOGY_KEYGROUPS: Key(int, lambda v: 1 <= v <= MAX_KEYGROUPS, f"an int 1..{MAX_KEYGROUPS}"),
    # the autoscaler's (checked together by tmaster/autoscale.py at submit)
    **{k: Key(object) for k in AUTOSCALE_KEYS},
    # accepted for heronpy compatibility; the local scheduler does not use them
    **{
        k: Key(object)
        for k in (
            C.TOPOLOGY_SERIALIZER_CLASSNAME,
            C.TOPOLOGY_CONTAINER_CPU_REQUESTED,
            C.TOPOLOGY_CONTAINER_RAM_REQUESTED,
            C.TOPOLOGY_CONTAINER_DISK_REQUESTED,
            C.TOPOLOGY_COMPONENT_RAMMAP,
            C.TOPOLOGY_COMPONENT_CPUMAP,
            C.TOPOLOGY_COMPONENT_DISKMAP,
            C.TOPOLOGY_CONTAINER_MAX_RAM_HINT,
            C.TOPOLOGY_COMPONENT_OUTPUT_BPS,
            C.TOPOLOGY_ENVIRONMENT,
            C.TOPOLOGY_TEAM_NAME,
            C.TOPOLOGY_TEAM_EMAIL,
            C.TOPOLOGY_CAP_TICKET,
            C.TOPOLOGY_PROJECT_NAME,
            C.TOPOLOGY_NAME,
            C.TOPOLOGY_WORKER_CHILDOPTS,
            C.TOPOLOGY_COMPONENT_JVMOPTS,
            C.TOPOLOGY_CONTAINER_MAX_CPU_HINT,
            C.TOPOLOGY_CONTAINER_MAX_DISK_HINT,
            C.TOPOLOGY_CONTAINER_PADDING_PERCENTAGE,
            C.TOPOLOGY_CONTAINER_RAM_PADDING,
            C.TOPOLOGY_ADDITIONAL_CLASSPATH,
            C.TOPOLOGY_COMPONENT_OUTPUT_TPS,
        )
    },
    # -- heron.* (engine internals) --
    "heron.statemgr.class": _one_of("localfs", "zookeeper"),
    "heron.statemgr.root.path": Key(str),
    "heron.statemgr.connection.string": Key(str),
    "heron.statemgr.zookeeper.session.timeout.secs": Key(_NUM, _positive, "a number > 0"),
    "heron.statemgr.zookeeper.timeout.secs": Key(_NUM, _positive, "a number > 0"),
    "heron.statemgr.zookeeper.auth.file": Key(str),
    "heron.tmaster.standby": Key(bool),
    "heron.tmaster.stmgr.heartbeat.timeout.secs": Key(_NUM, _positive, "a number > 0"),
    "heron.scheduler.class": _one_of("local", "slurm", "ray"),
    "heron.scheduler.ray.address": Key(str),
    "heron.scheduler.ray.placement.strategy": _one_of(
        "SPREAD", "PACK", "STRICT_SPREAD", "STRICT_PACK"
    ),
    "heron.scheduler.ray.cpus.per.container": Key(_NUM, _positive, "a number > 0"),
    "heron.scheduler.ray.working.root": Key(str),
    "heron.scheduler.slurm.cpus.per.container": Key(int, _positive, "an int >= 1"),
    "heron.scheduler.slurm.sbatch.options": Key(str),
    "heron.network.bind.host": Key(str),
    "heron.network.advertised.host": Key(str),
    "heron.network.authentication": Key(bool),
    "heron.network.tls.certfile": Key(str),
    "heron.network.tls.keyfile": Key(str),
    "heron.network.tls.cafile": Key(str),
    "heron.network.handshake.timeout.secs": Key(_NUM, _positive, "a number > 0"),
    "heron.network.unauthenticated.max.frame.bytes": Key(int, lambda v: v >= 256, "an int >= 256"),
    "heron.network.max.connections": Key(int, _positive, "an int >= 1"),
    "heron.wire.max.frame.bytes": Key(int, lambda v: v >= 1024, "an int >= 1024"),
    "heron.instance.flush.interval.ms": Key(_NUM, _positive, "a number > 0"),
    "heron.instance.batch.max.tuples": Key(int, _positive, "an int >= 1"),
    "heron.instance.batch.max.bytes": Key(int, _positive, "an int >= 1"),
    "heron.metrics.export.interval.secs": Key(_NUM, _positive, "a number > 0"),
    "heron.metricsmgr.port": Key(int, lambda v: 0 <= v < 65536, "a port, or 0 for any free one"),
    "heron.metricsmgr.history.secs": Key(_NUM, _positive, "a number > 0"),
    "heron.metricsmgr.source.expiry.secs": Key(_NUM, _positive, "a number > 0"),
    "heron.metricsmgr.max.series.per.source": Key(int, _positive, "an int >= 1"),
    "heron.logging.maximum.size.mb": Key(_NUM, _positive, "a number > 0"),
    "heron.logging.maximum.files": Key(int, _positive, "an int >= 1"),
    "heron.logging.repeat.burst": Key(int, _positive, "an int >= 1"),
    "heron.logging.repeat.interval.secs": Key(_NUM, _non_negative, "a number >= 0"),
    "heron.tracker.port": Key(int, lambda v: 0 <= v < 65536, "a port, or 0 for any free one"),
    "heron.instance.emit.batch.time.ms": Key(_NUM, _positive, "a number > 0"),
    "heron.instance.emit.batch.max.tuples": Key(int, _positive, "an int >= 1"),
    "heron.instance.spout.idle.sleep.ms": Key(_NUM, _non_negative, "a number >= 0"),
    "heron.instance.out.buffer.high.bytes": Key(int, _positive, "an int >= 1"),
    "heron.instance.hang.timeout.secs": Key(_NUM, _non_negative, "a number >= 0"),
    "heron.instance.hang.restart": Key(bool),
    "heron.instance.memory.limit.mb": Key(_NUM, _non_negative, "a number >= 0"),
    "heron.stmgr.connection.buffer.high.bytes": Key(int, _positive, "an int >= 1"),
    "heron.stmgr.connection.buffer.low.bytes": Key(int, _non_negative, "an int >= 0"),
    "heron.stmgr.connection.buffer.hard.bytes": Key(int, _positive, "an int >= 1"),
    "heron.network.socket.buffer.bytes": Key(int, _non_negative, "an int >= 0"),
    "heron.stmgr.heartbeat.interval.secs": Key(_NUM, _positive, "a number > 0"),
    "heron.stmgr.reconnect.interval.secs": Key(_NUM, _positive, "a number > 0"),
    "heron.executor.restart.backoff.min.secs": Key(_NUM, _non_negative, "a number >= 0"),
    "heron.executor.restart.backoff.max.secs": Key(_NUM, _positive, "a number > 0"),
    "heron.stateful.checkpoint.root": Key(str),
    "heron.stateful.checkpoints.kept": Key(int, _positive, "an int >= 1"),
    "heron.stateful.checkpoint.timeout.secs": Key(_NUM, _positive, "a number > 0"),
    "heron.stateful.alignment.buffer.bytes": Key(int, _positive, "an int >= 1"),
    "heron.stateful.full.snapshot.every": Key(int, _positive, "an int >= 1"),
    "heron.submit.timeout.secs": Key(_NUM, _positive, "a number > 0"),
    "heron.kill.timeout.secs": Key(_NUM, _positive, "a number > 0"),
}


def auto_type(value: Any) -> Any:
    """heronpy's conversion of string config values: numbers and booleans."""
    if not isinstance(value, str):
        return value
    low = value.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def check_value(key: str, value: Any) -> Any:
    """``value`` converted and checked for ``key``; ConfigError if unknown or invalid."""
    value = auto_type(value)
    spec = KEYS.get(key)
    if spec is None:
        if key.startswith(("heron.", "topology.")):
            suggestion = close_key(key)
            hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
            raise ConfigError(f"unknown config key {key!r}{hint}")
        suggestion = close_key(key)
        if suggestion:
            _warn_user_key(key, suggestion)
        return value
    kind = spec.kind
    ok = isinstance(value, kind) and not (
        isinstance(value, bool)
        and kind is not bool
        and bool not in (kind if isinstance(kind, tuple) else (kind,))
    )
    if kind is object:
        ok = True
    if ok and spec.check is not None:
        ok = spec.check(value)
    if not ok:
        expect = spec.expect or (kind.__name__ if isinstance(kind, type) else "a number")
        raise ConfigError(f"config key {key!r} must be {expect}, got {value!r}")
    return value


def close_key(key: str) -> str | None:
    """The known key ``key`` is most likely a typo of, if one is close enough."""
    matches = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.85)
    return matches[0] if matches else None


@functools.cache
def _warn_user_key(key: str, suggestion: str) -> None:
    """Once per process and key: config is resolved several times per command."""
    log.warning(
        "config key %r is not a heron.* or topology.* key, so it is passed to components "
        "as user config; did you mean %r?",
        key,
        suggestion,
    )


def parse_properties(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings from ``--config-property``."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--config-property expects KEY=VALUE, got {item!r}")
        result[key.strip()] = value
    return result


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(f"config file {path} must be a mapping of keys to values")
    return data


def cluster_names() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "clusters").glob("*.yaml"))


def resolve(
    cluster: str,
    config_path: str | None = None,
    properties: Mapping[str, Any] | None = None,
    topology_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The validated flat config of one topology (topology-level, not per component)."""
    if not (CONFIG_DIR / "defaults.yaml").is_file():
        raise ConfigError(f"default config not found in {CONFIG_DIR}")
    layers: list[Mapping[str, Any]] = [_load_yaml(CONFIG_DIR / "defaults.yaml")]
    cluster_file = CONFIG_DIR / "clusters" / f"{cluster}.yaml"
    if not cluster_file.is_file():
        raise ConfigError(f"unknown cluster {cluster!r} (known: {', '.join(cluster_names())})")
    layers.append(_load_yaml(cluster_file))
    if config_path is not None:
        folder = Path(config_path)
        if not folder.is_dir():
            raise ConfigError(f"--config-path {config_path} is not a directory")
        layers.extend(_load_yaml(p) for p in sorted(folder.glob("*.yaml")))
    layers.append(topology_config or {})
    layers.append(properties or {})
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            merged[key] = check_value(key, value)
    return merged


def component_config(
    topology_config: Mapping[str, Any], component: Mapping[str, Any]
) -> dict[str, Any]:
    """What a component's ``initialize`` receives: its config over the topology's."""
    merged = dict(topology_config)
    for key, value in component.items():
        merged[key] = check_value(key, value)
    return merged


def message_timeout(topology_config: Mapping[str, Any]) -> float | None:
    """``topology.message.timeout.secs``, or None with
    ``topology.enable.message.timeouts`` off (trees then never time out)."""
    if not topology_config.get(C.TOPOLOGY_ENABLE_MESSAGE_TIMEOUTS, True):
        return None
    return float(topology_config[C.TOPOLOGY_MESSAGE_TIMEOUT_SECS])


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The ``heron.*`` internals as typed attributes (see config/defaults.yaml)."""

    statemgr_class: str
    statemgr_root_path: str
    statemgr_connection_string: str
    zk_session_timeout_secs: float
    zk_timeout_secs: float
    zk_auth_file: str
    tmaster_standby: bool
    stmgr_heartbeat_timeout_secs: float
    scheduler_class: str
    slurm_cpus_per_container: int
    slurm_sbatch_options: str
    ray_address: str
    ray_placement_strategy: str
    ray_cpus_per_container: float
    ray_working_root: str
    bind_host: str
    advertised_host: str
    authentication: bool
    tls_certfile: str
    tls_keyfile: str
    tls_cafile: str
    handshake_timeout_secs: float
    unauthenticated_max_frame_bytes: int
    max_connections: int
    max_frame_bytes: int
    flush_interval_ms: float
    batch_max_tuples: int
    batch_max_bytes: int
    metrics_interval_secs: float
    metricsmgr_port: int
    metricsmgr_history_secs: float
    metricsmgr_source_expiry_secs: float
    metricsmgr_max_series: int
    log_max_mb: float
    log_max_files: int
    log_repeat_burst: int
    log_repeat_interval_secs: float
    tracker_port: int
    emit_batch_time_ms: float
    emit_batch_max_tuples: int
    spout_idle_sleep_ms: float
    instance_out_buffer_high_bytes: int
    hang_timeout_secs: float
    hang_restart: bool
    memory_limit_mb: float
    stmgr_buffer_high_bytes: int
    stmgr_buffer_low_bytes: int
    stmgr_buffer_hard_bytes: int
    socket_buffer_bytes: int
    heartbeat_interval_secs: float
    reconnect_interval_secs: float
    restart_backoff_min_secs: float
    restart_backoff_max_secs: float
    submit_timeout_secs: float
    kill_timeout_secs: float
    checkpoint_root: str
    checkpoints_kept: int
    checkpoint_timeout_secs: float
    alignment_buffer_bytes: int
    full_snapshot_every: int

    _KEYMAP = {
        "statemgr_class": "heron.statemgr.class",
        "statemgr_root_path": "heron.statemgr.root.path",
        "statemgr_connection_string": "heron.statemgr.connection.string",
        "zk_session_timeout_secs": "heron.statemgr.zookeeper.session.timeout.secs",
        "zk_timeout_secs": "heron.statemgr.zookeeper.timeout.secs",
        "zk_auth_file": "heron.statemgr.zookeeper.auth.file",
        "tmaster_standby": "heron.tmaster.standby",
        "stmgr_heartbeat_timeout_secs": "heron.tmaster.stmgr.heartbeat.timeout.secs",
        "scheduler_class": "heron.scheduler.class",
        "slurm_cpus_per_container": "heron.scheduler.slurm.cpus.per.container",
        "slurm_sbatch_options": "heron.scheduler.slurm.sbatch.options",
        "ray_address": "heron.scheduler.ray.address",
        "ray_placement_strategy": "heron.scheduler.ray.placement.strategy",
        "ray_cpus_per_container": "heron.scheduler.ray.cpus.per.container",
        "ray_working_root": "heron.scheduler.ray.working.root",
        "bind_host": "heron.network.bind.host",
        "advertised_host": "heron.network.advertised.host",
        "authentication": "heron.network.authentication",
        "tls_certfile": "heron.network.tls.certfile",
        "tls_keyfile": "heron.network.tls.keyfile",
        "tls_cafile": "heron.network.tls.cafile",
        "handshake_timeout_secs": "heron.network.handshake.timeout.secs",
        "unauthenticated_max_frame_bytes": "heron.network.unauthenticated.max.frame.bytes",
        "max_connections": "heron.network.max.connections",
        "max_frame_bytes": "heron.wire.max.frame.bytes",
        "flush_interval_ms": "heron.instance.flush.interval.ms",
        "batch_max_tuples": "heron.instance.batch.max.tuples",
        "batch_max_bytes": "heron.instance.batch.max.bytes",
        "metrics_interval_secs": "heron.metrics.export.interval.secs",
        "metricsmgr_port": "heron.metricsmgr.port",
        "metricsmgr_history_secs": "heron.metricsmgr.history.secs",
        "metricsmgr_source_expiry_secs": "heron.metricsmgr.source.expiry.secs",
        "metricsmgr_max_series": "heron.metricsmgr.max.series.per.source",
        "log_max_mb": "heron.logging.maximum.size.mb",
        "log_max_files": "heron.logging.maximum.files",
        "log_repeat_burst": "heron.logging.repeat.burst",
        "log_repeat_interval_secs": "heron.logging.repeat.interval.secs",
        "tracker_port": "heron.tracker.port",
        "emit_batch_time_ms": "heron.instance.emit.batch.time.ms",
        "emit_batch_max_tuples": "heron.instance.emit.batch.max.tuples",
        "spout_idle_sleep_ms": "heron.instance.spout.idle.sleep.ms",
        "instance_out_buffer_high_bytes": "heron.instance.out.buffer.high.bytes",
        "hang_timeout_secs": "heron.instance.hang.timeout.secs",
        "hang_restart": "heron.instance.hang.restart",
        "memory_limit_mb": "heron.instance.memory.limit.mb",
        "stmgr_buffer_high_bytes": "heron.stmgr.connection.buffer.high.bytes",
        "stmgr_buffer_low_bytes": "heron.stmgr.connection.buffer.low.bytes",
        "stmgr_buffer_hard_bytes": "heron.stmgr.connection.buffer.hard.bytes",
        "socket_buffer_bytes": "heron.network.socket.buffer.bytes",
        "heartbeat_interval_secs": "heron.stmgr.heartbeat.interval.secs",
        "reconnect_interval_secs": "heron.stmgr.reconnect.interval.secs",
        "restart_backoff_min_secs": "heron.executor.restart.backoff.min.secs",
        "restart_backoff_max_secs": "heron.executor.restart.backoff.max.secs",
        "submit_timeout_secs": "heron.submit.timeout.secs",
        "checkpoint_root": "heron.stateful.checkpoint.root",
        "checkpoints_kept": "heron.stateful.checkpoints.kept",
        "checkpoint_timeout_secs": "heron.stateful.checkpoint.timeout.secs",
        "alignment_buffer_bytes": "heron.stateful.alignment.buffer.bytes",
        "full_snapshot_every": "heron.stateful.full.snapshot.every",
        "kill_timeout_secs": "heron.kill.timeout.secs",
    }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EngineConfig:
        values = {}
        for f in dataclasses.fields(cls):
            key = cls._KEYMAP[f.name]
            if key not in config:
                raise ConfigError(f"config key {key!r} has no value")
            values[f.name] = config[key]
        return cls(**values)


def home() -> Path:
    """The working root: ``$HERONPY_LITE_HOME`` or ``~/.heronpy_lite``."""
    return Path(os.environ.get("HERONPY_LITE_HOME") or Path.home() / ".heronpy_lite")
