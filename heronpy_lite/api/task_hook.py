"""Task hooks (``heronpy.api.task_hook``): user code called at a task's events.

Register one with ``context.add_task_hook(hook)`` (usually in ``initialize``),
or list hook classes (dotted paths, built with no arguments) in the config key
``topology.auto.task.hooks``. The instance calls, per task:

- ``prepare(conf, context)`` once, after the component's ``initialize``;
- ``emit(EmitInfo)`` after each emit that sent a tuple (``out_tasks``: the
  destination task ids; heronpy passes None there);
- ``spout_ack(SpoutAckInfo)`` / ``spout_fail(SpoutFailInfo)`` after the spout's
  ``ack``/``fail`` (latency since the emit of that id, in ms);
- ``bolt_execute(BoltExecuteInfo)`` after each ``process`` that returned;
- ``bolt_ack(BoltAckInfo)`` / ``bolt_fail(BoltFailInfo)`` after the bolt acked or
  failed an input (latency since the tuple arrived, in ms);
- ``clean_up()`` when the task stops (before a spout's ``close``).

An exception in a hook is logged and counted like one in user code; the task
goes on. A task with no hook pays nothing for the feature.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import namedtuple
from typing import Any


class ITaskHook:
    """Implement the events you need; the others do nothing."""

    @abstractmethod
    def prepare(self, conf: dict[str, Any], context: Any) -> None:
        """Called after the spout's or bolt's ``initialize``."""

    @abstractmethod
    def clean_up(self) -> None:
        """Called when the task stops, before a spout's ``close``."""

    @abstractmethod
    def emit(self, emit_info: Any) -> None:
        """Called after every emit of this task (`EmitInfo`)."""

    @abstractmethod
    def spout_ack(self, spout_ack_info: Any) -> None:
        """Called after the spout's ``ack`` (`SpoutAckInfo`)."""

    @abstractmethod
    def spout_fail(self, spout_fail_info: Any) -> None:
        """Called after the spout's ``fail`` (`SpoutFailInfo`)."""

    @abstractmethod
    def bolt_execute(self, bolt_execute_info: Any) -> None:
        """Called after the bolt's ``process`` returned (`BoltExecuteInfo`)."""

    @abstractmethod
    def bolt_ack(self, bolt_ack_info: Any) -> None:
        """Called after the bolt acked an input tuple (`BoltAckInfo`)."""

    @abstractmethod
    def bolt_fail(self, bolt_fail_info: Any) -> None:
        """Called after the bolt failed an input tuple (`BoltFailInfo`)."""


#: values emitted, the stream, the emitting task and the destination tasks
EmitInfo = namedtuple("EmitInfo", "values, stream_id, task_id, out_tasks")
#: the spout's message id, its task, ms from emit to ack
SpoutAckInfo = namedtuple("SpoutAckInfo", "message_id, spout_task_id, complete_latency_ms")
#: the spout's message id, its task, ms from emit to fail
SpoutFailInfo = namedtuple("SpoutFailInfo", "message_id, spout_task_id, fail_latency_ms")
#: the tuple processed, the bolt's task, ms in ``process``
BoltExecuteInfo = namedtuple(
    "BoltExecuteInfo", "heron_tuple, executing_task_id, execute_latency_ms"
)
#: the tuple acked, the bolt's task, ms from its arrival to the ack
BoltAckInfo = namedtuple("BoltAckInfo", "heron_tuple, acking_task_id, process_latency_ms")
#: the tuple failed, the bolt's task, ms from its arrival to the fail
BoltFailInfo = namedtuple("BoltFailInfo", "heron_tuple, failing_task_id, fail_latency_ms")
