"""Keyed state moves with its key groups when a component's parallelism changes
(instance/stateful.py: sources; docs/decisions/0047-key-groups.md): every key a
task restores is one fields grouping now sends to it, no key is lost or
restored twice, and state that is not keyed stays with its index."""

from __future__ import annotations

from pathlib import Path

from heronpy_lite.api.state.state import HashMapState
from heronpy_lite.api.stream import Grouping
from heronpy_lite.checkpoint.store import CheckpointStore, StateWriter
from heronpy_lite.instance.routing import FIELDS, choose_tasks, route_spec
from heronpy_lite.instance.stateful import Sources, TaskState, sources, state_key_group
from heronpy_lite.keygroups import group_owner

WORDS = [f"w{i}" for i in range(500)]


def owner_now(word: str, tasks: list[int]) -> int:
    """The task fields grouping sends ``word`` to (what the emitter computes)."""
    route = route_spec("count", Grouping.fields("word"), tasks, ["word"])
    assert route.kind == FIELDS
    (task,) = choose_tasks(route, [word], None)
    return task


def write(store: CheckpointStore, task: int, checkpoint: int, state: dict[str, int]) -> None:
    kind, payload = StateWriter(10).payload(HashMapState(state))
    store.write(task, checkpoint, kind, payload)


def checkpoint_counts(store: CheckpointStore, tasks: list[int], checkpoint: int) -> None:
    """Each task of ``tasks`` stored the counts of the words routed to it."""
    for task in tasks:
        mine = {w: i for i, w in enumerate(WORDS) if owner_now(w, tasks) == task}
        write(store, task, checkpoint, mine)


def restored(
    store: CheckpointStore, then: list[int], now: list[int], key_fields: int
) -> dict[int, dict]:
    out = {}
    for index, task in enumerate(now):
        where = sources(task, "count", index, now, {"count": then}, key_fields, 128)
        state, error = TaskState(store, task, 10).load(7, where)
        assert error == ""
        out[task] = dict(state.items())
    return out


def test_scaling_a_keyed_bolt_up_gives_each_task_exactly_the_keys_it_now_receives(
    tmp_path: Path,
) -> None:
    store = CheckpointStore(tmp_path, "T")
    checkpoint_counts(store, [2, 3], 7)
    states = restored(store, [2, 3], [2, 3, 4, 5], key_fields=1)
    for task, state in states.items():
        assert state == {w: i for i, w in enumerate(WORDS) if owner_now(w, [2, 3, 4, 5]) == task}
    # every key once, with its value
    merged = [k for s in states.values() for k in s]
    assert sorted(merged) == sorted(WORDS)
    assert all(len(s) > 50 for s in states.values())  # the keys spread over all four


def test_scaling_a_keyed_bolt_down_to_one_task_gathers_every_key(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "T")
    checkpoint_counts(store, [2, 3, 4, 5], 7)
    assert restored(store, [2, 3, 4, 5], [2], key_fields=1) == {
        2: {w: i for i, w in enumerate(WORDS)}
    }


def test_state_that_is_not_keyed_stays_with_its_index(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "T")
    write(store, 4, 7, {"offset": 40})
    write(store, 5, 7, {"offset": 50})
    # the component's tasks were renumbered 4, 5 -> 6, 7, 8 (a rescale before it)
    states = restored(store, [4, 5], [6, 7, 8], key_fields=0)
    assert states == {6: {"offset": 40}, 7: {"offset": 50}, 8: {}}


def test_the_same_layout_reads_the_task_s_own_files() -> None:
    assert sources(3, "count", 1, [2, 3], {"count": [2, 3]}, 1, 128) == Sources((3,))
    assert sources(3, "count", 1, [2, 3], None, 1, 128) == Sources((3,))
    # a component the checkpoint did not have starts empty
    assert sources(3, "new", 0, [3], {"count": [2]}, 0, 128) == Sources(())


def test_a_tuple_key_of_one_grouped_field_is_hashed_as_that_one_value() -> None:
    """A single-field grouping on a value that is a list: its state key is the
    tuple msgpack makes it, and it goes where routing sends the list."""
    route = route_spec("count", Grouping.fields("pair"), list(range(2, 10)), ["pair"])
    for a in range(50):
        value = [f"k{a}", a]
        (task,) = choose_tasks(route, [value], None)
        group = state_key_group(tuple(value), 128, 1)
        assert route.tasks[group_owner(group, 128, 8)] == task
