"""The wrapper of a user spout: its delegate, counting tuples to complete."""

import copy
import json
import os

import heronpy
from heronpy.api.component.component_spec import HeronComponentSpec
from heronpy.api.spout.spout import Spout
from heronpy.api.stream import Stream

from heronproj.harness import constants as c
from heronproj.harness.loading import user_class


class WrapperSpout(Spout):
    outputs = []

    @classmethod
    def spec(cls, name, par, config, user_spout_classpath, user_output_fields=None):
        config[c.USER_CLASS] = user_spout_classpath
        outputs = copy.copy(user_output_fields or [])
        outputs.append(Stream(fields=[c.TERMINAL], name=c.CONTROL_STREAM))
        return HeronComponentSpec(
            name, f"{cls.__module__}.{cls.__name__}", True, par, outputs=outputs, config=config
        )

    def initialize(self, config, context):
        self.user_spout = user_class(context, config[c.USER_CLASS])(delegate=self)
        self.max_executions = config[c.MAX_EXECUTIONS]
        self.tuples_to_complete = 0
        folder = config["test.output.dir"]
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"spout-{context.get_task_id()}.json"), "w") as f:
            json.dump(
                {
                    "pex_path": context.get_topology_pex_path(),
                    "heronpy": heronpy.__name__,
                    "spout_module": Spout.__module__,
                },
                f,
            )
        self.user_spout.initialize(config, context)

    def next_tuple(self):
        if self.max_executions <= 0:
            return
        self.max_executions -= 1
        self.user_spout.next_tuple()
        self._terminal_if_done()

    def emit(
        self,
        tup,
        tup_id=None,
        stream=Stream.DEFAULT_STREAM_ID,
        direct_task=None,
        need_task_ids=None,
    ):
        self.tuples_to_complete += 1
        super().emit(
            tup, c.MOCK_MESSAGE_ID if tup_id is None else tup_id, stream, direct_task, need_task_ids
        )

    def ack(self, tup_id):
        self.tuples_to_complete -= 1
        if tup_id != c.MOCK_MESSAGE_ID:
            self.user_spout.ack(tup_id)
        self._terminal_if_done()

    def fail(self, tup_id):
        self.tuples_to_complete -= 1
        if tup_id != c.MOCK_MESSAGE_ID:
            self.user_spout.fail(tup_id)
        self._terminal_if_done()

    def _terminal_if_done(self):
        if self.max_executions == 0 and self.tuples_to_complete == 0:
            self.max_executions = -1  # once
            super().emit([c.TERMINAL], stream=c.CONTROL_STREAM)
