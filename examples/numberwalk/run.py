"""The number walk declared as a benchmark and run by the project's one driver:

    python examples/numberwalk/run.py --backend oracle          # the simulated model
    python examples/numberwalk/run.py --backend local --end 1   # the embedded model (CPU)

Everything generic (flags, backends, cache, run directory, resume, summary, exit codes)
is the driver's; this file only says what is particular to the task.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[1])]

from numberwalk.env import PUZZLES, NumberWalkEnv  # noqa: E402
from numberwalk.model import NumberWalkModel  # noqa: E402
from numberwalk.oracle import oracle_llm  # noqa: E402

from rafa_core.agent import RAFAAgent  # noqa: E402
from rafa_core.benchmark import Benchmark, Run  # noqa: E402
from rafa_core.cli import positive_int  # noqa: E402
from rafa_core.driver import main  # noqa: E402
from rafa_core.llm.usage import Usage  # noqa: E402
from rafa_core.memory import Memory  # noqa: E402
from rafa_core.runner import RUNTIME_KEYS, Batch  # noqa: E402
from rafa_core.search.lookahead import LookaheadPlanner  # noqa: E402


async def learn(memory: Memory, move: Any, obs: dict[str, int], reward: float, info: dict[str, Any]) -> None:
    """What really happened, shown to the proposer in the next plans of this episode."""
    memory.add_feedback(obs, reward, info)
    memory.add_reflection(f"the move {move} led to {obs['value']}")


@dataclass(frozen=True)
class NumberWalk(Benchmark):
    name = "numberwalk"
    prog = "examples/numberwalk/run.py"
    description = "An example benchmark: reach a target number with +1, +3 and x2 (RAFA with look-ahead)."
    original_model = "gpt-4o-mini"
    runtime_keys = RUNTIME_KEYS | {"start", "end"}  # a run directory may grow its range of puzzles
    summary_title = "Number walk"
    summary_steps = (1, 2, 3, 4, 6)

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--backend", default=None, help="oracle[:error rate] (simulated), local, an OpenAI model, ...")
        parser.add_argument("--start", type=int, default=0, help="first puzzle")
        parser.add_argument("--end", type=int, default=len(PUZZLES), help="puzzles before this one")
        parser.add_argument("--max_steps", type=positive_int, default=6, help="real moves per episode")
        parser.add_argument("--breadth", type=positive_int, default=2)
        parser.add_argument("--depth", type=positive_int, default=2)
        parser.add_argument("--temperature", type=float, default=0.7)

    def oracle(self, run: Run):
        return oracle_llm

    def run_name(self, run: Run) -> str:
        a = run.args
        return f"{run.spec.replace(':', '-').replace('/', '-')}_b{a.breadth}_d{a.depth}_{a.start}-{a.end}"

    def max_steps(self, run: Run) -> int:
        return run.args.max_steps

    def schedule(self, run: Run) -> list[Batch]:
        return [Batch(list(range(max(0, run.args.start), min(run.args.end, len(PUZZLES)))))]

    async def episode(self, run: Run, index: Any, ledger: Usage) -> dict[str, Any]:
        a, llm = run.args, run.llm.with_usage(ledger)
        agent = RAFAAgent(
            planner=LookaheadPlanner(breadth=a.breadth, depth=a.depth),
            make_model=lambda memory: NumberWalkModel(llm, memory.recent_reflections(3), a.temperature),
            state_of=lambda obs, info, memory: (obs["value"], obs["target"]),
            learn=learn,
            max_steps=a.max_steps,
        )
        with NumberWalkEnv() as env:
            result = await agent.run_episode(env, index, Memory())
        return {"puzzle": list(PUZZLES[index]), **result.to_json()}


if __name__ == "__main__":
    sys.exit(main(NumberWalk(), sys.argv[1:]))
