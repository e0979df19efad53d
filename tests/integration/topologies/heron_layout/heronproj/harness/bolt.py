"""The wrapper of a user bolt: its delegate; passes terminals on once every
upstream task has sent its own."""

import copy

from heronpy.api.bolt.bolt import Bolt
from heronpy.api.component.component_spec import HeronComponentSpec
from heronpy.api.stream import Stream

from heronproj.harness import constants as c
from heronproj.harness.loading import user_class


class BatchBolt(Bolt):
    """A user bolt that wants to know when its input has ended."""

    def finish_batch(self):
        pass


class WrapperBolt(Bolt):
    outputs = []

    @classmethod
    def spec(cls, name, par, inputs, config, user_bolt_classpath, user_output_fields=None):
        config[c.USER_CLASS] = user_bolt_classpath
        # the user's streams first: with the control stream first, a flush that holds
        # both would send the terminal ahead of the data (emit order across streams is
        # not kept yet)
        outputs = copy.copy(user_output_fields or [])
        outputs.append(Stream(fields=[c.TERMINAL], name=c.CONTROL_STREAM))
        return HeronComponentSpec(
            name,
            f"{cls.__module__}.{cls.__name__}",
            False,
            par,
            inputs=inputs,
            outputs=outputs,
            config=config,
        )

    def initialize(self, config, context):
        self.user_bolt = user_class(context, config[c.USER_CLASS])(delegate=self)
        upstream = {stream.component_name for stream in context.get_this_sources()}
        self.terminals_to_receive = sum(len(context.get_component_tasks(u)) for u in upstream)
        self.received = 0
        self.processed = 0
        self.user_bolt.initialize(config, context)

    def process(self, tup):
        self.received += 1
        if tup.stream == c.CONTROL_STREAM:
            self.terminals_to_receive -= 1
            if self.terminals_to_receive == 0:
                if isinstance(self.user_bolt, BatchBolt):
                    self.user_bolt.finish_batch()
                super().emit([c.TERMINAL], stream=c.CONTROL_STREAM)
        else:
            self.user_bolt.process(tup)
        self.ack(tup)

    def emit(
        self,
        tup,
        stream=Stream.DEFAULT_STREAM_ID,
        anchors=None,
        direct_task=None,
        need_task_ids=False,
    ):
        return super().emit(tup, stream, anchors, direct_task, need_task_ids)

    def ack(self, tup):
        if self.processed < self.received:
            super().ack(tup)
            self.processed += 1

    def fail(self, tup):
        if self.processed < self.received:
            super().fail(tup)
            self.processed += 1

    def process_tick(self, tup):
        self.user_bolt.process_tick(tup)
