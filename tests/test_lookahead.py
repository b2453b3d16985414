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


def test_as_the_original_depth_one_and_leaf_values_both_count_09():
    # The original discounts a value given at depth d by 0.9 ** min(d, D - 1): with D = 2 the
    # root x1, depth 1 and the leaves x0.9. Progress at depth 1 and at depth 2 tie, so the
    # earlier path wins; the root's own value is not discounted.
    values = {(): 0.0, ("y",): 0.5, ("x", "y"): 0.5}
    result = plan(Line(values=values, actions={}), breadth=2, depth=2, discount=0.9)
    assert result.actions == ["x", "y"] and abs(result.value - 0.45) < 1e-9
    leaves = [g["score"] for c in result.tree["children"] for g in c["children"]]
    assert leaves == [0.0, 0.45, 0.45, 0.45]
    root_only = plan(Line(values={(): 0.5}, actions={}), breadth=2, depth=2)
    assert abs(root_only.value - 0.5) < 1e-9  # nothing new on the path: the root's value, undiscounted
    deep = plan(Line(values={(): 0.0, ("x", "x"): 1.0}, actions={}), breadth=2, depth=3)
    assert abs(deep.value - 0.81) < 1e-9  # depth 2 of 3: 0.9 ** 2


def test_progress_sooner_wins_through_the_deep_discount():
    values = {(): 0.0, ("y",): 0.5, ("x", "y"): 0.5}
    result = plan(Line(values=values, actions={}), breadth=2, depth=2, discount=0.9, deep_discount=True)
    assert result.actions[0] == "y"  # 0.9 * 0.5 beats 0.81 * 0.5
    assert abs(result.value - 0.45) < 1e-9


def test_a_later_bigger_value_can_win():
    values = {(): 0.0, ("x",): 0.3, ("y", "x"): 1.0}
    result = plan(Line(values=values, actions={}, terminal={("y", "x")}), breadth=2, depth=2, discount=0.9,
                  deep_discount=True)
    assert result.actions == ["y", "x"] and abs(result.value - 0.81) < 1e-9
    faithful = plan(Line(values=values, actions={}), breadth=2, depth=2, discount=0.9)
    assert faithful.actions == ["y", "x"] and abs(faithful.value - 0.9) < 1e-9


def test_none_keeps_the_most_recent_value_on_the_path():
    # ("x",) says 0.6 then nothing more: its leaves keep 0.9 * 0.6 = 0.54 (not 0.81 * 0.6).
    values = {(): 0.2, ("x",): 0.6, ("y",): None, ("y", "x"): 0.65}
    result = plan(Line(values=values, actions={}), breadth=2, depth=2, discount=0.9, deep_discount=True)
    assert result.actions[0] == "x" and abs(result.value - 0.54) < 1e-9
    leaf_scores = [g["score"] for g in result.tree["children"][0]["children"]]
    assert leaf_scores == [0.54, 0.54]
    # As the original: the leaf under "y" that says 0.65 (x0.9 = 0.585) beats 0.54.
    faithful = plan(Line(values=values, actions={}), breadth=2, depth=2, discount=0.9)
    assert faithful.actions == ["y", "x"] and abs(faithful.value - 0.585) < 1e-9


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


@dataclass
class MemoLine(Line):
    """Line with a per-episode memo of its requests (like ALFWorld's Journal) and a
    ``prefetch`` hook: what the planner prefetches is started, and counted, once."""

    memo: dict[tuple, asyncio.Future] = field(default_factory=dict)
    prefetched: list[tuple] = field(default_factory=list)
    asked: list[tuple] = field(default_factory=list)

    def _once(self, key: tuple, make):
        if key not in self.memo:
            self.memo[key] = asyncio.ensure_future(make())
        return self.memo[key]

    async def propose(self, state):
        self.asked.append(("propose", state))
        return await self._once(("propose", state), lambda: Line.propose(self, state))

    async def predict(self, state, action):
        return await self._once(("predict", state, action), lambda: Line.predict(self, state, action))

    async def evaluate(self, state):
        return await self._once(("evaluate", state), lambda: Line.evaluate(self, state))

    def prefetch(self, state):
        if ("propose", state) not in self.memo:
            self.prefetched.append(("propose", state))
        self._once(("propose", state), lambda: Line.propose(self, state))


