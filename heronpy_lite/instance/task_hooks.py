"""Task hooks in the instance: heronpy's ``ITaskHook`` events, called around the task.

Theory of operation
-------------------
A task with no hook must not pay for the feature, so nothing here sits on
the tuple path unless a hook exists. `TaskHooks` is made before
``initialize`` (it registers the classes listed in
``topology.auto.task.hooks``, as heronpy's context does on creation); after
``initialize`` the runner calls `TaskHooks.start`. If by then no hook is
registered (``context.add_task_hook`` is usually called in ``initialize``),
it returns and the task runs exactly as without this module. Otherwise it
calls every hook's ``prepare`` and wraps, on the host and on the component:

- ``emit``: the emit runs with ``need_task_ids=True``; ``EmitInfo`` gets the
  destination tasks; the caller gets them only if it asked;
- a bolt's ``ack``/``fail`` (``BoltAckInfo``/``BoltFailInfo``, latency from
  the tuple's arrival) and ``process`` (``BoltExecuteInfo``, time in process);
- a spout's ``ack``/``fail`` (``SpoutAckInfo``/``SpoutFailInfo``): the latency
  is measured from the emit of that message id, first in first out per id
  (an id emitted many times, as Heron's WordSpout does, pairs its acks with
  its emits in order); at most `_MAX_TRACKED` emits are remembered.

Wrapping is by instance attribute: the host reads ``component.process`` per
batch and calls ``component.ack``/``fail`` itself, so the wrappers are seen
without the host knowing about hooks. A hook that raises is logged and
counted as user code (`TaskHost.user_exception`) and the task goes on;
``clean_up`` runs when the task stops.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from heronpy_lite.api.api_constants import TOPOLOGY_AUTO_TASK_HOOKS
from heronpy_lite.api.component.component_spec import resolve_class_path
from heronpy_lite.api.stream import Stream
from heronpy_lite.api.task_hook import (
    BoltAckInfo,
    BoltExecuteInfo,
    BoltFailInfo,
    EmitInfo,
    ITaskHook,
    SpoutAckInfo,
    SpoutFailInfo,
)

#: spout emits whose ack/fail latency is remembered; beyond, the oldest are forgotten
_MAX_TRACKED = 100_000


class TaskHooks:
    """The hooks of one task: ``context.task_hooks``, called by the wrappers."""

    def __init__(self, host: Any, context: Any, config: dict[str, Any]) -> None:
        self.host = host
        self.context = context
        self.task_id = context.get_task_id()
        self.hooks: list[Any] = context.task_hooks  # the context's list: one registry
        self.started = False
        self._emitted: dict[Any, deque[float]] = {}
        self._tracked = 0
        for path in config.get(TOPOLOGY_AUTO_TASK_HOOKS) or []:
            try:
                hook = resolve_class_path(path)()
            except Exception as exc:
                raise RuntimeError(
                    f"Error with loading task hook class: {path}, with error message: {exc}"
                ) from exc
            if not isinstance(hook, ITaskHook):
                raise RuntimeError("Auto-registered task hook not instance of ITaskHook")
            self.hooks.append(hook)

    # -- start and stop --

    def start(self, component: Any, config: dict[str, Any], is_spout: bool) -> None:
        """After ``initialize``: nothing if no hook is registered; else ``prepare``
        every hook and install the wrappers."""
        if not self.hooks:
            return
        self.started = True
        for hook in list(self.hooks):
            self._safely("prepare", hook.prepare, config, self.context)
        host = self.host
        emit = self._spout_emit(host.emit) if is_spout else self._bolt_emit(host.emit)
        self._replace(component, "emit", host.emit, emit)
        if is_spout:
            component.ack = self._spout_verdict(component.ack, "spout_ack", SpoutAckInfo)
            component.fail = self._spout_verdict(component.fail, "spout_fail", SpoutFailInfo)
            return
        self._replace(
            component, "ack", host.ack, self._bolt_verdict(host.ack, "bolt_ack", BoltAckInfo)
        )
        self._replace(
            component, "fail", host.fail, self._bolt_verdict(host.fail, "bolt_fail", BoltFailInfo)
        )
        component.process = self._process(component.process)

    def clean_up(self) -> None:
        """When the task stops: every hook's ``clean_up``."""
        if self.started:
            for hook in list(self.hooks):
                self._safely("clean_up", hook.clean_up)

    def _replace(self, component: Any, name: str, original: Any, wrapper: Any) -> None:
        """``name`` on the host, and on the component where it forwards to the host
        directly (the runner installs the host's method on a component that keeps
        the base class's)."""
        setattr(self.host, name, wrapper)
        if component.__dict__.get(name) is original:
            setattr(component, name, wrapper)

    # -- calling hooks --

    def _call(self, event: str, info: Any) -> None:
        for hook in self.hooks:
            self._safely(event, getattr(hook, event), info)

    def _safely(self, event: str, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self.host.user_exception(f"task hook {event}", exc)

    # -- wrappers --

    def _spout_emit(self, emit: Callable[..., Any]) -> Callable[..., Any]:
        task_id = self.task_id

        def hooked_emit(
            tup: Any,
            tup_id: Any = None,
            stream: str = Stream.DEFAULT_STREAM_ID,
            direct_task: int | None = None,
            need_task_ids: bool = False,
            **kwargs: Any,
        ) -> list[int] | None:
            tasks = emit(tup, tup_id, stream, direct_task, True, **kwargs)
            if tup_id is not None:
                self._remember(tup_id)
            self._call("emit", EmitInfo(tup, stream, task_id, tasks))
            return tasks if need_task_ids else None

        return hooked_emit

    def _bolt_emit(self, emit: Callable[..., Any]) -> Callable[..., Any]:
        task_id = self.task_id

        def hooked_emit(
            tup: Any,
            stream: str = Stream.DEFAULT_STREAM_ID,
            anchors: Any = None,
            direct_task: int | None = None,
            need_task_ids: bool = False,
            **kwargs: Any,
        ) -> list[int] | None:
            tasks = emit(tup, stream, anchors, direct_task, True, **kwargs)
            self._call("emit", EmitInfo(tup, stream, task_id, tasks))
            return tasks if need_task_ids else None

        return hooked_emit

    def _spout_verdict(
        self, verdict: Callable[[Any], Any], event: str, info: Callable[..., Any]
    ) -> Callable[[Any], None]:
        task_id = self.task_id

        def hooked(tup_id: Any) -> None:
            verdict(tup_id)
            self._call(event, info(tup_id, task_id, self._latency_ms(tup_id)))

        return hooked

    def _bolt_verdict(
        self, verdict: Callable[[Any], Any], event: str, info: Callable[..., Any]
    ) -> Callable[[Any], None]:
        task_id = self.task_id

        def hooked(tup: Any) -> None:
            verdict(tup)
            arrived = getattr(tup, "creation_time", None)
            latency = (time.time() - arrived) * 1000 if arrived else 0.0
            self._call(event, info(tup, task_id, latency))

        return hooked

    def _process(self, process: Callable[[Any], Any]) -> Callable[[Any], None]:
        task_id = self.task_id
        clock = time.perf_counter

        def hooked_process(tup: Any) -> None:
            began = clock()
            process(tup)
            self._call("bolt_execute", BoltExecuteInfo(tup, task_id, (clock() - began) * 1000))

        return hooked_process

    # -- spout latencies --

    @staticmethod
    def _key(tup_id: Any) -> Any:
        try:
            hash(tup_id)
        except TypeError:
            return ("unhashable", id(tup_id))
        return tup_id

    def _remember(self, tup_id: Any) -> None:
        if self._tracked >= _MAX_TRACKED:
            self._emitted.clear()  # bounded: latencies of what was forgotten read 0
            self._tracked = 0
        self._emitted.setdefault(self._key(tup_id), deque()).append(time.monotonic())
        self._tracked += 1

    def _latency_ms(self, tup_id: Any) -> float:
        key = self._key(tup_id)
        emitted = self._emitted.get(key)
        if not emitted:
            return 0.0
        began = emitted.popleft()
        self._tracked -= 1
        if not emitted:
            del self._emitted[key]
        return (time.monotonic() - began) * 1000
