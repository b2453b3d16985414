"""What every planner searches over, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, Sequence, TypeVar, runtime_checkable

State = TypeVar("State")
Action = TypeVar("Action")


class TaskModel(Protocol[State, Action]):
    """A benchmark's model of its task, usually LLM-backed (proposer / world model / critic)."""

    async def propose(self, state: State) -> Sequence[Action]:
        """Candidate actions from ``state`` (best first where the model ranks them)."""
        ...

    async def predict(self, state: State, action: Action) -> State:
        """The imagined state after ``action`` (an LLM world model, or the known rules)."""
        ...

    async def evaluate(self, state: State) -> float:
        """The critic's value of ``state`` (higher is better)."""
        ...

    def is_terminal(self, state: State) -> bool: ...


# Optional capabilities a task model may add; planners check them with ``isinstance``.
@runtime_checkable
class JointEvaluator(Protocol[State]):
    """A critic that values a whole frontier at once (e.g. one vote among the candidates)."""

    async def evaluate_all(self, states: Sequence[State]) -> list[float] | None:
        """One value per state, or None to fall back to ``evaluate`` state by state."""
        ...


@runtime_checkable
class Prefetcher(Protocol[State]):
    """A model that can start the requests a later plan will make from ``state`` now."""

    def prefetch(self, state: State) -> None: ...


@runtime_checkable
class PriorModel(Protocol[State, Action]):
    """A task model that also scores its proposals (a probability per action)."""

    async def priors(self, state: State, actions: Sequence[Action]) -> list[float]: ...


@dataclass
class Plan(Generic[Action]):
    """A planned trajectory: the actions to take, best first, and the search tree for logs."""

    actions: list[Action] = field(default_factory=list)
    value: float = 0.0
    tree: Any = None

    def next(self) -> Action:
        if not self.actions:
            raise IndexError("empty plan")
        return self.actions[0]

    def rest(self) -> "Plan[Action]":
        """The plan after its first action was executed (kept when the agent does not re-plan)."""
        return Plan(actions=self.actions[1:], value=self.value, tree=self.tree)

    def __bool__(self) -> bool:
        return bool(self.actions)
