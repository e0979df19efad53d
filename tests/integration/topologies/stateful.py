"""EFFECTIVELY_ONCE test topologies: a replayable spout over a fixed input, and a
stateful counting bolt that commits its counts, as of each complete
checkpoint, to a file (a two-phase sink: stage at pre_save, commit at
post_save). Config: ``test.output.dir``, ``test.words`` (how many),
``test.vocabulary``, ``test.rate`` (words per second, 0: as fast as it can),
``test.slow.secs`` (seconds the counter sleeps per tuple)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from heronpy.api.bolt.bolt import Bolt
from heronpy.api.spout.spout import Spout
from heronpy.api.state.stateful_component import StatefulComponent
from heronpy.api.stream import Grouping
from heronpy.api.topology import Topology


def word(i: int, vocabulary: int) -> str:
    return f"w{(i * 7919) % vocabulary}"


class NumberedWords(Spout, StatefulComponent):
    """Words 0 .. test.words-1; the offset is its state, so a restore resumes there."""

    outputs = ["word"]

    def init_state(self, stateful_state: Any) -> None:
        self.state = stateful_state

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        self.limit = int(config.get("test.words", 10_000))
        self.vocabulary = int(config.get("test.vocabulary", 50))
        self.rate = float(config.get("test.rate", 0))
        self.offset = int(self.state.get("offset", 0))
        self.started = time.monotonic()
        self.base = self.offset

    def next_tuple(self) -> None:
        if self.offset >= self.limit:
            return
        if self.rate and self.offset - self.base > (time.monotonic() - self.started) * self.rate:
            return
        self.emit([word(self.offset, self.vocabulary)])
        self.offset += 1

    def pre_save(self, checkpoint_id: Any) -> None:
        self.state["offset"] = self.offset


class CommittedCount(Bolt, StatefulComponent):
    """Counts words in its state; commits them to counts-<task>.json when a
    checkpoint completes, as of that checkpoint."""

    outputs = ["word", "count"]

    def init_state(self, stateful_state: Any) -> None:
        self.counts = stateful_state

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        self.slow = float(config.get("test.slow.secs", 0))
        folder = Path(config["test.output.dir"])
        folder.mkdir(parents=True, exist_ok=True)
        self.out = folder / f"counts-{context.get_task_id()}.json"
        self.staged: dict[int, dict[str, int]] = {}

    def process(self, tup: Any) -> None:
        if self.slow:
            time.sleep(self.slow)
        w = tup.values[0]
        n = self.counts.get(w, 0) + 1
        self.counts[w] = n
        self.emit([w, n])

    def pre_save(self, checkpoint_id: Any) -> None:
        self.staged[checkpoint_id] = dict(self.counts.items())

    def post_save(self, checkpoint_id: Any) -> None:
        counts = self.staged.pop(checkpoint_id, None)
        for old in [c for c in self.staged if c < checkpoint_id]:
            del self.staged[old]
        if counts is None:
            return
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"checkpoint": checkpoint_id, "counts": counts}))
        os.replace(tmp, self.out)


class Discard(Bolt):
    """Stateless: takes part in checkpoints without state."""

    def process(self, tup: Any) -> None:
        pass


class StatefulWordCount(Topology):
    config = {
        "topology.reliability.mode": "EFFECTIVELY_ONCE",
        "topology.stateful.checkpoint.interval.seconds": 1,
        "topology.stmgrs": 2,
    }
    words = NumberedWords.spec(par=1)
    count = CommittedCount.spec(par=2, inputs={words: Grouping.fields("word")})
    discard = Discard.spec(par=1, inputs=[count])


class SlowRelay(Bolt):
    """Stateless, slow: passes each word on after ``test.relay.secs``."""

    outputs = ["word"]

    def initialize(self, config: dict[str, Any], context: Any) -> None:
        self.delay = float(config.get("test.relay.secs", 0.002))

    def process(self, tup: Any) -> None:
        time.sleep(self.delay)
        self.emit([tup.values[0]])


class SlowPathWordCount(Topology):
    """Every word reaches the counter twice: directly, and through a slow relay,
    whose checkpoint markers come late: meanwhile the direct input is held."""

    config = {
        "topology.reliability.mode": "EFFECTIVELY_ONCE",
        "topology.stateful.checkpoint.interval.seconds": 1,
        "topology.stmgrs": 2,
    }
    words = NumberedWords.spec(par=1)
    relay = SlowRelay.spec(par=1, inputs=[words])
    count = CommittedCount.spec(
        par=1, inputs={words: Grouping.fields("word"), relay: Grouping.fields("word")}
    )
