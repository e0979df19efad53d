"""What a metrics manager accepts: every snapshot checked on arrival, a bounded
set of sources, and sources that went silent forgotten.

Theory of operation
-------------------
A metrics manager's snapshot port is open to any local process, and what it
keeps is served to every scrape. So nothing is kept that was not checked
when it arrived (`SnapshotGate.check`); a snapshot that fails any check is
dropped whole, with its reason (the caller logs it, rate-limited, and counts
it by reason):

- the source is one of the container's processes: ``stmgr``, ``task-<id>``
  for each task the packing plan puts here, ``tmaster`` in container 0.
  That is also the bound on the number of sources: fake names cost a log
  line and a count, never memory;
- its time is a finite number within ``max_skew`` of the arrival (one
  stamped far ahead would make every later snapshot look stale), or 0
  (stamped on arrival);
- at most ``max_series`` samples, each ``[name, kind, labels, value]``: a
  metric of `wire/metric_names.py` with its own kind and a subset of its
  labels, or a user metric (``heron_user_...``, a counter or a gauge); label
  names valid for Prometheus and not ``topology`` or ``container`` (the
  metrics manager adds those) or ``instance``; label values short strings;
  values finite numbers, ``[count, sum]`` for a summary;
- at most 50 exception entries, maps of short scalar values.

`expired(now)` names the sources silent for longer than ``expiry_secs``
(their process died and was not restarted, or moved): the caller removes
them from the store and the history, so their series stop being served.

Pure: times are passed in; no socket, no clock.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from heronpy_lite.wire import messages as m
from heronpy_lite.wire.metric_names import BY_NAME, USER_PREFIX

KINDS = frozenset({"counter", "gauge", "summary"})
#: labels the metrics manager sets itself, and Prometheus' scrape label
RESERVED_LABELS = frozenset({"topology", "container", "instance"})
MAX_LABELS = 8
MAX_LABEL_VALUE = 256
MAX_EXCEPTIONS = 50
MAX_EXCEPTION_TEXT = 8192
#: a snapshot's time may differ from its arrival by this much
MAX_SKEW_SECS = 3600.0

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")


class BadSnapshot(ValueError):
    """Why a snapshot was dropped: one line, and a ``kind`` to count it by."""

    def __init__(self, message: str, kind: str = "bad_sample") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Accepted:
    source: str
    time: float
    samples: list[Any]
    exceptions: list[Any]


def known_sources(container: int, tasks: Iterable[int]) -> set[str]:
    """The sources of a container: its stream manager and tasks (the tmaster in 0)."""
    if container == 0:
        return {"tmaster"}
    return {"stmgr", *(f"task-{t}" for t in tasks)}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_sample(sample: Any) -> None:
    """`BadSnapshot` unless ``sample`` is one well-formed sample."""
    if not isinstance(sample, (list, tuple)) or len(sample) != 4:
        raise BadSnapshot("a sample is not [name, kind, labels, value]")
    name, kind, labels, value = sample
    if not isinstance(name, str) or not _METRIC_NAME.match(name):
        raise BadSnapshot(f"metric name {name!r:.80} is not valid")
    if kind not in KINDS:
        raise BadSnapshot(f"{name}: kind {kind!r:.40} is not counter, gauge or summary")
    known = BY_NAME.get(name)
    if known is not None:
        if kind != known.kind:
            raise BadSnapshot(f"{name} is a {known.kind}, not a {kind}")
    elif not name.startswith(USER_PREFIX) or kind == "summary":
        raise BadSnapshot(f"unknown metric {name}")
    if not isinstance(labels, dict) or len(labels) > MAX_LABELS:
        raise BadSnapshot(f"{name}: labels are not a map of at most {MAX_LABELS}")
    for key, label in labels.items():
        if not isinstance(key, str) or not _LABEL_NAME.match(key) or key.startswith("__"):
            raise BadSnapshot(f"{name}: label name {key!r:.80} is not valid")
        if key in RESERVED_LABELS:
            raise BadSnapshot(f"{name}: label {key} is set by the metrics manager")
        if known is not None and key not in known.labels:
            raise BadSnapshot(f"{name} has no label {key}")
        if not isinstance(label, str) or len(label) > MAX_LABEL_VALUE:
            raise BadSnapshot(f"{name}: label {key} is not a string of at most {MAX_LABEL_VALUE}")
    if kind == "summary":
        if not (
            isinstance(value, (list, tuple)) and len(value) == 2 and all(_number(v) for v in value)
        ):
            raise BadSnapshot(f"{name}: a summary's value is not [count, sum]")
    elif not _number(value):
        raise BadSnapshot(f"{name}: value {value!r:.40} is not a finite number")


def _check_exceptions(entries: Any) -> None:
    def bad(what: str) -> BadSnapshot:
        return BadSnapshot(what, "bad_exceptions")

    if not isinstance(entries, list) or len(entries) > MAX_EXCEPTIONS:
        raise bad(f"exceptions are not a list of at most {MAX_EXCEPTIONS}")
    for entry in entries:
        if not isinstance(entry, dict) or len(entry) > 16:
            raise bad("an exception entry is not a small map")
        for key, value in entry.items():
            if not isinstance(key, str) or len(key) > 64:
                raise bad("an exception entry has a bad key")
            if isinstance(value, str):
                if len(value) > MAX_EXCEPTION_TEXT:
                    raise bad(f"exception field {key} is too long")
            elif not _number(value):
                raise bad(f"exception field {key} is not a string or a number")


class SnapshotGate:
    """Checks snapshots as they arrive; tracks when each source last reported."""

    def __init__(
        self,
        sources: Iterable[str],
        *,
        expiry_secs: float,
        max_series: int,
        max_skew: float = MAX_SKEW_SECS,
    ) -> None:
        self.sources = frozenset(sources)
        self.expiry_secs = expiry_secs
        self.max_series = max_series
        self.max_skew = max_skew
        #: source -> when (arrival time) its last accepted snapshot came
        self.last_seen: dict[str, float] = {}
        #: snapshots dropped, by `BadSnapshot.kind`
        self.dropped: Counter[str] = Counter()

    def check(self, msg: m.MetricsSnapshot, now: float) -> Accepted:
        """The snapshot to keep (its time: its own, or ``now`` if it had none);
        `BadSnapshot` to drop it."""
        try:
            accepted = self._check(msg, now)
        except BadSnapshot as exc:
            self.dropped[exc.kind] += 1
            raise
        self.last_seen[accepted.source] = now
        return accepted

    def _check(self, msg: m.MetricsSnapshot, now: float) -> Accepted:
        source = msg.source
        if source not in self.sources:
            raise BadSnapshot(f"unknown source {source!r:.80}", "unknown_source")
        when = msg.time
        if not _number(when) or (when and abs(when - now) > self.max_skew):
            raise BadSnapshot(
                f"time {when!r:.40} is not within {self.max_skew:g}s of now", "bad_time"
            )
        samples = msg.samples
        if len(samples) > self.max_series:
            raise BadSnapshot(
                f"{len(samples)} samples, more than heron.metricsmgr.max.series.per.source "
                f"({self.max_series})",
                "too_many_series",
            )
        for sample in samples:
            check_sample(sample)
        _check_exceptions(msg.exceptions)
        return Accepted(source, float(when) or now, samples, msg.exceptions)

    def expired(self, now: float) -> list[str]:
        """Sources silent for longer than ``expiry_secs``, forgotten from now on."""
        gone = sorted(s for s, seen in self.last_seen.items() if now - seen > self.expiry_secs)
        for source in gone:
            del self.last_seen[source]
        return gone


__all__ = ["Accepted", "BadSnapshot", "SnapshotGate", "check_sample", "known_sources"]
