"""The metrics every process reports, by Prometheus name: the vocabulary of
`MetricsSnapshot` samples, shared by the producers (instances, stream
managers) and the metrics manager that serves them.

Every sample gets the labels ``topology`` and ``container`` from the metrics
manager; the producer adds the labels listed here. Never a label called
``instance`` (Prometheus uses it for the scrape target).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MetricDef:
    name: str
    kind: str  # counter | gauge | summary
    labels: tuple[str, ...]
    help: str
    heron: str  # Heron's own metric name, for the README's mapping table


TASK = ("component", "instance_id")

EMITTED = "heron_emitted_total"
EXECUTED = "heron_executed_total"
ACKED = "heron_acked_total"
FAILED = "heron_failed_total"
TIMED_OUT = "heron_timed_out_total"
NEXT_TUPLE = "heron_next_tuple_total"
EXECUTE_LATENCY = "heron_execute_latency_seconds"
PROCESS_LATENCY = "heron_process_latency_seconds"
COMPLETE_LATENCY = "heron_complete_latency_seconds"
EXCEPTIONS = "heron_exceptions_total"
RESTARTS = "heron_restarts_total"
DROPPED = "heron_dropped_tuples_total"
SPOUT_THROTTLED = "heron_spout_throttled_seconds_total"
PENDING = "heron_pending_trees"
OUT_QUEUE = "heron_instance_out_queue_bytes"
OUT_QUEUE_CAPACITY = "heron_instance_out_queue_capacity_bytes"
STMGR_TUPLES = "heron_stmgr_tuples_total"
STMGR_FRAMES = "heron_stmgr_frames_total"
STMGR_BYTES = "heron_stmgr_bytes_total"
STMGR_QUEUE = "heron_stmgr_queue_bytes"
STMGR_QUEUE_CAPACITY = "heron_stmgr_queue_capacity_bytes"
BACKPRESSURE = "heron_backpressure_seconds_total"
BACKPRESSURE_CULPRIT = "heron_backpressure_culprit_seconds_total"
BACKPRESSURE_ACTIVE = "heron_backpressure_culprit"
XOR_TREES = "heron_stmgr_xor_trees"
SPOUT_EXPIRED = "heron_spout_expired_total"
BUSY = "heron_busy_seconds_total"
BACKPRESSURED = "heron_backpressured_seconds_total"
IDLE = "heron_idle_seconds_total"
BUSY_MS = "heron_busy_ms_per_second"
BACKPRESSURED_MS = "heron_backpressured_ms_per_second"
IDLE_MS = "heron_idle_ms_per_second"
CHECKPOINTS_TAKEN = "heron_checkpoints_taken_total"
CHECKPOINT_STORED_BYTES = "heron_checkpoint_stored_bytes_total"
CHECKPOINT_SAVE_SECONDS = "heron_checkpoint_save_seconds"
RESTORES = "heron_restores_total"
ALIGNMENT_SECONDS = "heron_stmgr_alignment_seconds_total"
ALIGNMENT_LAST_SECONDS = "heron_stmgr_alignment_last_seconds"
ALIGNMENT_HELD = "heron_stmgr_alignment_held_bytes"
CHECKPOINTS_DECLINED = "heron_stmgr_checkpoints_declined_total"
OLD_EPOCH_DROPPED = "heron_stmgr_old_epoch_frames_dropped_total"
EPOCH = "heron_stmgr_epoch"
CHECKPOINT_LATEST = "heron_checkpoint_latest"
CHECKPOINT_AGE = "heron_checkpoint_age_seconds"
CHECKPOINT_DURATION = "heron_checkpoint_duration_seconds"
CHECKPOINT_SIZE = "heron_checkpoint_size_bytes"
CHECKPOINTS_FAILED = "heron_checkpoints_failed_total"
HUNG = "heron_instance_hung_seconds"
HANGS = "heron_instance_hangs_total"
RSS = "heron_instance_rss_bytes"
METRICSMGR_DROPPED = "heron_metricsmgr_dropped_snapshots_total"
USER_PREFIX = "heron_user_"

DEFINITIONS = (
    MetricDef(EMITTED, "counter", (*TASK, "stream"), "tuples emitted", "__emit-count"),
    MetricDef(
        EXECUTED,
        "counter",
        (*TASK, "source_component", "stream"),
        "tuples processed by a bolt, by input stream",
        "__execute-count",
    ),
    MetricDef(
        ACKED, "counter", TASK, "spout: trees acked; bolt: input tuples acked", "__ack-count"
    ),
    MetricDef(
        FAILED, "counter", TASK, "spout: trees failed; bolt: input tuples failed", "__fail-count"
    ),
    MetricDef(
        TIMED_OUT,
        "counter",
        TASK,
        "spout trees that timed out (counted by the stream manager that tracks them)",
        "__timeout-count",
    ),
    MetricDef(
        SPOUT_EXPIRED,
        "counter",
        TASK,
        "spout trees the instance failed itself after 2 x timeout + 1 s, as no stream "
        "manager answered for them (it had died)",
        "",
    ),
    MetricDef(NEXT_TUPLE, "counter", TASK, "calls of next_tuple", "__next-tuple-count"),
    MetricDef(
        EXECUTE_LATENCY, "summary", TASK, "time in process(), per tuple", "__execute-latency"
    ),
    MetricDef(
        PROCESS_LATENCY,
        "summary",
        TASK,
        "tuple arrival to its ack, timed on one ack in 16",
        "__process-latency",
    ),
    MetricDef(COMPLETE_LATENCY, "summary", TASK, "spout emit to tree acked", "__complete-latency"),
    MetricDef(
        EXCEPTIONS, "counter", (*TASK, "type"), "exceptions raised by user code", "__exception"
    ),
    MetricDef(RESTARTS, "counter", TASK, "times the executor restarted this task", ""),
    MetricDef(
        DROPPED,
        "counter",
        TASK,
        "emits refused: values not msgpack-serializable, or a tuple too large for a frame",
        "",
    ),
    MetricDef(
        SPOUT_THROTTLED, "counter", TASK, "seconds a spout was throttled by backpressure", ""
    ),
    MetricDef(PENDING, "gauge", TASK, "spout trees emitted and not yet acked or failed", ""),
    MetricDef(OUT_QUEUE, "gauge", TASK, "bytes written by the task and not yet sent", ""),
    MetricDef(OUT_QUEUE_CAPACITY, "gauge", TASK, "above this the task stops running user code", ""),
    MetricDef(
        STMGR_TUPLES,
        "counter",
        ("destination",),
        "tuples routed by the stream manager, by destination",
        "__tuples-to-worker",
    ),
    MetricDef(STMGR_FRAMES, "counter", ("destination",), "batches routed by destination", ""),
    MetricDef(STMGR_BYTES, "counter", ("destination",), "bytes routed by destination", ""),
    MetricDef(STMGR_QUEUE, "gauge", ("destination",), "bytes waiting for a destination", ""),
    MetricDef(
        STMGR_QUEUE_CAPACITY,
        "gauge",
        ("destination",),
        "a source stops being read above this (hard limit)",
        "",
    ),
    MetricDef(
        BACKPRESSURE,
        "counter",
        ("component",),
        "seconds the component's instances here were paused by backpressure",
        "__time_spent_back_pressure_by_compid",
    ),
    MetricDef(
        BACKPRESSURE_CULPRIT,
        "counter",
        ("component",),
        "seconds the component's instances here were too slow (the culprit)",
        "__server/__time_spent_back_pressure_initiated",
    ),
    MetricDef(
        BACKPRESSURE_ACTIVE,
        "gauge",
        ("component",),
        "1 while the component congests a stream manager",
        "",
    ),
    MetricDef(XOR_TREES, "gauge", (), "tuple trees tracked for this container's spouts", ""),
    MetricDef(
        BUSY,
        "counter",
        TASK,
        "seconds the task was busy: running user code and the engine's work for it",
        "",
    ),
    MetricDef(
        BACKPRESSURED,
        "counter",
        TASK,
        "seconds the task waited for room downstream: its output above the high watermark, "
        "throttled by its stream manager, or at max spout pending",
        "",
    ),
    MetricDef(
        IDLE,
        "counter",
        TASK,
        "seconds the task had nothing to do: no input, next_tuple emitted nothing, deactivated",
        "",
    ),
    MetricDef(BUSY_MS, "gauge", TASK, "busy ms per second over the last export interval", ""),
    MetricDef(
        BACKPRESSURED_MS,
        "gauge",
        TASK,
        "backpressured ms per second over the last export interval",
        "",
    ),
    MetricDef(IDLE_MS, "gauge", TASK, "idle ms per second over the last export interval", ""),
    # EFFECTIVELY_ONCE (docs/decisions/0029-effectively-once.md)
    MetricDef(CHECKPOINTS_TAKEN, "counter", TASK, "checkpoints whose state the task took", ""),
    MetricDef(
        CHECKPOINT_STORED_BYTES,
        "counter",
        TASK,
        "bytes of state the task wrote to the checkpoint store",
        "",
    ),
    MetricDef(
        CHECKPOINT_SAVE_SECONDS,
        "gauge",
        TASK,
        "the last checkpoint's time from taking the state to its file written",
        "",
    ),
    MetricDef(RESTORES, "counter", TASK, "times the task rolled back to a checkpoint", ""),
    MetricDef(
        ALIGNMENT_SECONDS,
        "counter",
        (),
        "seconds local tasks spent with inputs held back, waiting for the other inputs' markers",
        "",
    ),
    MetricDef(
        ALIGNMENT_LAST_SECONDS, "gauge", (), "the last alignment's time, first to last marker", ""
    ),
    MetricDef(ALIGNMENT_HELD, "gauge", (), "bytes held back by alignment right now", ""),
    MetricDef(
        CHECKPOINTS_DECLINED,
        "counter",
        (),
        "checkpoints this stream manager declined: alignment past "
        "heron.stateful.alignment.buffer.bytes, or a spout not connected",
        "",
    ),
    MetricDef(
        OLD_EPOCH_DROPPED,
        "counter",
        (),
        "frames dropped for belonging to an epoch before the last restore",
        "",
    ),
    MetricDef(EPOCH, "gauge", (), "the epoch: restores since the topology was submitted", ""),
    # the topology master's figures, as each stream manager last heard them
    MetricDef(CHECKPOINT_LATEST, "gauge", (), "the latest globally complete checkpoint", ""),
    MetricDef(CHECKPOINT_AGE, "gauge", (), "seconds since the latest checkpoint completed", ""),
    MetricDef(
        CHECKPOINT_DURATION,
        "gauge",
        (),
        "the latest complete checkpoint's time from start to the last state stored",
        "",
    ),
    MetricDef(CHECKPOINT_SIZE, "gauge", (), "bytes the latest checkpoint stored", ""),
    MetricDef(
        CHECKPOINTS_FAILED,
        "counter",
        (),
        "checkpoints abandoned (failed, declined, timed out) as of the latest complete one",
        "",
    ),
    MetricDef(
        HUNG,
        "gauge",
        (*TASK, "call"),
        "seconds the current call into user code has run, once past "
        "heron.instance.hang.timeout.secs (0: not hung)",
        "",
    ),
    MetricDef(HANGS, "counter", TASK, "calls into user code that ran past the hang timeout", ""),
    MetricDef(RSS, "gauge", TASK, "resident memory of the instance process", ""),
    MetricDef(
        METRICSMGR_DROPPED,
        "counter",
        ("reason",),
        "snapshots the metrics manager dropped on arrival, by reason",
        "",
    ),
)

BY_NAME = {d.name: d for d in DEFINITIONS}


def user_metric_name(name: str) -> str:
    """The Prometheus name of a user metric registered as ``name``."""
    cleaned = "".join(c if (c.isascii() and c.isalnum()) or c == "_" else "_" for c in name)
    return USER_PREFIX + cleaned.strip("_").lower()
