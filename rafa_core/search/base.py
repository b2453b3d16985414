"""What every planner searches over, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, Sequence, TypeVar

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
