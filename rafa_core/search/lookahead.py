"""Fixed breadth x depth look-ahead with a critic and a discount (RAFA's ALFWorld planner).

From the root, the model proposes actions (the first ``breadth`` are kept), predicts the
state after each, and the critic scores every node. A node is expanded until ``depth``
actions lie on its path or the model calls it terminal. A critic may decline to give a
new value (``evaluate`` returns None: "no change"); then the node keeps the most recent
value on its path. A leaf's value is that most recent value discounted by the depth at
which it was given. As the original code does (``alfworld_trial_wv.py``), the exponent stops
at ``depth - 1``: with D = 2 the root's value counts x1, a depth-1 or a leaf critic x0.9,
so progress at depth 1 and at depth 2 tie. ``deep_discount`` (an improvement, off by
default) uses ``discount ** depth`` all the way down, so progress sooner is worth more.
The model's ``is_terminal`` ends a branch (ALFWorld's critic only does so when asked to).
The plan is the path to the best leaf (ties: the earlier-proposed path).

The independent calls run concurrently: a node's critic and proposer together, then the
world-model predictions of all its children, then each child's subtree.

Pipelining across real steps (``prefetch``, on by default): the agent acts on the first
action and plans again from the real state. When the world model predicted that state, the
next tree repeats this tree's calls under the chosen child (a model that memoizes its
requests answers them once) and its first new calls are the expansions of the leaves under
that child. A model with a ``prefetch(state)`` method is told about those leaves as soon as
the action is chosen, so it can start their requests while the environment steps. Those are
exactly requests the next plan makes when the prediction holds: nothing extra then.
``speculative_leaves`` goes further (off by default): every leaf is prefetched together
with its critic, so the next plan's first new wave is already answered when it starts; the
leaves under the children that were not chosen are wasted calls.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .base import Plan, Prefetcher, TaskModel

# Event-loop turns an HTTP client needs to put new requests on the wire (httpx: pool, connect,
# write); the environment's step that follows holds the loop.
SEND_TURNS = 3

State = TypeVar("State")
Action = TypeVar("Action")


@dataclass
class Node(Generic[State, Action]):
    state: State
    action: Action | None = None
    depth: int = 0
    value: float | None = None  # the critic's own value here (None: no new value)
    line_value: float = 0.0  # most recent critic value on the path
    line_depth: int = 0  # where that value was given
    children: list["Node[State, Action]"] = field(default_factory=list)

    def score(self, discount: float, max_exponent: int | None = None) -> float:
        exponent = self.line_depth if max_exponent is None else min(self.line_depth, max_exponent)
        return (discount ** exponent) * self.line_value

    def to_json(self, discount: float, max_exponent: int | None = None) -> dict[str, Any]:
        return {
            "action": self.action,
            "depth": self.depth,
            "value": self.value,
            "score": round(self.score(discount, max_exponent), 6),
            "state": describe(self.state),
            "children": [c.to_json(discount, max_exponent) for c in self.children],
        }


def describe(state: Any) -> Any:
    """A state's own log form when it has one (``to_log()``), else nothing."""
    to_log = getattr(state, "to_log", None)
    return to_log() if callable(to_log) else None


@dataclass
class LookaheadPlanner:
    breadth: int = 2
    depth: int = 2
    discount: float = 0.9
    prefetch: bool = True  # tell the model which leaves the next plan expands (see above)
    speculative_leaves: bool = False  # prefetch every leaf with its critic (wastes calls)
    deep_discount: bool = False  # discount ** depth at every depth (the original stops at depth - 1)

    @property
    def max_exponent(self) -> int | None:
        return None if self.deep_discount else max(0, self.depth - 1)

    def score(self, node: Node) -> float:
        return node.score(self.discount, self.max_exponent)

    async def plan(self, model: TaskModel, state: Any) -> Plan:
        root = Node(state=state)
        await self._expand(model, root, parent=None)
        path = self._best_path(root)
        leaf = path[-1] if path else root
        if self.prefetch and path and self._prefetch(model, self._next_leaves(model, path[0])):
            for _ in range(SEND_TURNS):  # let the prefetched requests go out before the env steps
                await asyncio.sleep(0)
        return Plan(
            actions=[n.action for n in path],
            value=self.score(leaf),
            tree=root.to_json(self.discount, self.max_exponent),
        )

    async def _expand(self, model: TaskModel, node: Node, parent: Node | None) -> None:
        expand = node.depth < self.depth and not model.is_terminal(node.state)
        if self.speculative_leaves and node.depth == self.depth:
            self._prefetch(model, [node])
        if expand:
            value, actions = await asyncio.gather(model.evaluate(node.state), model.propose(node.state))
        else:
            value, actions = await model.evaluate(node.state), []
        self._set_value(node, value, parent)
        if not expand or model.is_terminal(node.state):
            return
        actions = list(actions)[: self.breadth]
        states = await asyncio.gather(*(model.predict(node.state, a) for a in actions))
        node.children = [Node(state=s, action=a, depth=node.depth + 1) for a, s in zip(actions, states)]
        await asyncio.gather(*(self._expand(model, child, node) for child in node.children))

    def _next_leaves(self, model: TaskModel, chosen: Node) -> list[Node]:
        """The nodes the next plan expands first if the prediction holds: rooted at the chosen
        child, it expands down to this tree's depth, one level deeper than this tree did."""
        out: list[Node] = []
        stack = [chosen]
        while stack:
            node = stack.pop()
            if node.depth == self.depth and not model.is_terminal(node.state):
                out.append(node)
            stack.extend(reversed(node.children))
        return out

    @staticmethod
    def _prefetch(model: TaskModel, nodes: list[Node]) -> bool:
        """Pass ``nodes`` to the model's optional ``prefetch`` (a :class:`Prefetcher`); whether it has one."""
        if not isinstance(model, Prefetcher) or not nodes:
            return False
        for node in nodes:
            model.prefetch(node.state)
        return True

    @staticmethod
    def _set_value(node: Node, value: float | None, parent: Node | None) -> None:
        node.value = value
        if value is not None:
            node.line_value, node.line_depth = float(value), node.depth
        elif parent is not None:
            node.line_value, node.line_depth = parent.line_value, parent.line_depth

    def _best_path(self, root: Node) -> list[Node]:
        best: tuple[float, list[Node]] | None = None
        stack: list[tuple[Node, list[Node]]] = [(c, [c]) for c in reversed(root.children)]
        while stack:  # depth-first in proposal order, so ties go to the earlier path
            node, path = stack.pop()
            if not node.children:
                score = self.score(node)
                if best is None or score > best[0]:
                    best = (score, path)
            stack.extend((c, path + [c]) for c in reversed(node.children))
        return best[1] if best else []
