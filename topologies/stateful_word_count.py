"""Stateful word count, EFFECTIVELY_ONCE: counts that are exact after any crash.

    heronpy-lite submit local topologies/stateful_word_count.py FileWordCount \\
        --config-property wordcount.input.file=README.md \\
        --config-property wordcount.output.dir=/tmp/wordcount

    heronpy-lite submit local topologies/stateful_word_count.py GeneratedWordCount \\
        --config-property wordcount.output.dir=/tmp/wordcount

Three pieces that every effectively-once topology needs:

- A **replayable spout**: its position in the source is its state, so that a
  restore resumes exactly where the checkpoint was taken. `ReplayableFileSpout`
  keeps a byte offset into a file (a line is emitted whole, so an offset is
  always at a line's start); `ReplayableGeneratorSpout` keeps an index into a
  deterministic sequence. A source that cannot seek (a socket, a queue that
  forgets what it handed out) cannot be effectively once.
- **State in the HashMapState** given to ``init_state``: `CountBolt` keeps its
  counts there, and nothing else survives a restore.
- A **committing sink**: what leaves the topology is at least once unless the
  sink is idempotent or transactional. `CommittingSink` is both: it stages the
  lines of each checkpoint in its state and writes them, as one file per
  checkpoint (``part-<checkpoint>.jsonl``, replaced atomically), only when the
  checkpoint is complete everywhere (``post_save``). If the process dies
  between the two, the restored state still holds the staged lines of the
  checkpoint it restores from, and they are written then: every line is in
  exactly one part file, once.

The final count of each word is the last line for it in the part files, in
order of their checkpoint numbers.
"""

import json
import os
import time
from pathlib import Path

from heronpy_lite.api import Bolt, Grouping, Spout, Topology, api_constants
from heronpy_lite.api.state.stateful_component import StatefulComponent

WORDS = ("heron", "storm", "flink", "stream", "tuple", "spout", "bolt", "state")


class ReplayableFileSpout(Spout, StatefulComponent):
    """The words of ``wordcount.input.file``, a line at a time; its state is the
    byte offset of the next line."""

    outputs = ["word"]

    def init_state(self, stateful_state):
        self.state = stateful_state

    def initialize(self, config, context):
        self.file = open(config["wordcount.input.file"], "rb")
        self.file.seek(int(self.state.get("offset", 0)))

    def next_tuple(self):
        line = self.file.readline()
        if not line:
            return  # the end of the file: finite, nothing more to replay
        for word in line.decode("utf-8", "replace").split():
            self.emit([word.lower()])

    def pre_save(self, checkpoint_id):
        self.state["offset"] = self.file.tell()


class ReplayableGeneratorSpout(Spout, StatefulComponent):
    """``wordcount.words`` words of a fixed sequence, at most
    ``wordcount.words.per.second`` (0: as fast as it can); its state is the index
    of the next one."""

    outputs = ["word"]

    def init_state(self, stateful_state):
        self.state = stateful_state

    def initialize(self, config, context):
        self.limit = int(config.get("wordcount.words", 100_000))
        self.rate = float(config.get("wordcount.words.per.second", 0))
        self.index = int(self.state.get("index", 0))
        self.started, self.first = time.monotonic(), self.index

    def next_tuple(self):
        if self.rate and self.index - self.first > (time.monotonic() - self.started) * self.rate:
            return
        if self.index < self.limit:
            self.emit([WORDS[(self.index * 7) % len(WORDS)]])
            self.index += 1

    def pre_save(self, checkpoint_id):
        self.state["index"] = self.index


class CountBolt(Bolt, StatefulComponent):
    """The count of each word, in its state."""

    outputs = ["word", "count"]

    def init_state(self, stateful_state):
        self.counts = stateful_state

    def initialize(self, config, context):
        pass

    def process(self, tup):
        word = tup.values[0]
        count = self.counts.get(word, 0) + 1
        self.counts[word] = count
        self.emit([word, count])

    def pre_save(self, checkpoint_id):
        pass  # the counts are in the state already


class CommittingSink(Bolt, StatefulComponent):
    """Writes (word, count) lines to ``wordcount.output.dir``, one file per
    checkpoint, once it is complete (a two-phase sink: stage at ``pre_save``,
    commit at ``post_save``)."""

    def init_state(self, stateful_state):
        self.state = stateful_state

    def initialize(self, config, context):
        self.folder = Path(config["wordcount.output.dir"])
        self.folder.mkdir(parents=True, exist_ok=True)
        self.task = context.get_task_id()
        self.lines = []  # since the last checkpoint: replayed after a crash
        self.committed = set()
        # the restored state's staged parts are of checkpoints up to the one
        # restored, which is complete: commit them (again, if they were already)
        self._commit_up_to(float("inf"))

    def process(self, tup):
        self.lines.append([tup.values[0], tup.values[1]])

    def pre_save(self, checkpoint_id):
        for checkpoint in self.committed:
            del self.state[f"staged-{checkpoint}"]
        self.committed.clear()
        self.state[f"staged-{checkpoint_id}"] = self.lines
        self.lines = []

    def post_save(self, checkpoint_id):
        # every staged part up to it: one staged for a checkpoint that was then
        # abandoned is in this one's state, before its cut
        self._commit_up_to(checkpoint_id)

    def _commit_up_to(self, last):
        staged = [k for _, k in self.state.enumerate() if k.startswith("staged-")]
        for key in staged:
            checkpoint = int(key.split("-", 1)[1])
            if checkpoint > last or checkpoint in self.committed:
                continue
            path = self.folder / f"part-{checkpoint:08d}-{self.task}.jsonl"
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(line) + "\n" for line in self.state[key]))
            os.replace(tmp, path)  # the same content each time: a commit may repeat
            self.committed.add(checkpoint)


CONFIG = {
    api_constants.TOPOLOGY_RELIABILITY_MODE: api_constants.TopologyReliabilityMode.EFFECTIVELY_ONCE,
    api_constants.TOPOLOGY_STATEFUL_CHECKPOINT_INTERVAL_SECONDS: 1,
    api_constants.TOPOLOGY_STMGRS: 2,
}


class FileWordCount(Topology):
    config = CONFIG
    lines = ReplayableFileSpout.spec(par=1)
    count = CountBolt.spec(par=2, inputs={lines: Grouping.fields("word")})
    sink = CommittingSink.spec(par=1, inputs=[count])


class GeneratedWordCount(Topology):
    config = CONFIG
    words = ReplayableGeneratorSpout.spec(par=1)
    count = CountBolt.spec(par=2, inputs={words: Grouping.fields("word")})
    sink = CommittingSink.spec(par=1, inputs=[count])
