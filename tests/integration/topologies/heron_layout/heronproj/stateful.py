"""A spout and a bolt of the shapes of Heron's stateful examples
(StatefulWordSpout, StatefulCountBolt): heronpy's StatefulComponent, state
written with ``put`` at ``pre_save``, message ids and acks as in
ATLEAST_ONCE code, ``global_metrics``. Finite (``test.words`` per spout task),
and the bolt resumes its counter from its state, so the counts are exact."""

import json
import os
from collections import Counter
from itertools import cycle

from heronpy.api import global_metrics
from heronpy.api.bolt.bolt import Bolt
from heronpy.api.spout.spout import Spout
from heronpy.api.state.stateful_component import StatefulComponent

WORDS = ["hello", "bye", "good", "bad", "heron", "storm"]


class StatefulWordSpout(Spout, StatefulComponent):
    outputs = ["word"]

    def init_state(self, stateful_state):
        self.recovered_state = stateful_state
        self.logger.info(f"Checkpoint Snapshot recovered : {self.recovered_state}")

    def pre_save(self, checkpoint_id):
        self.recovered_state.put("emitted", self.emit_count)

    def initialize(self, config, context):
        self.limit = int(config["test.words"])
        self.emit_count = self.recovered_state.get("emitted") or 0
        self.words = cycle(WORDS)
        for _ in range(self.emit_count % len(WORDS)):
            next(self.words)

    def next_tuple(self):
        if self.emit_count < self.limit:
            self.emit([next(self.words)], tup_id="message id")
            self.emit_count += 1


class StatefulCountBolt(Bolt, StatefulComponent):
    """Counts; each pre_save also writes the state it saves to
    ``<test.output.dir>/state-<task>.json`` (as Heron's example logs it)."""

    def init_state(self, stateful_state):
        self.recovered_state = stateful_state

    def pre_save(self, checkpoint_id):
        for k, v in list(self.counter.items()):
            self.recovered_state.put(k, v)
        snapshot = {k: self.recovered_state.get(k) for _, k in self.recovered_state.enumerate()}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"checkpoint": checkpoint_id, "state": snapshot}, f)
        os.replace(tmp, self.path)

    def initialize(self, config, context):
        self.counter = Counter(
            {k: self.recovered_state.get(k) for _, k in self.recovered_state.enumerate()}
        )
        os.makedirs(config["test.output.dir"], exist_ok=True)
        self.path = os.path.join(config["test.output.dir"], f"state-{context.get_task_id()}.json")

    def process(self, tup):
        self.counter[tup.values[0]] += 1
        global_metrics.safe_incr("count")
        self.ack(tup)

    def process_tick(self, tup):
        pass
