"""The checkpoint store: atomic files with checksums, full and delta chains, what a
restore reads, what pruning keeps; and the writer's choice of full or delta."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from heronpy_lite.api.state.state import HashMapState
from heronpy_lite.checkpoint.store import DELTA, FULL, CheckpointStore, StateWriter
from heronpy_lite.errors import CorruptCheckpoint, StateError


def save(store: CheckpointStore, writer: StateWriter, state: HashMapState, cp: int) -> str:
    kind, payload = writer.payload(state)
    store.write(7, cp, kind, payload)
    return kind


def test_a_chain_of_deltas_restores_exactly_the_state_at_each_checkpoint(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "T")
    writer = StateWriter(full_every=100)
    state = HashMapState()
    expected: dict[int, dict[object, object]] = {}
    for cp in range(1, 30):
        for i in range(100):  # a big state, a few keys changed each time
            state.setdefault(f"base{i}", 0)
        state[f"k{cp % 7}"] = cp
        state[("tuple", cp % 3)] = [cp, "x"]
        if cp % 5 == 0:
            state.pop(f"k{(cp + 1) % 7}", None)
        if cp == 20:
            state.clear()
            state["after"] = 1
        kind = save(store, writer, state, cp)
        if cp < 20:
            assert kind == (FULL if cp == 1 else DELTA)
        elif cp == 20:
            assert kind == FULL  # cleared: most of it changed
        expected[cp] = dict(state)
    for cp, want in expected.items():
        assert store.load(7, cp) == want
    assert isinstance(next(iter(k for k in store.load(7, 3) if isinstance(k, tuple))), tuple)


def test_a_list_changed_in_place_is_stored_at_the_next_checkpoint(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "T")
    writer = StateWriter(full_every=100)
    state = HashMapState({f"n{i}": i for i in range(50)})
    state["tuples"] = []
    save(store, writer, state, 1)
    state["tuples"].append([1, 2])  # no assignment: heronpy's window bolts do this
    assert save(store, writer, state, 2) == DELTA
    assert store.load(7, 2)["tuples"] == [[1, 2]]


def test_the_writer_writes_full_files_on_its_schedule_and_when_most_changed(
    tmp_path: Path,
) -> None:
    store = CheckpointStore(tmp_path, "T")
    writer = StateWriter(full_every=3)
    state = HashMapState({f"n{i}": i for i in range(10)})
    kinds = []
    for cp in range(1, 8):
        state["n0"] = cp
        kinds.append(save(store, writer, state, cp))
    assert kinds == [FULL, DELTA, DELTA, FULL, DELTA, DELTA, FULL]
    for i in range(10):
        state[f"n{i}"] = -i  # everything changed: a delta would save nothing
    assert save(store, writer, state, 8) == FULL
    writer.restarted()
    assert save(store, writer, state, 9) == FULL


def test_a_value_msgpack_refuses_names_its_key(tmp_path: Path) -> None:
    writer = StateWriter()
    state = HashMapState({"fine": 1, "bad": {1, 2}})
    with pytest.raises(StateError, match="state key 'bad'"):
        writer.payload(state)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "delete"])
def test_a_damaged_file_is_detected_and_named(tmp_path: Path, damage: str) -> None:
    store = CheckpointStore(tmp_path, "T")
    writer = StateWriter(full_every=100)
    state = HashMapState({f"n{i}": i for i in range(10)})
    save(store, writer, state, 1)
    state["n0"] = 2
    assert save(store, writer, state, 2) == DELTA
    (path,) = [f.path for f in store.files(7) if f.checkpoint == 1]
    data = path.read_bytes()
    if damage == "flip":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    else:
        path.unlink()
    with pytest.raises(CorruptCheckpoint):
        store.load(7, 2)  # the delta of 2 needs the full file of 1


def test_pruning_keeps_every_file_the_kept_checkpoints_need(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "T")
    writer = StateWriter(full_every=4)
    state = HashMapState({f"n{i}": i for i in range(10)})
    for cp in range(1, 11):  # fulls at 1, 5, 9
        state["n0"] = cp
        save(store, writer, state, cp)
    assert store.prune(7, [7, 8, 10]) == 4  # 1..4: the chain of 7 starts at the full 5
    assert [f.checkpoint for f in store.files(7)] == [5, 6, 7, 8, 9, 10]
    assert store.load(7, 7)["n0"] == 7 and store.load(7, 10)["n0"] == 10


def test_a_write_is_atomic_leftover_temporaries_are_ignored(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "T")
    store.write(7, 1, FULL, msgpack.packb({"items": b"\x90"}))
    (store.task_dir(7) / ".tmp-crashed").write_bytes(b"half a file")
    assert [f.checkpoint for f in store.files(7)] == [1]
    assert store.load(7, 1) == {}
    with pytest.raises(CorruptCheckpoint, match="no state file for checkpoint 2"):
        store.load(7, 2)
    store.drop()
    assert not store.dir.exists()
