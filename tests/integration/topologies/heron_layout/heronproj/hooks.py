"""A task hook that counts every event and keeps what a test checks, rewritten to
``<test.output.dir>/hooks-<task>.json`` after each event (the topologies are small)."""

import json
import os
from collections import Counter

from heronpy.api.task_hook import ITaskHook


class CountingHook(ITaskHook):
    def __init__(self, config=None):
        self.config = config

    def prepare(self, conf, context):
        self.path = os.path.join(conf["test.output.dir"], f"hooks-{context.get_task_id()}.json")
        self.task = context.get_task_id()
        self.counts = Counter(prepare=1)
        self.out_tasks = {}
        self.bad = []
        self._save()

    def _save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"counts": self.counts, "out_tasks": self.out_tasks, "bad": self.bad}, f)
        os.replace(tmp, self.path)

    def _check(self, ok, what):
        if not ok:
            self.bad.append(what)

    def clean_up(self):
        self.counts["clean_up"] += 1
        self._save()

    def emit(self, info):
        self.counts["emit"] += 1
        self._check(info.task_id == self.task and isinstance(info.values, list), repr(info))
        self.out_tasks[json.dumps(info.values)] = info.out_tasks
        self._save()

    def spout_ack(self, info):
        self.counts["spout_ack"] += 1
        self._check(info.spout_task_id == self.task and info.complete_latency_ms >= 0, repr(info))
        self._save()

    def spout_fail(self, info):
        self.counts["spout_fail"] += 1
        self._check(info.spout_task_id == self.task and info.fail_latency_ms >= 0, repr(info))
        self._save()

    def bolt_execute(self, info):
        self.counts["bolt_execute"] += 1
        self._check(
            info.executing_task_id == self.task and info.execute_latency_ms >= 0, repr(info)
        )
        self._save()

    def bolt_ack(self, info):
        self.counts["bolt_ack"] += 1
        self._check(info.acking_task_id == self.task and info.heron_tuple.values, repr(info))
        self._save()

    def bolt_fail(self, info):
        self.counts["bolt_fail"] += 1
        self._check(info.failing_task_id == self.task and info.fail_latency_ms >= 0, repr(info))
        self._save()
