"""The topology master's autoscaler: when to change a bolt's parallelism.

Theory of operation
-------------------
Every metrics interval the caller hands `Autoscaler.observe` one
`ComponentSample` per bolt: how busy its tasks are (busy milliseconds per
second, 0..1000, None when unknown) and whether it is the backpressure culprit
now. The autoscaler keeps, per bolt, the samples that describe the last
``window`` seconds: the newest sample at or before ``now - window`` (it stands
for the window's start) and every later one. A bolt is

* HOT when its samples cover the whole window and every one of them is a
  culprit or has busy >= ``busy.high.ms``: it doubles, up to its max;
* COLD when its samples cover the whole window and every one of them has a
  known busy <= ``busy.low.ms`` and none is a culprit: it halves, down to its
  min.

At most one decision comes out of an observe: a HOT bolt before a COLD one,
among HOT ones the one culprit longest, then the busiest. None comes within
``cooldown`` seconds of the start or of the previous decision, and after one
every bolt's samples are dropped: the new plan is judged on what it does, not
on what the old one did. A bolt at its bound gives no decision.

Why both ways, with a cooldown: Dhalion only scales up, so a topology sized for
a burst stays that size. Scaling down as well invites flapping (up on a burst,
down in the lull, up again); the window makes a condition prove itself, the
cooldown lets a new plan settle before it is judged, and the halving and
doubling keep the number of steps small.

Config keys (``topology.autoscale.``...):

* ``enabled``: bool or "true"/"false"; off by default
* ``min.parallelism`` / ``max.parallelism``: one int for every bolt, or per
  bolt as {name: int} or "name:N,name:N" (defaults 1 and 8); max <= keygroups
* ``window.secs`` (30), ``cooldown.secs`` (60)
* ``busy.high.ms`` (800), ``busy.low.ms`` (200): 0..1000, low < high
* ``components``: the bolts it may scale, a list or "a,b" (default: every bolt)

Pure: no I/O and no clock; ``now`` is passed in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from heronpy_lite.errors import TopologyError

PREFIX = "topology.autoscale."
KEYS = frozenset(
    PREFIX + k
    for k in (
        "enabled",
        "min.parallelism",
        "max.parallelism",
        "window.secs",
        "cooldown.secs",
        "busy.high.ms",
        "busy.low.ms",
        "components",
    )
)
DEFAULT_MIN = 1
DEFAULT_MAX = 8
MAX_SAMPLES = 10_000
MAX_HISTORY = 50


def _bad(key: str, value: object, why: str) -> TopologyError:
    return TopologyError(f"{key}: {value!r}: {why}")


def _number(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool):
        raise _bad(key, value, "not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(key, value, "not a number") from None
    if not number >= 0 or number == float("inf"):  # also NaN
        raise _bad(key, value, "must be a finite number >= 0")
    return number


def _int(key: str, whole: object, value: object) -> int:
    if isinstance(value, bool):
        raise _bad(key, whole, "not an integer")
    try:
        number = int(value) if isinstance(value, int | str) else None
    except ValueError:
        number = None
    if number is None:
        raise _bad(key, whole, "not an integer")
    if number < 1:
        raise _bad(key, whole, "parallelism must be >= 1")
    return number


def _per_component(
    config: Mapping[str, Any], key: str, default: int, names: Sequence[str]
) -> dict[str, int]:
    value = config.get(key, default)
    given: dict[str, int]
    if isinstance(value, Mapping):
        given = {str(k): _int(key, value, v) for k, v in value.items()}
    elif isinstance(value, str) and ":" in value:
        given = {}
        for entry in filter(None, (e.strip() for e in value.split(","))):
            name, sep, n = entry.partition(":")
            if not sep or not name.strip():
                raise _bad(key, value, "expected 'name:N,name:N'")
            given[name.strip()] = _int(key, value, n.strip())
    else:
        one = _int(key, value, value)
        given = dict.fromkeys(names, one)
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise _bad(key, value, f"unknown component {unknown[0]!r}")
    return {name: given.get(name, default) for name in names}


@dataclass(frozen=True)
class AutoscaleConfig:
    """The autoscaler's settings, validated once (see the module docstring)."""

    min_parallelism: Mapping[str, int]
    max_parallelism: Mapping[str, int]
    components: tuple[str, ...]
    window: float = 30.0
    cooldown: float = 60.0
    busy_high: float = 800.0
    busy_low: float = 200.0

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], components: Mapping[str, int], keygroups: int = 128
    ) -> AutoscaleConfig | None:
        """Read the ``topology.autoscale.*`` keys; None when autoscaling is off.
        ``components``: every bolt and its current parallelism (never spouts)."""
        unknown = sorted(k for k in config if k.startswith(PREFIX) and k not in KEYS)
        if unknown:
            raise _bad(unknown[0], config[unknown[0]], "unknown autoscale key")
        key = PREFIX + "enabled"
        enabled = config.get(key, False)
        if isinstance(enabled, str) and enabled.strip().lower() in ("true", "false"):
            enabled = enabled.strip().lower() == "true"
        if not isinstance(enabled, bool):
            raise _bad(key, enabled, "expected true or false")
        if not enabled:
            return None
        bolts = sorted(components)
        key = PREFIX + "components"
        chosen = config.get(key, bolts)
        if isinstance(chosen, str):
            chosen = [c.strip() for c in chosen.split(",") if c.strip()]
        if not isinstance(chosen, list | tuple) or not all(isinstance(c, str) for c in chosen):
            raise _bad(key, chosen, "expected a list of component names")
        for name in chosen:
            if name not in components:
                raise _bad(key, config.get(key), f"unknown component {name!r} (not a bolt)")
        low_key, high_key = PREFIX + "busy.low.ms", PREFIX + "busy.high.ms"
        low, high = _number(config, low_key, 200), _number(config, high_key, 800)
        for k, v in ((low_key, low), (high_key, high)):
            if v > 1000:
                raise _bad(k, config[k], "busy ms per second is at most 1000")
        if low >= high:
            raise _bad(low_key, config.get(low_key, low), f"must be below {high_key} ({high:g})")
        window = _number(config, PREFIX + "window.secs", 30)
        if window == 0:
            raise _bad(PREFIX + "window.secs", config[PREFIX + "window.secs"], "must be > 0")
        min_key, max_key = PREFIX + "min.parallelism", PREFIX + "max.parallelism"
        mins = _per_component(config, min_key, DEFAULT_MIN, bolts)
        default_max = min(DEFAULT_MAX, keygroups)
        maxes = _per_component(config, max_key, default_max, bolts)
        for name in bolts:
            if maxes[name] > keygroups:
                raise _bad(max_key, config[max_key], f"above the {keygroups} key groups")
            if mins[name] > maxes[name]:
                why = f"min {mins[name]} > max {maxes[name]} for {name!r}"
                raise _bad(min_key, config.get(min_key, DEFAULT_MIN), why)
        return cls(
            min_parallelism=mins,
            max_parallelism=maxes,
            components=tuple(chosen),
            window=window,
            cooldown=_number(config, PREFIX + "cooldown.secs", 60),
            busy_high=high,
            busy_low=low,
        )


