"""Streamlet topologies of tests/integration/test_streamlets.py, submitted as
ATTR (the Builder objects below).

Every sink is a ``consume`` of `record(tag)`: it appends ``[type names,
element]`` as a JSON line to ``$STREAMLET_TEST_OUT/<tag>-<pid>.jsonl``
(consume functions get no config, so the folder comes from the environment
the instances inherit).

- ``wordcount``: two ArrayLooper sources through flat_map, map, union and
  reduce_by_key_and_window (tumbling 1 s), with 2 partitions from union on,
  so that keys come to the reducers from two processes. The sources pause
  1 ms per line (ArrayLooper's ``sleep``) to keep the volume small.
- ``operations``: finite sources through map, flat_map, filter, log,
  repartition (with and without a function), union (also of a streamlet
  with itself), clone and transform.
- ``sliding``: Heron's word_count_streamlet.py with a shorter window: an
  ArrayLooper as fast as it goes, flat_map, map and reduce_by_key_and_window
  over sliding windows (3 s every 1 s), with max_tuples far below what one
  window sees, so that only folding per pane can count it.
- ``windowed``: reduce_by_window over event time, reduce_by_key_and_window
  over count windows, and keyed again by its results' KeyedWindows.
- ``joins``: the four joins and a self-join over event-time windows.
- ``reliable``: a paced finite source (600/s) through map and filter into a
  slower sink (2 ms per element, so tuples queue in front of it); the test
  runs it ATLEAST_ONCE and kills the sink.
"""

import json
import os
import time
from collections import deque

from heronpy_lite.connectors.mock.arraylooper import ArrayLooper
from heronpy_lite.streamlet.builder import Builder
from heronpy_lite.streamlet.generator import Generator
from heronpy_lite.streamlet.transformoperator import TransformOperator
from heronpy_lite.streamlet.windowconfig import WindowConfig

_files = {}


def record(tag, pause=0.0):
    """A sink for ``tag``; ``pause`` seconds per element makes it a slow consumer."""

    def consume(element):
        if pause:
            time.sleep(pause)
        out = _files.get(tag)
        if out is None:
            folder = os.environ["STREAMLET_TEST_OUT"]
            path = os.path.join(folder, f"{tag}-{os.getpid()}.jsonl")
            out = _files[tag] = open(path, "a", buffering=1)
        kinds = [type(e).__name__ for e in element] if isinstance(element, tuple) else []
        out.write(json.dumps([kinds, element]) + "\n")

    return consume


class Items(Generator):
    """Each item once, split over the source's partitions; then nothing."""

    def __init__(self, items):
        self.items = list(items)

    def setup(self, context):
        index, n = context.get_partition_index(), context.get_num_partitions()
        self.left = deque(self.items[index::n])

    def get(self):
        return self.left.popleft() if self.left else None


# -- word count --

LINES_A = ["the quick brown fox", "jumps over the lazy dog", "the end"]
LINES_B = ["a quick brown dog", "barks at the fox"]

wordcount = Builder()
pairs_a = (
    wordcount.new_source(ArrayLooper(LINES_A, sleep=0.001))
    .set_name("lines-a")
    .flat_map(str.split)
    .map(lambda word: (word, 1))
)
pairs_b = (
    wordcount.new_source(ArrayLooper(LINES_B, sleep=0.001))
    .set_name("lines-b")
    .flat_map(str.split)
    .map(lambda word: (word, 1))
)
(
    pairs_a.union(pairs_b)
    .set_num_partitions(2)
    .reduce_by_key_and_window(WindowConfig.create_tumbling_window(1), lambda x, y: x + y)
    .set_num_partitions(2)
    .consume(record("counts"))
)


# -- Heron's word count over sliding windows --

SLIDING_LINES = ["Mary Had a little lamb", "I Love You"]
SLIDING_MAX_TUPLES = 1000

sliding = Builder()
(
    sliding.new_source(ArrayLooper(SLIDING_LINES))
    .set_name("lines")
    .flat_map(lambda line: line.split())
    .map(lambda word: (word, 1))
    .reduce_by_key_and_window(
        WindowConfig.create_sliding_window(3, 1).with_max_tuples(SLIDING_MAX_TUPLES),
        lambda x, y: x + y,
    )
    .consume(record("sliding"))
)


# -- every other operation --
#
# Chains rather than one branch per operation: the output of a chain is exact
# too, and each component is a process (the machine running the tests has two
# cores).


