"""The generic B x D look-ahead: shape, discount, ties, inherited values, concurrency."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from rafa_core.search.lookahead import LookaheadPlanner


@dataclass
class Line:
    """A toy task: states are paths of action names; values come from a table."""

    values: dict[tuple[str, ...], float | None]
    actions: dict[tuple[str, ...], list[str]]
    terminal: set[tuple[str, ...]] = field(default_factory=set)
    latency: float = 0.0
    calls: dict[str, int] = field(default_factory=lambda: {"propose": 0, "predict": 0, "evaluate": 0})
    in_flight: int = 0
    max_in_flight: int = 0

    async def _call(self, kind: str) -> None:
        self.calls[kind] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(self.latency)
        self.in_flight -= 1

    async def propose(self, state):
        await self._call("propose")
        return self.actions.get(state, ["x", "y", "z"])

    async def predict(self, state, action):
        await self._call("predict")
        return state + (action,)

    async def evaluate(self, state):
        await self._call("evaluate")
        return self.values.get(state, None)

    def is_terminal(self, state):
        return state in self.terminal


def plan(model: Line, **kw):
    return asyncio.run(LookaheadPlanner(**kw).plan(model, ()))


def test_tree_shape_and_call_count():
    model = Line(values={(): 0.0}, actions={})
    result = plan(model, breadth=2, depth=2)
    tree = result.tree
    assert [c["action"] for c in tree["children"]] == ["x", "y"]  # the first B proposals
    assert all(len(c["children"]) == 2 for c in tree["children"])
    assert all(not g["children"] for c in tree["children"] for g in c["children"])
    # 3 proposals (root + 2), 6 predictions, 7 critic calls.
    assert model.calls == {"propose": 3, "predict": 6, "evaluate": 7}
    assert result.actions == ["x", "x"]  # all ties: the earliest path


def test_progress_sooner_wins_through_the_discount():
    values = {(): 0.0, ("y",): 0.5, ("x", "y"): 0.5}
    result = plan(Line(values=values, actions={}), breadth=2, depth=2, discount=0.9)
    assert result.actions[0] == "y"  # 0.9 * 0.5 beats 0.81 * 0.5
    assert abs(result.value - 0.45) < 1e-9


def test_a_later_bigger_value_can_win():
    values = {(): 0.0, ("x",): 0.3, ("y", "x"): 1.0}
    result = plan(Line(values=values, actions={}, terminal={("y", "x")}), breadth=2, depth=2, discount=0.9)
    assert result.actions == ["y", "x"] and abs(result.value - 0.81) < 1e-9


def test_none_keeps_the_most_recent_value_on_the_path():
    # ("x",) says 0.6 then nothing more: its leaves keep 0.9 * 0.6 = 0.54 (not 0.81 * 0.6).
    values = {(): 0.2, ("x",): 0.6, ("y",): None, ("y", "x"): 0.65}
    result = plan(Line(values=values, actions={}), breadth=2, depth=2, discount=0.9)
    assert result.actions[0] == "x" and abs(result.value - 0.54) < 1e-9
    leaf_scores = [g["score"] for g in result.tree["children"][0]["children"]]
    assert leaf_scores == [0.54, 0.54]


def test_terminal_nodes_are_not_expanded():
    model = Line(values={(): 0.0, ("x",): 1.0}, actions={}, terminal={("x",)})
    result = plan(model, breadth=2, depth=2)
    assert result.actions == ["x"] and result.tree["children"][0]["children"] == []
    assert model.calls["predict"] == 4  # 2 at the root, 2 under "y" only


def test_fewer_proposals_than_breadth():
    model = Line(values={(): 0.0}, actions={(): ["only"], ("only",): []})
    result = plan(model, breadth=2, depth=2)
    assert result.actions == ["only"] and len(result.tree["children"]) == 1


def test_independent_calls_of_a_level_run_concurrently():
    model = Line(values={(): 0.0}, actions={}, latency=0.05)
    plan(model, breadth=2, depth=2)
    # Level 2: 4 predictions at once; then 4 critics at once.
    assert model.max_in_flight >= 4
