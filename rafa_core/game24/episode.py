"""One Game-of-24 episode: the environment, the planner and the RAFA loop put together.

The paper's configurations are settings of one loop:
ToT = tree search, no feedback; Reflexion = no search (naive), feedback + reflections;
RAFA = tree search, feedback + reflections; CoT = one chain-of-thought answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ..agent import RAFAAgent
from ..llm.base import BaseLLM
from ..llm.draws import Draws
from ..memory import Memory
from ..search.base import Plan
from ..search.tot import ToTPlanner
from .env import Game24Env
from .model import Game24Model, Game24Settings, Game24State, OneShotPlanner, Reflector, ValueCache

PLANNINGS = ("tot", "naive", "cot")


@dataclass
class Game24Config:
    planning: str = "tot"
    feedback: bool = False
    method_select: str = "greedy"
    n_select_sample: int = 1
    max_step: int = 20
    seed: int = 0
    settings: Game24Settings = field(default_factory=Game24Settings)
    # False: expand and value candidates one after another (the original's pattern).
    concurrent_candidates: bool = True

    @property
    def episode_steps(self) -> int:
        """Submissions per puzzle: the original ends an episode when ``cur_step > max_steps``,
        so ``--max_step 20`` allows 21 (G2); ``--exact-max-step`` allows ``max_step``."""
        return self.max_step if self.settings.improved.exact_max_step else self.max_step + 1


def state_of(obs: dict[str, Any], info: dict[str, Any], memory: Memory) -> Game24State:
    return Game24State(puzzle=obs["puzzle"], committed=tuple(obs.get("history", ())))


def plan_text(plan: Plan) -> str:
    """Act for now: the plan's lines go to the environment, which keeps what is right.
    A plan with no line is still submitted (as an empty text): a failed step the
    environment judges and counts, after which the agent tries again."""
    return "\n".join(str(a) for a in plan.actions)


def make_planner(config: Game24Config, index: int) -> ToTPlanner | OneShotPlanner:
    if config.planning == "tot":
        return ToTPlanner(
            breadth=config.n_select_sample,
            depth=4,
            select=config.method_select,
            concurrent=config.concurrent_candidates,
            rng=random.Random(f"{config.seed}:{index}"),
        )
    return OneShotPlanner(style="cot" if config.planning == "cot" else "standard")


async def play(index: int, puzzles: list[str], llm: BaseLLM, config: Game24Config) -> dict[str, Any]:
    """Run puzzle ``index`` to the end; the record for ``episodes.jsonl`` (minus usage)."""
    env = Game24Env(puzzles, feedback=config.feedback, max_step=config.episode_steps)
    values = ValueCache()  # one per episode: lessons and memory are per episode too
    # Every request of the episode is a fresh draw (unless --value-cache), reproducibly:
    # the same seed and puzzle draw the same samples, so a rerun replays from the cache.
    draws = Draws(f"game24|seed={config.seed}|puzzle={index}")

    def make_model(memory: Memory) -> Game24Model:
        return Game24Model(llm, config.settings, memory, values, attempt=len(memory.feedback), draws=draws)

    reflector = Reflector(llm, config.settings, puzzles[index], concurrent=config.concurrent_candidates, draws=draws)
    agent = RAFAAgent(
        planner=make_planner(config, index),
        make_model=make_model,
        state_of=state_of,
        to_action=plan_text,
        learn=reflector.learn,
        max_steps=config.episode_steps,
    )
    memory = Memory()
    with env:
        result = await agent.run_episode(env, index, memory)
    return {
        "puzzle": puzzles[index],
        **result.to_json(),
        "value_cache_hits": values.hits,
        "lessons": memory.examples,
    }
