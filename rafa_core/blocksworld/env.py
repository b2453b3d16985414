"""The real BlocksWorld environment for the RAFA loop: the simulator, step by step."""

from __future__ import annotations

from typing import Any

from ..environment import Closing
from .domain import Action, is_applicable, apply, goal_reached
from .model import Situation
from .pddl_io import Problem
from .text import render_action, render_state


class BlocksworldEnv(Closing):
    """``reset() -> (obs, info)``; ``step(action) -> (obs, reward, done, info)``.

    An episode ends at the goal, after ``max_steps`` actions, or at an illegal action
    (which changes nothing and is reported in ``info``).  ``info["situation"]`` is the true
    state (what RAFA's learning compares with the tree's prediction).
    """

    def __init__(self, problem: Problem, max_steps: int) -> None:
        self.problem = problem
        self.max_steps = max_steps
        self.situation = Situation.start(problem.init)
        self.steps = 0

    def reset(self, index: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        self.situation = Situation.start(self.problem.init)
        self.steps = 0
        return self.observation(), {"situation": self.situation}

    def step(self, action: Action) -> tuple[dict[str, Any], float, bool, dict[str, Any]]:
        atoms = self.situation.atoms
        assert atoms is not None  # the real state is always a state
        if not is_applicable(atoms, action):
            info = {"success": False, "illegal": render_action(action), "situation": self.situation}
            return self.observation(), 0.0, True, info
        self.situation = self.situation.then(action, apply(atoms, action), how="observed")
        self.steps += 1
        success = goal_reached(self.situation.atoms, self.problem.goal)  # type: ignore[arg-type]
        done = success or self.steps >= self.max_steps
        return self.observation(), 1.0 if success else 0.0, done, {"success": success, "situation": self.situation}

    def observation(self) -> dict[str, Any]:
        atoms = self.situation.atoms
        return {"state": render_state(atoms) if atoms is not None else None}
