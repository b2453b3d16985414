"""Tree-of-thought search: breadth-limited generate -> evaluate -> select, ``depth`` levels.

Generic over :class:`~rafa_core.search.base.TaskModel`: at each level every kept partial
plan is expanded (``propose`` + ``predict``), the new candidates are valued (``evaluate``,
concurrently; or all at once by a model that offers ``evaluate_all``, e.g. a vote), and
``breadth`` of them are kept, greedily or sampled in proportion to their value. States
must be hashable: equal candidates are valued once.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Sequence, TypeVar

from .base import JointEvaluator, Plan, TaskModel

T = TypeVar("T")


@dataclass
class Node:
    state: Any
    actions: list[Any] = field(default_factory=list)
    value: float = 0.0


@dataclass
class ToTPlanner:
    breadth: int = 1
    depth: int = 4
    select: str = "greedy"  # or "sample"
    # False evaluates (and expands) candidates one after another, the original's pattern;
    # kept for the benchmark that measures what concurrency buys.
    concurrent: bool = True
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def __post_init__(self) -> None:
        if self.select not in ("greedy", "sample"):
            raise ValueError(f"select must be 'greedy' or 'sample', not {self.select!r}")

    async def plan(self, model: TaskModel, state: Any) -> Plan:
        frontier = [Node(state)]
        levels: list[dict[str, Any]] = []
        for depth in range(self.depth):
            open_nodes = [n for n in frontier if not model.is_terminal(n.state)]
            if not open_nodes:
                break
            children = await self._expand(model, open_nodes)
            # Finished partial plans compete with the new ones on their earlier value.
            finished = [n for n in frontier if model.is_terminal(n.state)]
            if not children:
                levels.append({"depth": depth, "candidates": []})
                frontier = finished or frontier
                break
            for child, value in zip(children, await self._evaluate(model, children)):
                child.value = value
            pool = children + finished
            chosen = self._select(pool)
            levels.append({"depth": depth, "candidates": self._describe(pool, chosen)})
            frontier = [pool[i] for i in chosen]
        best = max(frontier, key=lambda n: n.value)  # first of equals: selection order
        return Plan(actions=list(best.actions), value=best.value, tree=levels)

    # -- the three phases ------------------------------------------------------------------
    async def _expand(self, model: TaskModel, nodes: list[Node]) -> list[Node]:
        proposals = await self._all([model.propose(n.state) for n in nodes])
        pairs = [(node, action) for node, actions in zip(nodes, proposals) for action in actions]
        states = await self._all([model.predict(node.state, action) for node, action in pairs])
        children: dict[Any, Node] = {}
        for (node, action), child_state in zip(pairs, states):
            if child_state not in children:  # a duplicate would only be valued twice
                children[child_state] = Node(child_state, node.actions + [action])
        return list(children.values())

    async def _evaluate(self, model: TaskModel, nodes: list[Node]) -> list[float]:
        if isinstance(model, JointEvaluator):
            values = await model.evaluate_all([n.state for n in nodes])
            if values is not None:
                return [float(v) for v in values]
        return [float(v) for v in await self._all([model.evaluate(n.state) for n in nodes])]

    def _select(self, pool: list[Node]) -> list[int]:
        ids = list(range(len(pool)))
        if self.select == "greedy" or len(pool) <= self.breadth:
            return sorted(ids, key=lambda i: pool[i].value, reverse=True)[: self.breadth]
        chosen: list[int] = []
        weights = [max(pool[i].value, 0.0) for i in ids]
        for _ in range(self.breadth):  # proportional to value, without replacement
            if sum(weights) <= 0:
                weights = [0.0 if i in chosen else 1.0 for i in ids]
            pick = self.rng.choices(ids, weights=weights)[0]
            chosen.append(pick)
            weights[pick] = 0.0
        return chosen

    # -- helpers ---------------------------------------------------------------------------
    async def _all(self, coroutines: Sequence[Awaitable[T]]) -> list[T]:
        if self.concurrent:
            return list(await asyncio.gather(*coroutines))
        return [await c for c in coroutines]

    @staticmethod
    def _describe(pool: list[Node], chosen: list[int]) -> list[dict[str, Any]]:
        return [
            {
                "actions": node.actions,
                "value": node.value,
                "selected": i in chosen,
                "rank": chosen.index(i) if i in chosen else None,
            }
            for i, node in enumerate(pool)
        ]