class Tagger(TransformOperator):
    """Emits [element, partition index, partitions] and -element for each element."""

    def setup(self, context):
        self.context = context
        self.where = (context.get_partition_index(), context.get_num_partitions())

    def transform(self, tup):
        x = tup.values[0]
        self.context.emit([x, *self.where])
        self.context.emit(-x)


def fan_out(x, n):
    """0..4 go to partitions 0 and 2; the rest to 2 if a multiple of 5, else 0."""
    return [0, 2] if x < 5 else (2 if x % 5 == 0 else 0)


N = 30
operations = Builder()
numbers = operations.new_source(Items(range(N))).set_name("numbers")
letters = operations.new_source(Items("xyz")).set_name("letters")
chained = (
    numbers.map(lambda x: x * 10)
    .flat_map(lambda x: [x] * (x // 10 % 3))
    .filter(lambda x: x % 4 == 0)
)
chained.consume(record("chain"))
chained.log().set_name("logged")
(
    numbers.repartition(3, fan_out)
    .set_name("by-function")
    .repartition(2)
    .set_name("spread")
    .union(letters)
    .set_num_partitions(1)
    .consume(record("partitions"))
)
first, second = numbers.clone(2)
first.union(first).set_name("self-union").union(second).consume(record("clones"))
numbers.transform(Tagger()).set_num_partitions(2).consume(record("transform")).set_num_partitions(1)


# -- window operations --

windowed = Builder()
# event time makes the windows exact: (timestamp, value); 100 moves the watermark on
timed = windowed.new_source(
    Items([(1, 1), (4, 2), (12, 3), (7, 4), (15, 5), (31, 6), (100, 0)])
).set_name("timed")
timed.reduce_by_window(
    WindowConfig.create_tumbling_window(10).with_event_time(lambda e: e[0]),
    lambda a, b: [max(a[0], b[0]), a[1] + b[1]],
).consume(record("reduce_by_window"))
keyed = windowed.new_source(
    Items([("a", 1), ("b", 2), ("a", 3), ("a", 4), ("b", 5), ("c", 6), ("a", 7)])
).set_name("keyed")
keyed.reduce_by_key_and_window(
    WindowConfig.create_tumbling_count_window(3), lambda x, y: x + y
).consume(record("count_window"))
# results keyed again by their KeyedWindow: window keys cross the wire
keyed.reduce_by_key_and_window(
    WindowConfig.create_tumbling_count_window(7), lambda x, y: x + y
).reduce_by_key_and_window(
    WindowConfig.create_tumbling_count_window(3), lambda x, y: x * y
).consume(record("rekeyed"))


# -- joins --

LEFT = [("k1", (1, "L1")), ("k2", (2, "L2")), ("k1", (3, "L3")), ("k3", (12, "L4"))]
RIGHT = [("k1", (2, "R1")), ("k4", (5, "R2")), ("k3", (15, "R3")), ("k5", (13, "R4"))]
END = ("end", (100, "end"))


def pair(left, right):
    return [left[1] if left else None, right[1] if right else None]


joins = Builder()
left = joins.new_source(Items([*LEFT, END])).set_name("left")
right = joins.new_source(Items([*RIGHT, END])).set_name("right")
window = WindowConfig.create_tumbling_window(10).with_event_time(lambda kv: kv[1][0])
left.join(right, window, pair).consume(record("inner"))
left.outer_left_join(right, window, pair).consume(record("outer_left"))
left.outer_right_join(right, window, pair).consume(record("outer_right"))
left.outer_join(right, window, pair).consume(record("outer"))
left.join(left, window, pair).set_name("self-join").consume(record("self"))


# -- at least once --

RELIABLE_N = 3000


class Paced(Generator):
    """0..RELIABLE_N-1 once, at most ``rate`` per second (long enough to kill a bolt)."""

    def __init__(self, n, rate):
        self.n, self.rate, self.clock = n, rate, time.monotonic

    def setup(self, context):
        self.start, self.next = self.clock(), 0

    def get(self):
        if self.next >= self.n or self.next > (self.clock() - self.start) * self.rate:
            return None
        self.next += 1
        return self.next - 1


reliable = Builder()
(
    reliable.new_source(Paced(RELIABLE_N, 600))
    .set_name("paced")
    .map(lambda x: x * 2)
    .set_name("double")
    .filter(lambda x: x % 3 != 1)
    .consume(record("reliable", pause=0.002))
    .set_name("slow-sink")
)
