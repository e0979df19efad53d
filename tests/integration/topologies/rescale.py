"""ATLEAST_ONCE topology for update: numbers 0 .. test.count-1 from a spout that
commits the offset of what was acked to a file (as a Kafka consumer commits
its offsets), so that a restarted spout resumes after the last acked number;
a relay fields-grouped on the number (the bolt rescaled); a sink that writes
each number it receives, one line each, to seen-<task>.txt.
Config: ``test.output.dir``, ``test.count``, ``test.rate`` (numbers per second)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from heronpy.api.bolt.bolt import Bolt
from heronpy.api.spout.spout import Spout
from heronpy.api.stream import Grouping
from heronpy.api.topology import Topology


class CommittedNumbers(Spout):
    outputs = ["n"]

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        folder = Path(config["test.output.dir"])
        folder.mkdir(parents=True, exist_ok=True)
        self.offset_file = folder / "offset"
        self.limit = int(config.get("test.count", 1000))
        self.rate = float(config.get("test.rate", 0))
        self.committed = int(self.offset_file.read_text()) if self.offset_file.exists() else 0
        self.next = self.base = self.committed
        self.acked: set[int] = set()
        self.retry: list[int] = []
        self.started = time.monotonic()

    def next_tuple(self) -> None:
        if self.retry:
            n = self.retry.pop()
        elif self.next < self.limit:
            emitted = self.next - self.base
            if self.rate and emitted > (time.monotonic() - self.started) * self.rate:
                return
            n = self.next
            self.next += 1
        else:
            return
        self.emit([n], tup_id=n)

    def ack(self, tup_id: Any) -> None:
        self.acked.add(tup_id)
        before = self.committed
        while self.committed in self.acked:
            self.acked.discard(self.committed)
            self.committed += 1
        if self.committed != before:
            tmp = self.offset_file.with_suffix(".tmp")
            tmp.write_text(str(self.committed))
            os.replace(tmp, self.offset_file)

    def fail(self, tup_id: Any) -> None:
        self.retry.append(tup_id)


class Relay(Bolt):
    outputs = ["n", "task"]

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        self.task = context.get_task_id()

    def process(self, tup: Any) -> None:
        self.emit([tup.values[0], self.task], anchors=[tup])
        self.ack(tup)


class Sink(Bolt):
    def initialize(self, config: dict[str, Any], context: Any) -> None:
        folder = Path(config["test.output.dir"])
        self.out = open(folder / f"seen-{context.get_task_id()}.txt", "a")

    def process(self, tup: Any) -> None:
        self.out.write(f"{tup.values[0]}\n")
        self.out.flush()
        self.ack(tup)


class RescaledNumbers(Topology):
    config = {"topology.reliability.mode": "ATLEAST_ONCE", "topology.stmgrs": 2}
    numbers = CommittedNumbers.spec(par=1)
    relay = Relay.spec(par=2, inputs={numbers: Grouping.fields("n")})
    sink = Sink.spec(par=1, inputs=[relay])


class Throttled(Bolt):
    """Sleeps ``test.slow.secs`` per tuple while the file ``slow`` exists in the
    output folder (looked at twice a second): a bolt made slower, then faster,
    from outside while it runs."""

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        self.flag = Path(config["test.output.dir"]) / "slow"
        self.delay = float(config.get("test.slow.secs", 0.008))
        self.slow = self.flag.exists()
        self.looked = time.monotonic()

    def process(self, tup: Any) -> None:
        now = time.monotonic()
        if now - self.looked > 0.5:
            self.slow, self.looked = self.flag.exists(), now
        if self.slow:
            time.sleep(self.delay)
        self.ack(tup)


class AutoscaledNumbers(Topology):
    config = {
        "topology.reliability.mode": "ATLEAST_ONCE",
        "topology.stmgrs": 1,
        "topology.autoscale.enabled": True,
        "topology.autoscale.components": "work",
        "topology.autoscale.min.parallelism": 1,
        "topology.autoscale.max.parallelism": 4,
        "topology.autoscale.window.secs": 4,
        "topology.autoscale.cooldown.secs": 6,
        "topology.autoscale.busy.high.ms": 700,
        "topology.autoscale.busy.low.ms": 150,
    }
    numbers = CommittedNumbers.spec(par=1)
    work = Throttled.spec(par=1, inputs={numbers: Grouping.fields("n")})
