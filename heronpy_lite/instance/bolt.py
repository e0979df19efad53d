"""A bolt task: received batches into ``process`` calls, ticks, acks.

Theory of operation
-------------------
Each received DATA frame is one batch of one stream from one task;
`BoltInstance.process_batch` calls the component's ``process`` for each of
its tuples through the tuple path's ``deliver`` (``deliver_reliable`` at least
once, whose entries carry their anchors). A malformed batch raises
`RemoteProtocolError` before any of it is processed; the caller drops that
batch only (the stream manager forwards bodies unread, so one bad sender
costs only its own batch). A tuple whose ``process`` raises is failed at once
at least once, unless the bolt already acked or failed it.

Bolts are not auto-acked (heronpy's rule): ``ack``/``fail`` are the tuple
path's `AckOut`'s, whose traffic leaves as ACK frames with the next flush.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from heronpy_lite.api.tuple import TupleHelper
from heronpy_lite.instance.task import TaskInstance
from heronpy_lite.wire import metric_names as names


class BoltInstance(TaskInstance):
    is_spout = False

    def __init__(self, **task: Any) -> None:
        super().__init__(**task)
        self.ack = self.acks.ack
        self.fail = self.acks.fail
        self.executed: Counter[tuple[str, str]] = Counter()
        self.execute_seconds = 0.0
        self.bad_batches = 0

    def process_batch(self, src_task: int, stream: str, body: bytes | memoryview) -> None:
        """Unpack one received batch and call ``process`` for each of its tuples."""
        tuples = self.path.unpack(body)
        component = self.task_components.get(src_task, "")
        deliver = self.path.deliver_reliable if self.reliable else self.path.deliver
        began = time.perf_counter()
        deliver(
            self.component.process,
            tuples,
            component,
            stream,
            src_task,
            time.time(),
            self._process_raised,
        )
        self.execute_seconds += time.perf_counter() - began  # per batch, not per tuple
        self.executed[(component, stream)] += len(tuples)

    def _process_raised(self, exc: Exception, tup: Any) -> None:
        self.user_exception("process", exc)
        roots = tup.roots  # None at most once, and for untracked tuples
        if roots is not None and not roots.done:
            self.fail(tup)

    def process_tick(self) -> None:
        self.call_user("process_tick", self.component.process_tick, TupleHelper.make_tick_tuple())

    @property
    def acked(self) -> int:
        return self.acks.acked

    @property
    def failed(self) -> int:
        return self.acks.failed

    def collect(self, base: dict[str, str]) -> list[Any]:
        out = super().collect(base)
        executed_total = 0
        for (source, stream), n in self.executed.items():
            executed_total += n
            labels = {**base, "source_component": source, "stream": stream}
            out.append([names.EXECUTED, "counter", labels, n])
        latency = [self.acks.latency_count, self.acks.latency_sum]
        out += [
            [names.ACKED, "counter", base, self.acks.acked],
            [names.FAILED, "counter", base, self.acks.failed],
            [names.EXECUTE_LATENCY, "summary", base, [executed_total, self.execute_seconds]],
            [names.PROCESS_LATENCY, "summary", base, latency],
        ]
        return out
