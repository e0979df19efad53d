"""The metrics manager's state: the latest snapshot of every process in the
container, rendered as Prometheus metric families at scrape time.

A newer snapshot of a source replaces the older one, so counters are the
producer's own totals (a restarted process starts again from 0, which
Prometheus' ``rate()`` reads as a counter reset). Every family gets the
labels ``topology`` and ``container``; the rest come from the samples, which
the metrics manager checked on arrival (`gate.SnapshotGate`). Its own figure,
the snapshots it dropped by reason, is served with them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from heronpy_lite.wire.metric_names import BY_NAME, METRICSMGR_DROPPED, USER_PREFIX


class SnapshotStore(Collector):
    def __init__(self, topology: str, container: int, dropped: Counter[str] | None = None) -> None:
        self.base = {"topology": topology, "container": str(container)}
        self.snapshots: dict[str, list[Any]] = {}
        self.bad_samples = 0
        #: snapshots the metrics manager dropped, by reason (`gate.SnapshotGate.dropped`)
        self.dropped = dropped if dropped is not None else Counter()

    def update(self, source: str, samples: list[Any]) -> None:
        self.snapshots[source] = samples

    def remove(self, source: str) -> None:
        self.snapshots.pop(source, None)

    def _values(self, labels: dict[str, str], names: list[str]) -> list[str]:
        full = {**self.base, **labels}
        return [full.get(k, "") for k in names]

    def collect(self) -> Iterator[Metric]:
        grouped: dict[str, tuple[str, list[tuple[dict[str, str], Any]]]] = {}
        for samples in self.snapshots.values():
            for sample in samples:
                try:
                    name, kind, labels, value = sample
                    labels = {str(k): str(v) for k, v in labels.items()}
                except (TypeError, ValueError, AttributeError):
                    self.bad_samples += 1
                    continue
                known = BY_NAME.get(name)
                if known is None and not name.startswith(USER_PREFIX):
                    self.bad_samples += 1
                    continue
                entry = grouped.setdefault(name, (kind, []))
                if entry[0] == kind:
                    entry[1].append((labels, value))
        for name, (kind, entries) in sorted(grouped.items()):
            known = BY_NAME.get(name)
            help_text = known.help if known else "user metric (context.register_metric)"
            label_names = sorted({k for labels, _ in entries for k in labels} | set(self.base))
            family: Metric
            if kind == "summary":
                summary = SummaryMetricFamily(name, help_text, labels=label_names)
                for labels, value in entries:
                    try:
                        count, total = value
                        summary.add_metric(self._values(labels, label_names), count, total)
                    except (TypeError, ValueError):
                        self.bad_samples += 1
                family = summary
            elif kind in ("counter", "gauge"):
                simple: CounterMetricFamily | GaugeMetricFamily
                if kind == "counter":
                    simple = CounterMetricFamily(name, help_text, labels=label_names)
                else:
                    simple = GaugeMetricFamily(name, help_text, labels=label_names)
                for labels, value in entries:
                    try:
                        simple.add_metric(self._values(labels, label_names), float(value))
                    except (TypeError, ValueError):
                        self.bad_samples += 1
                family = simple
            else:
                self.bad_samples += len(entries)
                continue
            yield family
        dropped = CounterMetricFamily(
            METRICSMGR_DROPPED,
            BY_NAME[METRICSMGR_DROPPED].help,
            labels=["container", "reason", "topology"],
        )
        for reason, n in sorted(self.dropped.items()):
            dropped.add_metric([self.base["container"], reason, self.base["topology"]], n)
        yield dropped
