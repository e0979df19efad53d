"""One counter per task that any code can bump (``heronpy.api.global_metrics``),
as Heron's ``GlobalMetrics``::

    from heronpy.api import global_metrics
    global_metrics.safe_incr("count")

The instance registers it at start, after ``initialize`` (``init``), as the
user metric ``__auto__``: its keys are exported as the counter
``heron_user_auto_total{key="count"}``, sampled with the engine's metrics.
"""

from __future__ import annotations

import threading
from typing import Any

from heronpy_lite.api.metrics import MultiCountMetric

#: the counters; a module global as in heronpy (one task per process here)
metricsContainer = MultiCountMetric()
registered = False
root_name = "__auto__"
lock = threading.Lock()


def incr(key: str, to_add: int = 1) -> None:
    """Add ``to_add`` to counter ``key``."""
    metricsContainer.incr(key, to_add)


def safe_incr(key: str, to_add: int = 1) -> None:
    """`incr` under a lock, for code that runs in threads of its own."""
    with lock:
        metricsContainer.incr(key, to_add)


def init(metrics_collector: Any, metrics_bucket: float) -> None:
    """Register the counters once with ``metrics_collector`` (anything with
    heronpy's ``register_metric(name, metric, time_bucket_in_sec)``, such as the
    TopologyContext); later calls do nothing. The instance calls this itself."""
    global registered
    with lock:
        if not registered:
            metrics_collector.register_metric(root_name, metricsContainer, metrics_bucket)
            registered = True
