"""Word count: a spout of random words -> a counting bolt, fields grouping on
"word", parallelism 2/2, packed into 2 containers.

    heronpy-lite submit local topologies/word_count.py WordCountTopology

Each count bolt logs its top words every 10 s (tick tuples); see
$HERONPY_LITE_HOME/topologies/WordCountTopology/log/instance-count-*.log.
"""

import random
from collections import Counter

from heronpy_lite.api import Bolt, Grouping, Spout, Topology, api_constants

WORDS = (
    "nathan",
    "mike",
    "jackson",
    "golda",
    "bertels",
    "apple",
    "orange",
    "heron",
    "storm",
    "stream",
    "tuple",
    "spout",
    "bolt",
    "topology",
    "python",
)


class WordSpout(Spout):
    outputs = ["word"]

    def initialize(self, config, context):
        self.rng = random.Random(context.get_task_id())
        self.limit = int(config.get("wordcount.words.per.second", 200))
        self.emitted = 0

    def next_tuple(self):
        # about `limit` words per second, so the example idles gently on a laptop
        import time

        now = time.monotonic()
        if not hasattr(self, "started"):
            self.started = now
        if self.emitted < (now - self.started) * self.limit:
            self.emit([self.rng.choice(WORDS)])
            self.emitted += 1


class CountBolt(Bolt):
    outputs = ["word", "count"]

    def initialize(self, config, context):
        self.counts = Counter()
        self.total = 0

    def process(self, tup):
        word = tup.values[0]
        self.counts[word] += 1
        self.total += 1
        self.emit([word, self.counts[word]])

    def process_tick(self, tup):
        top = ", ".join(f"{w}={c}" for w, c in self.counts.most_common(5))
        self.log(f"{self.total} words counted; top: {top}")


class WordCountTopology(Topology):
    config = {
        api_constants.TOPOLOGY_STMGRS: 2,
        api_constants.TOPOLOGY_TICK_TUPLE_FREQ_SECS: 10,
    }
    word_spout = WordSpout.spec(par=2)
    count_bolt = CountBolt.spec(par=2, inputs={word_spout: Grouping.fields("word")})