@dataclass(frozen=True)
class ComponentSample:
    """One bolt at one instant: busy ms per second (None: unknown), and whether it
    is the backpressure culprit now."""

    busy_ms_per_sec: float | None
    culprit: bool = False


@dataclass(frozen=True)
class Decision:
    """Change ``component`` from ``old`` to ``new`` tasks; ``reason`` is one line,
    ``metrics`` what led to it (mean busy over the window, culprit share)."""

    component: str
    old: int
    new: int
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "old": self.old,
            "new": self.new,
            "reason": self.reason,
            "metrics": dict(self.metrics),
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        metrics = {str(k): float(v) for k, v in dict(data.get("metrics", {})).items()}
        return cls(
            component=str(data["component"]),
            old=int(data["old"]),
            new=int(data["new"]),
            reason=str(data["reason"]),
            metrics=metrics,
            at=float(data["at"]),
        )


@dataclass(frozen=True)
class _Candidate:
    decision: Decision
    hot: bool
    culprit_secs: float
    busy: float


class Autoscaler:
    """Decides, one `observe` at a time, whether a bolt's parallelism changes."""

    def __init__(
        self,
        config: AutoscaleConfig,
        parallelism: Mapping[str, int],
        started: float,
        history: Sequence[Decision] = (),
    ) -> None:
        self.config = config
        self._parallelism = dict(parallelism)
        self.history: list[Decision] = list(history)[-MAX_HISTORY:]
        self._last = max([started, *(d.at for d in self.history)])
        self._samples: dict[str, deque[tuple[float, ComponentSample]]] = {}

    @property
    def parallelism(self) -> dict[str, int]:
        """The current parallelism of every bolt, as the decisions left it."""
        return dict(self._parallelism)

    def observe(self, now: float, samples: Mapping[str, ComponentSample]) -> Decision | None:
        """Record this instant's samples; return the one change to make, if any."""
        cutoff = now - self.config.window
        for name in self.config.components:
            if name not in samples:
                continue
            kept = self._samples.setdefault(name, deque(maxlen=MAX_SAMPLES))
            kept.append((now, samples[name]))
            while len(kept) > 1 and kept[1][0] <= cutoff:
                kept.popleft()  # kept[1] already stands for the window's start
        if now < self._last + self.config.cooldown:
            return None
        judged = [self._judge(name, cutoff) for name in self._samples]
        found = [c for c in judged if c is not None]
        if not found:
            return None
        best = min(found, key=lambda c: (not c.hot, -c.culprit_secs, -c.busy, c.decision.component))
        decision = replace(best.decision, at=now)
        self._parallelism[decision.component] = decision.new
        self._samples.clear()
        self._last = now
        self.history.append(decision)
        del self.history[:-MAX_HISTORY]
        return decision

    def _judge(self, name: str, cutoff: float) -> _Candidate | None:
        kept = self._samples[name]
        old = self._parallelism.get(name)
        if old is None or not kept or kept[0][0] > cutoff:
            return None  # unknown bolt, or the window is not covered yet
        cfg = self.config
        busy = [s.busy_ms_per_sec for _, s in kept if s.busy_ms_per_sec is not None]
        mean = sum(busy) / len(busy) if busy else 0.0
        share = sum(s.culprit for _, s in kept) / len(kept)
        run_start = None
        for t, s in reversed(kept):
            if not s.culprit:
                break
            run_start = t
        culprit_secs = 0.0 if run_start is None else kept[-1][0] - run_start
        metrics = {"busy_ms_per_sec": mean, "culprit_share": share, "samples": float(len(kept))}
        window = f"for {cfg.window:g}s"
        hot = all(
            s.culprit or (s.busy_ms_per_sec is not None and s.busy_ms_per_sec >= cfg.busy_high)
            for _, s in kept
        )
        cold = len(busy) == len(kept) and share == 0 and max(busy) <= cfg.busy_low
        if hot:
            new = min(cfg.max_parallelism[name], old * 2)
            if share == 1:
                reason = f"backpressure culprit {window}"
            elif share == 0:
                reason = f"busy {mean:.0f} ms/s >= {cfg.busy_high:g} {window}"
            else:
                reason = f"backpressure culprit or busy >= {cfg.busy_high:g} ms/s {window}"
        elif cold:
            new = max(cfg.min_parallelism[name], old // 2)
            reason = f"busy {mean:.0f} ms/s <= {cfg.busy_low:g} {window}"
        else:
            return None
        if (hot and new <= old) or (not hot and new >= old):
            return None  # at (or beyond) its bound
        return _Candidate(Decision(name, old, new, reason, metrics), hot, culprit_secs, mean)
