"""Round-robin packing of tasks into containers."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from heronpy_lite.errors import TopologyError
from heronpy_lite.scheduler.packing import pack_round_robin
from heronpy_lite.wire.plan import PackingPlan, TaskPlacement

COMPONENTS = [("words", 2), ("split", 3), ("count", 4)]


def test_task_ids_are_one_to_n_in_declaration_order():
    plan = pack_round_robin("wc", COMPONENTS, 1)
    assert [t.task_id for t in plan.tasks] == list(range(1, 10))
    assert [t.component for t in plan.tasks] == ["words"] * 2 + ["split"] * 3 + ["count"] * 4
    assert plan.component_tasks("words") == [1, 2]
    assert plan.component_tasks("split") == [3, 4, 5]
    assert plan.component_tasks("count") == [6, 7, 8, 9]


def test_declaration_order_is_kept_even_when_not_alphabetical():
    plan = pack_round_robin("t", [("zeta", 1), ("alpha", 2), ("mid", 1)], 1)
    assert [(t.task_id, t.component) for t in plan.tasks] == [
        (1, "zeta"),
        (2, "alpha"),
        (3, "alpha"),
        (4, "mid"),
    ]


def test_component_indices_count_from_zero_within_each_component():
    plan = pack_round_robin("wc", COMPONENTS, 2)
    assert [(t.component, t.component_index) for t in plan.tasks] == [
        ("words", 0),
        ("words", 1),
        ("split", 0),
        ("split", 1),
        ("split", 2),
        ("count", 0),
        ("count", 1),
        ("count", 2),
        ("count", 3),
    ]


def test_round_robin_across_containers():
    plan = pack_round_robin("wc", COMPONENTS, 3)
    assert [t.container for t in plan.tasks] == [1, 2, 3, 1, 2, 3, 1, 2, 3]
    assert [t.task_id for t in plan.tasks_in(1)] == [1, 4, 7]
    assert [t.task_id for t in plan.tasks_in(2)] == [2, 5, 8]
    assert [t.task_id for t in plan.tasks_in(3)] == [3, 6, 9]


def test_tasks_of_one_component_spread_over_containers():
    plan = pack_round_robin("t", [("only", 4)], 2)
    assert [t.container for t in plan.tasks] == [1, 2, 1, 2]


@pytest.mark.parametrize("n", [1, 2, 4, 9])
def test_containers_are_numbered_one_to_n_and_balanced(n):
    plan = pack_round_robin("wc", COMPONENTS, n)
    assert plan.num_containers == n
    counts = Counter(t.container for t in plan.tasks)
    assert set(counts) == set(range(1, n + 1))
    assert max(counts.values()) - min(counts.values()) <= 1
    assert plan.tasks_in(0) == []  # container 0 is the tmaster's


def test_more_containers_than_tasks_leaves_the_extra_containers_empty():
    plan = pack_round_robin("t", [("a", 1), ("b", 1)], 4)
    assert plan.num_containers == 4
    assert [t.container for t in plan.tasks] == [1, 2]
    assert plan.tasks_in(3) == []
    assert plan.tasks_in(4) == []


def test_plan_carries_the_topology_name_and_round_trips():
    plan = pack_round_robin("wc", COMPONENTS, 2)
    assert plan.topology == "wc"
    assert plan.tasks[0] == TaskPlacement(
        task_id=1, component="words", component_index=0, container=1
    )
    assert PackingPlan.from_dict(plan.to_dict()) == plan


def test_components_may_be_any_iterable():
    plan = pack_round_robin("t", iter([("a", 2)]), 1)
    assert [t.task_id for t in plan.tasks] == [1, 2]


def test_no_components_gives_an_empty_plan():
    plan = pack_round_robin("t", [], 2)
    assert plan.tasks == ()
    assert plan.num_containers == 2


@pytest.mark.parametrize("n", [0, -1, -10])
def test_invalid_number_of_containers_is_a_topology_error(n):
    with pytest.raises(TopologyError, match=re.escape(f"topology.stmgrs must be >= 1, got {n}")):
        pack_round_robin("wc", COMPONENTS, n)
