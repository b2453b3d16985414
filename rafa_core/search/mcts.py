"""RAP-style Monte-Carlo tree search over a task model, plus what RAFA needs to act with it.

Each node holds a state (predicted by the model's world model when the node is first
reached), a prior ``r0`` from the proposer and a state reward ``r1`` from the critic
(0.5 until evaluated); its reward is ``r0**alpha * r1**(1 - alpha)``.

One iteration walks down from a start node until a terminal node, expanding every node it
reaches for the first time (predict its state, evaluate it, list its children with priors).
There is no random roll-out: an unvisited child is scored by its reward plus
``w * sqrt(ln N_parent)``, a visited one by UCT, ``Q + w * sqrt(ln N_parent / N_child)``.
Backup walks the path from the leaf up; each node's candidate value is the mean reward of
the path from it down to the leaf, and the node keeps the maximum of those means.  After an
iteration the best trajectory is the root-to-terminal path of highest mean reward.

A subtree whose every path already ends in an evaluated terminal node is *exhausted*:
walking it again would call no model and learn nothing (the world model is greedy and
every node keeps its prediction), so selection passes over it while its siblings still have
something to explore.

RAFA additionally runs iterations from a node below the root (the agent's real position),
overwrites a node's predicted state with the observed one (:meth:`MCTS.observe`), and falls
back to the best child when the best trajectory does not pass through the current node.
A terminal node where the agent really ended an episode without success is marked
(:meth:`MCTS.mark_failed`): a trajectory the environment has shown to fail is not a plan any
more, so the best trajectory is sought among the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, Sequence, TypeVar, runtime_checkable

from .base import Plan, TaskModel

S = TypeVar("S")
A = TypeVar("A")


@runtime_checkable
class PriorModel(Protocol[S, A]):
    """A task model that also scores its proposals (a probability per action)."""

    async def priors(self, state: S, actions: Sequence[A]) -> list[float]: ...


@dataclass
class MCTSConfig:
    alpha: float = 0.5  # weight of the prior in a node's reward
    w_exp: float = 1.0  # exploration weight
    max_depth: int = 4  # nodes at this depth are terminal
    unevaluated_r1: float = 0.5  # r1 of a node whose state the model has not predicted yet


@dataclass(eq=False)
class Node(Generic[S, A]):
    state: S | None
    action: A | None = None
    parent: "Node[S, A] | None" = None
    depth: int = 0
    prior: float = 1.0  # r0
    r1: float = 0.5
    evaluated: bool = False
    terminal: bool = False
    children: "list[Node[S, A]] | None" = None  # None until expanded
    visits: int = 0
    value: float | None = None  # Q: the maximum of the path means backed up through it
    observed: bool = False  # state overwritten by the real environment
    exhausted: bool = False  # every path below ends in an evaluated terminal node
    failed: bool = False  # the agent really ended an episode here without success

    def reward(self, alpha: float) -> float:
        return (self.prior ** alpha) * (max(self.r1, 0.0) ** (1.0 - alpha))

    def path_from_root(self) -> "list[Node[S, A]]":
        path, node = [], self
        while node is not None:
            path.append(node)
            node = node.parent
        return path[::-1]

    def actions_from_root(self) -> list[A]:
        return [n.action for n in self.path_from_root()[1:]]  # type: ignore[misc]


@dataclass
class Trajectory(Generic[S, A]):
    """A root-to-terminal path and its mean reward (the root has no reward of its own)."""

    nodes: list[Node[S, A]] = field(default_factory=list)
    mean_reward: float = float("-inf")

    @property
    def actions(self) -> list[A]:
        return [n.action for n in self.nodes[1:]]  # type: ignore[misc]

    def passes_through(self, node: Node[S, A]) -> bool:
        return any(n is node for n in self.nodes)

    def after(self, node: Node[S, A]) -> Node[S, A] | None:
        """The node that follows ``node`` on this trajectory (None if none)."""
        for i, n in enumerate(self.nodes[:-1]):
            if n is node:
                return self.nodes[i + 1]
        return None


class MCTS(Generic[S, A]):
    """The search tree and its statistics (RAFA keeps them across episodes: the memory)."""

    def __init__(self, model: TaskModel, root_state: S, config: MCTSConfig | None = None) -> None:
        self.model = model
        self.config = config or MCTSConfig()
        self.root: Node[S, A] = Node(state=root_state)
        self.iterations = 0

    # -- one iteration ------------------------------------------------------------------------
    async def iterate(self, start: Node[S, A] | None = None) -> list[Node[S, A]]:
        """Walk down from ``start`` (default the root) to a terminal node, expanding as it
        goes, then back up the path from the root.  Returns that path."""
        node = start or self.root
        path = node.path_from_root()
        while True:
            await self._reach(node)
            if node.terminal:
                break
            if node.children is None:
                await self._expand(node)
            if not node.children:
                node.terminal = True  # no legal action: a dead end
                break
            node = self.select_child(node)
            path.append(node)
        self.backup(path)
        self.iterations += 1
        return path

    async def _reach(self, node: Node[S, A]) -> None:
        """Predict (below the root) and evaluate a node the first time it is reached."""
        if node.evaluated:
            return
        if node.state is None:
            assert node.parent is not None and node.parent.state is not None
            node.state = await self.model.predict(node.parent.state, node.action)
        node.r1 = float(await self.model.evaluate(node.state))
        node.terminal = bool(self.model.is_terminal(node.state)) or node.depth >= self.config.max_depth
        node.evaluated = True

    async def _expand(self, node: Node[S, A]) -> None:
        actions = list(await self.model.propose(node.state))
        if actions and isinstance(self.model, PriorModel):
            priors = list(await self.model.priors(node.state, actions))
        else:
            priors = [1.0 / len(actions)] * len(actions) if actions else []
        node.children = [
            Node(state=None, action=a, parent=node, depth=node.depth + 1, prior=p, r1=self.config.unevaluated_r1)
            for a, p in zip(actions, priors)
        ]

    def uct(self, child: Node[S, A], parent_visits: int) -> float:
        log_n = math.log(parent_visits) if parent_visits > 0 else 0.0
        if child.visits == 0 or child.value is None:
            return child.reward(self.config.alpha) + self.config.w_exp * math.sqrt(log_n)
        return child.value + self.config.w_exp * math.sqrt(log_n / child.visits)

    def select_child(self, node: Node[S, A]) -> Node[S, A]:
        """The child of highest UCT score (the first one on ties), among the children whose
        subtree still has something to explore when there are any."""
        assert node.children
        candidates = [c for c in node.children if not c.exhausted] or node.children
        return max(candidates, key=lambda c: self.uct(c, node.visits))

    def backup(self, path: Sequence[Node[S, A]]) -> None:
        """Each node keeps the max over iterations of the mean reward from it to the leaf."""
        total, count = 0.0, 0
        for node in reversed(path):
            if node.parent is not None:  # the root has no action, hence no reward
                total += node.reward(self.config.alpha)
                count += 1
            mean = total / count if count else 0.0
            node.value = mean if node.value is None else max(node.value, mean)
            node.visits += 1
            node.exhausted = self._is_exhausted(node)

    @staticmethod
    def _is_exhausted(node: Node[S, A]) -> bool:
        if node.evaluated and node.terminal:
            return True
        return bool(node.children) and all(c.exhausted for c in node.children)  # type: ignore[union-attr]

    # -- answers ------------------------------------------------------------------------------------
    def best_trajectory(self) -> Trajectory[S, A]:
        """The root-to-terminal path (among evaluated terminal nodes not marked failed) of
        highest mean reward."""
        best: Trajectory[S, A] = Trajectory(nodes=[self.root]) if self.root.terminal else Trajectory()
        stack: list[tuple[Node[S, A], float, int]] = [(self.root, 0.0, 0)]
        while stack:
            node, total, count = stack.pop()
            if node.parent is not None:
                total, count = total + node.reward(self.config.alpha), count + 1
            if node.evaluated and node.terminal and count and not node.failed:
                mean = total / count
                if mean > best.mean_reward:
                    best = Trajectory(nodes=node.path_from_root(), mean_reward=mean)
            for child in reversed(node.children or []):
                stack.append((child, total, count))
        return best

    def best_child(self, node: Node[S, A]) -> Node[S, A] | None:
        """Highest Q among visited children, else highest reward (prior) among all."""
        children = node.children or []
        visited = [c for c in children if c.visits and c.value is not None]
        if visited:
            return max(visited, key=lambda c: c.value)  # type: ignore[arg-type, return-value]
        return max(children, key=lambda c: c.reward(self.config.alpha)) if children else None

    def next_node(self, current: Node[S, A]) -> tuple[Node[S, A] | None, str]:
        """Where RAFA goes from ``current``: along the best trajectory if it passes through
        ``current``, else the best child (the original crashed in that case)."""
        best = self.best_trajectory()
        following = best.after(current)
        if following is not None:
            return following, "best trajectory"
        return self.best_child(current), "best child"

    # -- RAFA: what the real environment said ----------------------------------------------------
    async def observe(self, node: Node[S, A], true_state: S) -> bool:
        """Overwrite ``node``'s predicted state and reward with the real ones.

        When the prediction was wrong, the children (listed from the wrong state) are
        dropped and will be expanded again from the true state, and the node's statistics
        are cleared (ancestors keep theirs: a max over past iterations cannot be undone).  Returns whether the
        prediction was right.
        """
        matched = node.evaluated and node.state == true_state
        node.state = true_state
        node.r1 = float(await self.model.evaluate(true_state))
        node.terminal = bool(self.model.is_terminal(true_state)) or node.depth >= self.config.max_depth
        node.evaluated = True
        node.observed = True
        if not matched:
            # Children and statistics came from a wrong prediction: start this node afresh.
            node.children = None
            node.value, node.visits = None, 0
            for above in node.path_from_root():
                above.exhausted = False  # there is something new to explore below them
        node.exhausted = self._is_exhausted(node)
        return matched

    def mark_failed(self, node: Node[S, A]) -> None:
        """The agent really ended an episode at ``node`` without success."""
        node.failed = True

    def to_plan(self, trajectory: Trajectory[S, A] | None = None) -> Plan:
        trajectory = trajectory or self.best_trajectory()
        return Plan(actions=trajectory.actions, value=trajectory.mean_reward, tree=self.stats())

    def stats(self) -> dict[str, Any]:
        nodes = expanded = 0
        stack = [self.root]
        while stack:
            node = stack.pop()
            nodes += 1
            if node.children is not None:
                expanded += 1
                stack.extend(node.children)
        return {"iterations": self.iterations, "nodes": nodes, "expanded": expanded, "root_visits": self.root.visits}
