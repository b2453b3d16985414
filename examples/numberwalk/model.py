"""The LLM-backed task model: proposer, world model and critic of the number walk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from numberwalk.env import MOVES
from numberwalk.prompts import parse_moves, parse_number, parse_value, predict_prompt, propose_prompt, value_prompt

from rafa_core.llm.base import BaseLLM

State = tuple[int, int]  # (value, target)


@dataclass
class NumberWalkModel:
    """What the planner asks; every answer parsed, a bad one replaced by a safe default."""

    llm: BaseLLM
    notes: list[str] = field(default_factory=list)  # what the agent learned in earlier steps
    temperature: float = 0.7

    async def ask(self, prompt: str, max_tokens: int) -> str:
        return (await self.llm.generate(prompt, n=1, temperature=self.temperature, max_tokens=max_tokens))[0].text

    async def propose(self, state: State) -> Sequence[str]:
        moves = parse_moves(await self.ask(propose_prompt(*state, self.notes), 24))
        return moves + [m for m in MOVES if m not in moves]  # unnamed moves after the named ones

    async def predict(self, state: State, move: str) -> State:
        number = parse_number(await self.ask(predict_prompt(state[0], move), 8))
        return (state[0] if number is None else number, state[1])  # no number: imagined unchanged

    async def evaluate(self, state: State) -> float | None:
        value, target = state
        if value == target:
            return 1.0
        if value > target:
            return 0.0
        return parse_value(await self.ask(value_prompt(value, target), 8))

    def is_terminal(self, state: State) -> bool:
        return state[0] >= state[1]
