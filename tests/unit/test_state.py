"""HashMapState: heronpy's interface, the mapping heronpy's window bolts use, and
the change record a checkpoint reads."""

from __future__ import annotations

import pytest

from heronpy_lite.api.state.state import HashMapState, State
from heronpy_lite.api.state.stateful_component import StatefulComponent


def test_heronpy_interface() -> None:
    state = HashMapState()
    assert isinstance(state, State)
    state.put("a", 1)
    state.put("b", [1, 2])
    assert state.get("a") == 1
    assert state.get("missing") is None
    # heronpy's HashMapState.enumerate is enumerate() over the keys
    assert list(state.enumerate()) == [(0, "a"), (1, "b")]
    assert str(state) == "{'a': 1, 'b': [1, 2]}"
    state.clear()
    assert len(state) == 0


def test_mapping_protocol() -> None:
    state = HashMapState({"tuples": []})
    assert "tuples" in state
    state["tuples"] = [1]
    assert state["tuples"] == [1]
    assert dict(state.items()) == {"tuples": [1]}
    del state["tuples"]
    assert "tuples" not in state


def test_changes_since_last_take() -> None:
    state = HashMapState({"kept": 0})
    assert state.take_changes() == (False, {}, [])
    state["a"] = 1
    state.put("b", 2)
    state["b"] = 3
    del state["kept"]
    cleared, updated, deleted = state.take_changes()
    assert (cleared, updated, deleted) == (False, {"a": 1, "b": 3}, ["kept"])
    assert state.take_changes() == (False, {}, [])
    state.clear()
    state["c"] = 4
    assert state.take_changes() == (True, {"c": 4}, [])
    assert state.snapshot() == {"c": 4}


def test_stateful_component_is_a_mixin() -> None:
    class Counter(StatefulComponent):
        def init_state(self, stateful_state: object) -> None:
            self.state = stateful_state

        def pre_save(self, checkpoint_id: object) -> None:
            self.saved = checkpoint_id

    c = Counter()
    c.init_state(HashMapState())
    c.pre_save(3)
    assert c.saved == 3


def test_effectively_once_needs_a_stateful_component() -> None:
    from heronpy_lite.api import Bolt, Spout, TopologyBuilder
    from heronpy_lite.api.topology import check_effectively_once, definition_of
    from heronpy_lite.errors import TopologyError

    class Words(Spout):
        outputs = ["word"]

    class StatefulWords(Words, StatefulComponent):
        pass

    def topology(spout: type) -> TopologyBuilder:
        builder = TopologyBuilder("T")
        words = builder.add_spout("words", spout, par=1)
        builder.add_bolt("relay", Bolt, par=1, inputs=[words])
        return builder

    check_effectively_once(definition_of(topology(StatefulWords)))
    with pytest.raises(TopologyError, match="no component is a StatefulComponent"):
        check_effectively_once(definition_of(topology(Words)))