def two_plans(model: MemoLine, **kw):
    """Plan, act on the first action (the world model's prediction holds), plan again."""

    async def run():
        planner = LookaheadPlanner(breadth=2, depth=2, **kw)
        first = await planner.plan(model, ())
        asked_before = set(model.asked)
        second = await planner.plan(model, (first.actions[0],))
        new_proposals = {k for k in model.asked if k not in asked_before}
        pending = [f for f in model.memo.values() if not f.done()]
        for f in pending:
            f.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return first, second, new_proposals

    return asyncio.run(run())


def test_prefetch_starts_exactly_the_next_plans_new_proposals_and_nothing_more():
    values = {(): 0.0, ("y",): 0.5}
    with_prefetch, without = MemoLine(values=values, actions={}), MemoLine(values=values, actions={})
    first, second, new_proposals = two_plans(with_prefetch)
    assert first.actions[0] == "y"
    # The leaves under the chosen child, in proposal order; the next plan expands them.
    assert with_prefetch.prefetched[:2] == [("propose", ("y", "x")), ("propose", ("y", "y"))]
    # The second plan's own prefetch (for a third plan) is the only other one.
    first_batch = set(with_prefetch.prefetched[:2])
    assert first_batch <= new_proposals
    assert {k for k in new_proposals if len(k[1]) == 2} == first_batch
    # No extra calls: the same requests as without prefetching, plus the 2 of the second
    # plan's prefetch (which a third plan would use).
    _, second_plain, _ = two_plans(without, prefetch=False)
    assert second.actions == second_plain.actions
    assert len(with_prefetch.prefetched) == 4 and without.prefetched == []
    assert sum(with_prefetch.calls.values()) - sum(without.calls.values()) == 2


def test_speculative_leaves_prefetch_every_leaf_and_the_unchosen_ones_are_wasted():
    values = {(): 0.0, ("y",): 0.5}
    model = MemoLine(values=values, actions={})
    first, _, new_proposals = two_plans(model, speculative_leaves=True, prefetch=True)
    leaves = {("propose", (a, b)) for a in "xy" for b in "xy"}
    assert leaves <= set(model.prefetched)
    wasted = {k for k in leaves if k not in new_proposals}
    assert wasted == {("propose", ("x", "x")), ("propose", ("x", "y"))}  # under the child not chosen
    assert first.actions[0] == "y"


def test_a_model_without_prefetch_is_planned_as_before():
    model = Line(values={(): 0.0}, actions={})
    plan(model, breadth=2, depth=2, prefetch=True, speculative_leaves=True)
    assert model.calls == {"propose": 3, "predict": 6, "evaluate": 7}


def test_with_depth_one_the_chosen_child_itself_is_prefetched_and_terminal_leaves_are_not():
    model = MemoLine(values={(): 0.0, ("y",): 0.5}, actions={})

    async def run():
        planner = LookaheadPlanner(breadth=2, depth=1)
        plan = await planner.plan(model, ())
        asked = set(model.asked)
        await planner.plan(model, (plan.actions[0],))
        return plan, {k for k in model.asked if k not in asked}

    plan_, new = asyncio.run(run())
    assert plan_.actions == ["y"] and model.prefetched[0] == ("propose", ("y",))
    assert ("propose", ("y",)) in new  # the next plan's root proposals: the prefetched request
    ended = MemoLine(values={(): 0.0, ("y",): 1.0}, actions={}, terminal={("y",)})
    asyncio.run(LookaheadPlanner(breadth=2, depth=1).plan(ended, ()))
    assert ended.prefetched == []  # the chosen child ends the task: nothing to expand next
