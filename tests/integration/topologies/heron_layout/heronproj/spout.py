"""Spouts of the shapes of Heron's examples (WordSpout, MultiStreamSpout), finite."""

from itertools import cycle

from heronpy.api.spout.spout import Spout
from heronpy.api.stream import Stream

from heronproj.hooks import CountingHook
from heronproj.record import Recorder

WORDS = ["hello", "bye", "good", "bad", "heron", "storm"]


class WordSpout(Spout):
    """Emits ``test.words`` words with a message id each; records, per emit, the
    task ids ``emit(..., need_task_ids=True)`` returned, then every ack and fail."""

    outputs = ["word"]

    def initialize(self, config, context):
        self.words = cycle(WORDS)
        self.left = int(config["test.words"])
        self.task = context.get_task_id()
        self.seq = 0
        self.record = Recorder(config, context)
        context.add_task_hook(CountingHook())

    def next_tuple(self):
        if self.seq >= self.left:
            return
        word = next(self.words)
        msg_id = f"{self.task}-{self.seq}"
        tasks = self.emit([word], tup_id=msg_id, need_task_ids=True)
        self.record.write("emit", msg_id, word, tasks)
        self.seq += 1

    def ack(self, tup_id):
        self.record.write("ack", tup_id)

    def fail(self, tup_id):
        self.record.write("fail", tup_id)


class MultiStreamSpout(Spout):
    """Emits ``test.words`` words on the default stream and, after every third, a
    message on the ``error`` stream."""

    outputs = ["word", Stream(fields=["error_msg"], name="error")]

    def initialize(self, config, context):
        self.words = cycle(WORDS)
        self.left = int(config["test.words"])
        self.emitted = 0

    def next_tuple(self):
        if self.emitted >= self.left:
            return
        self.emit([next(self.words)])
        self.emitted += 1
        if self.emitted % 3 == 0:
            self.emit(["test error message"], stream="error")
