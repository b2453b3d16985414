"""The LLM task model for MCTS: world model, critic and prior.

- ``predict``: the world-model prompt of the action's kind, greedy, one line; the answer
  (a change sentence) is applied to the previous state.  An unusable answer gives an
  *invalid* situation: the node is a dead end with r1 = 0, and the raw text is kept.
- ``evaluate``: r1 = 100 when every goal atom holds, else (goal atoms met / goal atoms) + 0.5.
- ``propose`` + ``priors``: the legal actions of the (predicted) state, each scored by a
  log-likelihood; priors = softmax over the siblings.  As the original: the prior prompt
  states the problem from the state at the last even depth (``2 * (depth // 2)``) and
  scores the plan lines after it, the last action (even depth) or the last two (odd
  depth), newlines not scored; ``prior_context="trajectory"`` scores the next action after
  the whole trajectory instead.  The action that undoes the previous one is proposed, as
  the original did; ``allow_undo=False`` (an improvement) drops it: it returns to a state
  already on the path, so it never belongs to a plan of bounded length, and it triples the
  tree a search has to cover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..llm.base import BaseLLM
from .domain import Action, Atom, State, applicable_actions, block_order, goal_progress, goal_reached, inverse
from .prompts import PromptSet, action_continuation, plan_prefix, prior_prefix, world_model_prompt
from .text import read_world_model_answer, render_action, render_state

GOAL_REWARD = 100.0
# An unusable world-model answer leaves the state unknown: r1 stays at the value of a
# node not evaluated yet.  The node cannot be expanded (terminal), but it is not ranked
# below known dead ends, so RAFA may act through it and learn the truth.
UNKNOWN_R1 = 0.5
# The longest change sentence (a stack) is about 50 tokens.
WORLD_MODEL_MAX_TOKENS = 64


@dataclass(frozen=True)
class Situation:
    """A node's state: the atoms (None when the world model's answer was unusable) and the
    trajectory that led there, which the plan prompt shows."""

    atoms: State | None
    states: tuple[State, ...]  # states along the trajectory, the first one is the start
    actions: tuple[Action, ...] = ()
    # The world model's raw answer and how it was read (for logs; not part of equality).
    raw: str = field(default="", compare=False)
    how: str = field(default="given", compare=False)

    @classmethod
    def start(cls, atoms: State) -> "Situation":
        return cls(atoms=atoms, states=(atoms,))

    @property
    def valid(self) -> bool:
        return self.atoms is not None

    def then(self, action: Action, atoms: State | None, raw: str = "", how: str = "given") -> "Situation":
        states = self.states + ((atoms,) if atoms is not None else ())
        return Situation(atoms=atoms, states=states, actions=self.actions + (action,), raw=raw, how=how)

    def to_json(self) -> dict[str, Any]:
        return {
            "state": render_state(self.atoms) if self.atoms is not None else None,
            "actions": [str(a) for a in self.actions],
            "how": self.how,
            "raw": self.raw,
        }


def softmax(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]


def in_original_order(actions: Sequence[Action]) -> list[Action]:
    """The original's order of the children (it breaks ties between equal priors): with the
    hand empty, pick up or unstack each clear block in colour order; holding a block, stack
    it on each clear block, then put it down."""
    def key(action: Action) -> tuple:
        if action.kind in ("pick-up", "unstack"):
            return (0, block_order(action.args[0]))
        if action.kind == "stack":
            return (0, block_order(action.args[1]))
        return (1,)  # put-down last

    return sorted(actions, key=key)


def state_reward(atoms: State | None, goal: frozenset[Atom]) -> float:
    if atoms is None:
        return UNKNOWN_R1
    if goal_reached(atoms, goal):
        return GOAL_REWARD
    return goal_progress(atoms, goal) + 0.5


@dataclass
class BlocksworldModel:
    """The TaskModel (with priors) the MCTS searches over, for one instance."""

    llm: BaseLLM
    goal: frozenset[Atom]
    blocks: tuple[str, ...]
    prompts: PromptSet
    allow_undo: bool = True
    prior_context: str = "planbench"  # or "trajectory"

    async def propose(self, situation: Situation) -> list[Action]:
        if situation.atoms is None:
            return []
        actions = in_original_order(applicable_actions(situation.atoms))
        if situation.actions and not self.allow_undo:
            undo = inverse(situation.actions[-1])
            actions = [a for a in actions if a != undo]
        return actions

    async def priors(self, situation: Situation, actions: Sequence[Action]) -> list[float]:
        if self.prior_context == "trajectory":
            prefix = plan_prefix(self.prompts, self.goal, situation.states, situation.actions)
            return softmax(await self.llm.loglik(prefix, [action_continuation(a) for a in actions]))
        return softmax(await self.planbench_scores(situation, actions))

    async def planbench_scores(self, situation: Situation, actions: Sequence[Action]) -> list[float]:
        """The original's prior: the problem stated from the state at depth 2*(depth//2), and
        the log-likelihood of the plan lines after it, newline tokens not scored.  At an odd
        depth the line of the previous action is scored too (the same for every sibling)."""
        depth = len(situation.actions)
        base = 2 * (depth // 2)
        prefix = prior_prefix(self.prompts, self.goal, situation.states[base])
        shared = 0.0
        if depth > base:
            previous = render_action(situation.actions[-1])
            (shared,) = await self.llm.loglik(prefix, [previous])
            prefix += previous + "\n"
        scores = await self.llm.loglik(prefix, [render_action(a) for a in actions])
        return [shared + score for score in scores]

    async def predict(self, situation: Situation, action: Action) -> Situation:
        if situation.atoms is None:
            return situation.then(action, None, how="after an invalid state")
        prompt = world_model_prompt(self.prompts, situation.atoms, action)
        completions = await self.llm.generate(
            prompt, n=1, temperature=0.0, max_tokens=WORLD_MODEL_MAX_TOKENS, stop=["\n"]
        )
        text = completions[0].text if completions else ""
        prediction = read_world_model_answer(text, situation.atoms, self.blocks)
        return situation.then(action, prediction.state, raw=text.strip(), how=prediction.how)

    async def evaluate(self, situation: Situation) -> float:
        return state_reward(situation.atoms, self.goal)

    def is_terminal(self, situation: Situation) -> bool:
        return situation.atoms is None or goal_reached(situation.atoms, self.goal)
