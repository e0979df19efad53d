"""Topologies of the window tests (tests/integration/test_windows.py).

- ``HeronpyWindows``: a paced spout into heronpy's SlidingWindowBolt (2 s
  every 1 s) and TumblingWindowBolt (1 s); each records every window it is
  handed: ``[start, end, time handed over, [[seq, arrival time], ...]]``.
- ``EventTime``: a spout emitting `SCRIPT` (out of order, once) into two
  WindowedBolts: tumbling event-time windows (10 s, lag 3 s, allowed lateness
  5 s) and per-user sessions (gap 4 s, lag 3 s); each one's windows and late
  stream go to sinks.
- ``ReliableWindows``: ReplaySpout into a processing-time tumbling
  WindowedBolt whose windows (lists of seqs, anchored to their tuples) go
  to an acking sink; for ATLEAST_ONCE with kill -9.
"""

import json

from harness import Sink, output_path
from reliable import ReplaySpout

from heronpy_lite.api import Bolt, Grouping, Spout, Topology
from heronpy_lite.api.bolt.window_bolt import SlidingWindowBolt, TumblingWindowBolt
from heronpy_lite.api.bolt.windowed import WindowedBolt, Windowing


class PacedSpout(Spout):
    """[seq] for seq in 0..test.tuples-1, at test.rate tuples/s."""

    outputs = ["seq"]

    def initialize(self, config, context):
        import time

        self.clock = time.monotonic
        self.total = int(config.get("test.tuples", 100))
        self.rate = float(config.get("test.rate", 50))
        self.start = self.clock()
        self.seq = 0

    def next_tuple(self):
        if self.seq < self.total and self.seq < (self.clock() - self.start) * self.rate:
            self.emit([self.seq])
            self.seq += 1


class _Recording:
    def open_output(self, config, context):
        self.out = open(output_path(config, context), "a", buffering=1)

    def processWindow(self, window_info, tuples):
        import time

        seqs = [[t.values[0], t.creation_time] for t in tuples]
        record = [window_info.start, window_info.end, time.time(), seqs]
        self.out.write(json.dumps(record) + "\n")


class RecordingSliding(_Recording, SlidingWindowBolt):
    outputs = []

    def initialize(self, config, context):
        super().initialize(config, context)
        self.open_output(config, context)


class RecordingTumbling(_Recording, TumblingWindowBolt):
    outputs = []

    def initialize(self, config, context):
        super().initialize(config, context)
        self.open_output(config, context)


class HeronpyWindows(Topology):
    spout = PacedSpout.spec()
    sliding = RecordingSliding.spec(
        inputs=[spout],
        config={
            SlidingWindowBolt.WINDOW_DURATION_SECS: 2,
            SlidingWindowBolt.WINDOW_SLIDEINTERVAL_SECS: 1,
        },
    )
    tumbling = RecordingTumbling.spec(
        inputs=[spout], config={TumblingWindowBolt.WINDOW_DURATION_SECS: 1}
    )


#: (timestamp, name, user), in emit order: out of order on purpose (see the test)
SCRIPT = [
    (1, "a", "u1"),
    (4, "b", "u2"),
    (12, "c", "u1"),
    (7, "d", "u1"),
    (14, "e", "u2"),
    (9, "f", "u1"),
    (22, "g", "u2"),
    (3, "h", "u1"),
    (18, "i", "u1"),
    (40, "j", "u2"),
    (100, "end", "u3"),
]


class ScriptSpout(Spout):
    outputs = ["ts", "name", "user"]

    def initialize(self, config, context):
        self.left = list(SCRIPT)

    def next_tuple(self):
        if self.left:
            self.emit(list(self.left.pop(0)))


class EventWindows(WindowedBolt):
    outputs = ["start", "end", "late", "names"]
    windowing = Windowing.tumbling(
        10, timestamp="ts", lag=3, allowed_lateness=5, late_stream="late"
    )

    def process_window(self, window, tuples):
        self.emit([window.start, window.end, window.late, [t.values[1] for t in tuples]])


class UserSessions(WindowedBolt):
    outputs = ["user", "start", "end", "names"]
    windowing = Windowing.session(4, timestamp="ts", lag=3, key="user", late_stream="late")

    def process_window(self, window, tuples):
        self.emit([window.key, window.start, window.end, [t.values[1] for t in tuples]])


class EventTime(Topology):
    script = ScriptSpout.spec()
    windows = EventWindows.spec(inputs=[script])
    sessions = UserSessions.spec(inputs={script: Grouping.fields("user")})
    windows_out = Sink.spec(inputs=[windows])
    windows_late = Sink.spec(inputs=[windows["late"]])
    sessions_out = Sink.spec(inputs=[sessions])
    sessions_late = Sink.spec(inputs=[sessions["late"]])


class SeqWindows(WindowedBolt):
    """Tumbling 0.5 s windows; emits each window's seqs (anchored to its tuples)."""

    outputs = ["seqs"]
    windowing = Windowing.tumbling(0.5)

    def process_window(self, window, tuples):
        self.emit([[t.values[0] for t in tuples]])


class SeqListSink(Bolt):
    """Records each window's seqs as one line, then acks."""

    outputs = []

    def initialize(self, config, context):
        self.out = open(output_path(config, context), "a", buffering=1)

    def process(self, tup):
        self.out.write(json.dumps(tup.values[0]) + "\n")
        self.ack(tup)


class ReliableWindows(Topology):
    spout = ReplaySpout.spec()
    windows = SeqWindows.spec(inputs=[spout])
    sink = SeqListSink.spec(inputs=[windows])
