"""The generic tree-of-thought planner on a toy task model."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import pytest

from rafa_core.search.tot import ToTPlanner


@dataclass
class CountingModel:
    """States are digit strings; the value of a state is its digit sum; depth ends at 3 digits."""

    digits: tuple[int, ...] = (1, 5, 3)
    proposals: int = 0
    evaluations: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    async def propose(self, state: str) -> list[str]:
        self.proposals += 1
        return [str(d) for d in self.digits] + [str(self.digits[0])]  # one duplicate

    async def predict(self, state: str, action: str) -> str:
        return state + action

    async def evaluate(self, state: str) -> float:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.001)
        self.in_flight -= 1
        self.evaluations.append(state)
        return float(sum(int(c) for c in state))

    def is_terminal(self, state: str) -> bool:
        return len(state) >= 3


def test_greedy_breadth_one_follows_the_best_value():
    model = CountingModel()
    plan = asyncio.run(ToTPlanner(breadth=1, depth=5).plan(model, ""))
    assert plan.actions == ["5", "5", "5"] and plan.value == 15
    assert model.proposals == 3  # stops when the kept state is terminal
    assert len(plan.tree) == 3 and sum(c["selected"] for c in plan.tree[0]["candidates"]) == 1


def test_duplicate_candidates_are_valued_once():
    model = CountingModel()
    asyncio.run(ToTPlanner(breadth=1, depth=1).plan(model, ""))
    assert sorted(model.evaluations) == ["1", "3", "5"]


def test_breadth_two_keeps_two_and_expands_both():
    model = CountingModel()
    plan = asyncio.run(ToTPlanner(breadth=2, depth=2).plan(model, ""))
    assert model.proposals == 1 + 2
    assert plan.actions == ["5", "5"]
    assert sum(c["selected"] for c in plan.tree[1]["candidates"]) == 2


def test_candidates_are_valued_concurrently_or_one_by_one():
    concurrent, sequential = CountingModel(), CountingModel()
    a = asyncio.run(ToTPlanner(breadth=1, depth=3).plan(concurrent, ""))
    b = asyncio.run(ToTPlanner(breadth=1, depth=3, concurrent=False).plan(sequential, ""))
    assert a.actions == b.actions
    assert concurrent.max_in_flight == 3 and sequential.max_in_flight == 1


def test_sampled_selection_follows_the_values_without_replacement():
    picks = []
    for seed in range(200):
        plan = asyncio.run(ToTPlanner(breadth=1, depth=1, select="sample", rng=random.Random(seed)).plan(CountingModel(), ""))
        picks.append(plan.actions[0])
    share = picks.count("5") / len(picks)
    assert 0.45 < share < 0.75  # 5 / (1 + 5 + 3)
    plan = asyncio.run(ToTPlanner(breadth=3, depth=1, select="sample").plan(CountingModel(), ""))
    chosen = [c for c in plan.tree[0]["candidates"] if c["selected"]]
    assert len(chosen) == 3 and len({tuple(c["actions"]) for c in chosen}) == 3


def test_a_model_with_nothing_to_propose_gives_an_empty_plan():
    class Empty(CountingModel):
        async def propose(self, state):
            return []

    plan = asyncio.run(ToTPlanner().plan(Empty(), ""))
    assert plan.actions == [] and not plan


def test_unknown_selection_is_refused():
    with pytest.raises(ValueError):
        ToTPlanner(select="best")
