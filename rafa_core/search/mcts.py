"""RAP-style Monte-Carlo tree search over a task model, plus what RAFA needs to act with it.

Each node holds a state (predicted by the model's world model when the node is first
reached), a prior ``r0`` from the proposer and a state reward ``r1`` from the critic
(0.5 until evaluated); its reward is ``r0**alpha * r1**(1 - alpha)``.  The root has no
action, hence no prior, and its reward is 0.

One iteration walks down from a start node until a terminal node, expanding every node it
reaches for the first time (predict its state, evaluate it, list its children with priors).
There is no random roll-out: an unvisited child is scored by its reward plus
``w * sqrt(ln N_parent)``, a visited one by UCT, ``Q + w * sqrt(ln N_parent / N_child)``.
Backup walks the path from the leaf up; each node's candidate value is a mean of the
rewards from it down to the leaf, and the node keeps the maximum of those means.  After an
iteration the best trajectory is the root-to-terminal path of highest mean reward.

By default every detail is the one the original code runs (``MCTSConfig``):
- the backup mean of the k rewards from a node to the leaf is ``sum / (k + 1)``;
- an iteration from a node below the root backs up only from that node down;
- the best trajectory's mean is ``(0 + sum) / (depth + 1)`` (the root's 0 counted).
The project's variants (``MCTSConfig.improved()``): ``sum / k`` over the actions' rewards,
backup through the ancestors of the start node, ``sum / depth``, and *skipping exhausted
subtrees*: a subtree whose every path already ends in an evaluated terminal node would
call no model and learn nothing (the world model is greedy and every node keeps its
prediction), so selection passes over it while its siblings still have something to explore.

:class:`MCTSPlanner` is the planner RAFA plugs in (``plan(model, state)``, ``observe``): it
runs iterations from a node below the root (the agent's real position),
overwrites a node's predicted state with the observed one (:meth:`MCTS.observe`), re-adds
the last iteration's path means once the real transition is known
(:meth:`MCTS.memory_propagate`, as the original did), and falls back to the best child
when the best trajectory does not pass through the current node (the original crashed).
With ``mark_failed`` (an improvement), a terminal node where the agent really ended an
episode without success is marked (:meth:`MCTS.mark_failed`): a trajectory the environment
has shown to fail is not a plan any more, so the best trajectory is sought among the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Sequence, TypeVar

from .base import Plan, PriorModel, TaskModel

S = TypeVar("S")
A = TypeVar("A")


@dataclass
class MCTSConfig:
    alpha: float = 0.5  # weight of the prior in a node's reward
    w_exp: float = 1.0  # exploration weight
    max_depth: int = 4  # nodes at this depth are terminal
    unevaluated_r1: float = 0.5  # r1 of a node whose state the model has not predicted yet
    # The original's internals (the defaults) and the project's variants:
    backup_mean: str = "k+1"  # "k+1": sum/(k+1) of the k rewards node..leaf; "k": sum/k over actions
    backup_scope: str = "start"  # "start": the iteration's start node down; "root": also its ancestors
    best_mean: str = "depth+1"  # "depth+1": (0 + sum)/(depth + 1); "depth": sum/depth
    memory_propagate: bool = True  # RAFA: re-add the path's means after the real transition
    skip_exhausted: bool = False  # selection passes over fully explored subtrees

    @classmethod
    def improved(cls, **kwargs: Any) -> "MCTSConfig":
        """The project's variants of every internal (``--improved``)."""
        variants: dict[str, Any] = dict(backup_mean="k", backup_scope="root", best_mean="depth",
                                        memory_propagate=False, skip_exhausted=True)
        return cls(**{**variants, **kwargs})

    def __post_init__(self) -> None:
        for name, allowed in (("backup_mean", ("k+1", "k")), ("backup_scope", ("start", "root")),
                              ("best_mean", ("depth+1", "depth"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")


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


@dataclass
class Trajectory(Generic[S, A]):
    """A root-to-terminal path and its mean reward (the root has no reward of its own)."""

    nodes: list[Node[S, A]] = field(default_factory=list)
    mean_reward: float = float("-inf")

    @property
    def actions(self) -> list[A]:
        return [n.action for n in self.nodes[1:]]  # type: ignore[misc]

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
        goes, then back up.  Returns the path backed up: from ``start`` (the original) or
        from the root (``backup_scope="root"``) to the leaf."""
        node = start or self.root
        path = node.path_from_root() if self.config.backup_scope == "root" else [node]
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
        self._refresh_exhausted_above(path[0])
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
        """The child of highest UCT score (the first one on ties); with ``skip_exhausted``,
        among the children whose subtree still has something to explore when there are any."""
        assert node.children
        candidates = node.children
        if self.config.skip_exhausted:
            candidates = [c for c in node.children if not c.exhausted] or node.children
        return max(candidates, key=lambda c: self.uct(c, node.visits))

    def node_reward(self, node: Node[S, A]) -> float:
        """A node's reward; the root has no action and its reward is 0 (the original's r0 = 0)."""
        return node.reward(self.config.alpha) if node.parent is not None else 0.0

    def path_means(self, path: Sequence[Node[S, A]]) -> list[float]:
        """For each node of ``path`` (leaf last), the mean of the rewards from it to the leaf:
        sum/(k+1) over the k nodes (the original), or sum/k over the nodes with an action."""
        means: list[float] = []
        total, nodes, actions = 0.0, 0, 0
        for node in reversed(path):
            total += self.node_reward(node)
            nodes += 1
            actions += node.parent is not None
            if self.config.backup_mean == "k+1":
                means.append(total / (nodes + 1))
            else:
                means.append(total / actions if actions else 0.0)
        return means[::-1]

    def backup(self, path: Sequence[Node[S, A]]) -> None:
        """Each node keeps the max over iterations of its path mean, and counts a visit."""
        for node, mean in zip(reversed(path), reversed(self.path_means(path))):
            node.value = mean if node.value is None else max(node.value, mean)
            node.visits += 1
            node.exhausted = self._is_exhausted(node)

    def memory_propagate(self, path: Sequence[Node[S, A]]) -> None:
        """After a real transition (rewards along ``path`` may have changed): re-add the path
        means to the maxima, without counting visits (the original's ``memory_propagate``).
        The part of the path below a node whose children were dropped is gone from the tree."""
        kept = list(path[:1])
        for node in path[1:]:
            parent = node.parent
            if parent is None or not any(c is node for c in parent.children or []):
                break
            kept.append(node)
        for node, mean in zip(kept, self.path_means(kept)):
            node.value = mean if node.value is None else max(node.value, mean)

    def _refresh_exhausted_above(self, node: Node[S, A]) -> None:
        above = node.parent
        while above is not None:
            above.exhausted = self._is_exhausted(above)
            above = above.parent

    @staticmethod
    def _is_exhausted(node: Node[S, A]) -> bool:
        if node.evaluated and node.terminal:
            return True
        return bool(node.children) and all(c.exhausted for c in node.children)  # type: ignore[union-attr]

    # -- answers ------------------------------------------------------------------------------------
    def best_trajectory(self) -> Trajectory[S, A]:
        """The root-to-terminal path (among evaluated terminal nodes not marked failed) of
        highest mean reward: (0 + sum)/(depth + 1) as the original, or sum/depth."""
        best: Trajectory[S, A] = Trajectory(nodes=[self.root]) if self.root.terminal else Trajectory()
        plus_one = 1 if self.config.best_mean == "depth+1" else 0
        stack: list[tuple[Node[S, A], float, int]] = [(self.root, 0.0, 0)]
        while stack:
            node, total, count = stack.pop()
            if node.parent is not None:
                total, count = total + node.reward(self.config.alpha), count + 1
            if node.evaluated and node.terminal and count and not node.failed:
                mean = total / (count + plus_one)
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


Describe = Callable[["MCTS[S, A]", Trajectory[S, A], "Node[S, A] | None", str], dict[str, Any]]


def describe_stats(tree: "MCTS[S, A]", best: Trajectory[S, A], chosen: "Node[S, A] | None", why: str) -> dict[str, Any]:
    return {"why": why, "tree": tree.stats()}


class MCTSPlanner(Generic[S, A]):
    """RAFA's planner over one search tree kept across episodes (the learned memory):
    one iteration from where the agent really is, then the step towards the best trajectory.

    ``plan(model, state)``: ``state`` is the agent's real state, the root's at the start of
    an episode, else the state :meth:`observe` was told; ``observe(action, true_state)``
    overwrites the chosen child's prediction with the real state (RAFA's feedback).
    ``describe`` writes what a plan logs about the search (its ``tree``).
    """

    def __init__(self, tree: MCTS[S, A], describe: Describe = describe_stats) -> None:
        self.tree = tree
        self.describe = describe
        self.current: Node[S, A] = tree.root
        self.chosen: Node[S, A] | None = None
        self.path: list[Node[S, A]] = []  # the last iteration's path, re-propagated after the real step

    async def plan(self, model: TaskModel, state: S) -> Plan:
        self.tree.model = model
        self.current = self.locate(state)
        self.path = await self.tree.iterate(self.current)
        best = self.tree.best_trajectory()
        chosen, why = self.tree.next_node(self.current)
        if chosen is None:
            return Plan(actions=[], value=best.mean_reward, tree=self.describe(self.tree, best, None, "no action"))
        self.chosen = chosen
        return Plan(actions=[chosen.action], value=best.mean_reward, tree=self.describe(self.tree, best, chosen, why))

    def locate(self, state: S) -> Node[S, A]:
        """The node of the agent's real state: the root (a new episode) or where it moved."""
        if state == self.tree.root.state:
            self.chosen = None
            return self.tree.root
        if state == self.current.state:
            return self.current
        raise ValueError("the state is neither the root's nor the one last observed")

    async def observe(self, action: A, true_state: S) -> bool:
        """The agent took ``action`` and the environment showed ``true_state``; whether the
        tree had predicted it."""
        node = self.chosen
        if node is None or node.action != action:
            node = next((c for c in self.current.children or [] if c.action == action), None)
        if node is None:
            raise RuntimeError(f"acted {action}, which is not a child of the current node")
        matched = await self.tree.observe(node, true_state)
        if self.tree.config.memory_propagate:
            self.tree.memory_propagate(self.path)
        self.current, self.chosen = node, None
        return matched
