"""Game of 24 declared for the driver: ``python game24/run.py`` / ``python -m rafa_core game24``."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any

from ..benchmark import Benchmark, Run
from ..cli import positive_int
from ..llm.usage import Usage
from ..runner import RUNTIME_KEYS, Batch
from . import improvements
from .data import load_puzzles, select_indices
from .episode import PLANNINGS, Game24Config, play
from .model import Game24Settings
from .oracle import oracle_llm


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default=None,
                        help="model: an OpenAI name (default gpt-4 when a key or --base-url is set), "
                             "hf:<id>, local, llamacpp:<gguf>, oracle[:error rate] (simulated), replay:<file>")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--task", choices=["game24"], default="game24")
    parser.add_argument("--task_file_path", default=None,
                        help="a CSV with a 'Puzzles' column; a bare name not found here is looked up in the "
                             "tree-of-thoughts-llm wheel's data/24/, as the original did (default: its 24.csv)")
    parser.add_argument("--task_start_index", type=int, default=900)
    parser.add_argument("--task_end_index", type=int, default=1000)
    parser.add_argument("--naive_run", action="store_true",
                        help="accepted for the original's command lines; it did nothing there either")
    parser.add_argument("--prompt_sample", choices=["standard", "cot"], default=None,
                        help="prompt for --method_generate sample (default cot)")
    parser.add_argument("--method_generate", choices=["sample", "propose"], default="propose")
    parser.add_argument("--method_evaluate", choices=["value", "vote"], default="value")
    parser.add_argument("--method_select", choices=["sample", "greedy"], default="greedy")
    parser.add_argument("--n_generate_sample", type=positive_int, default=10)
    parser.add_argument("--n_evaluate_sample", type=positive_int, default=1)
    parser.add_argument("--n_select_sample", type=positive_int, default=1, help="the breadth b")
    parser.add_argument("--feedback", action="store_true",
                        help="commit correct steps, return the checker's evaluation, reflect on it (RAFA, Reflexion)")
    parser.add_argument("--planning", choices=list(PLANNINGS), default="tot")
    parser.add_argument("--max_step", type=positive_int, default=20, help="the original's step limit: an episode ends after max_step + 1 submissions (see --exact-max-step)")
    parser.add_argument("--order", choices=["descending", "ascending"], default="descending",
                        help="walk the index range from the last puzzle down (the original) or up")
    improvements.add_flags(parser)


def config_of(args: argparse.Namespace, *, concurrent_candidates: bool = True) -> Game24Config:
    return Game24Config(
        planning=args.planning,
        feedback=args.feedback,
        method_select=args.method_select,
        n_select_sample=args.n_select_sample,
        max_step=args.max_step,
        seed=args.seed,
        concurrent_candidates=concurrent_candidates,
        settings=Game24Settings(
            method_generate=args.method_generate,
            method_evaluate=args.method_evaluate,
            prompt_sample=args.prompt_sample or "cot",
            n_generate_sample=args.n_generate_sample,
            n_evaluate_sample=args.n_evaluate_sample,
            temperature=args.temperature,
            improved=improvements.from_args(args),
        ),
    )


def run_name(args: argparse.Namespace, backend: str) -> str:
    method = "" if args.planning != "tot" else (
        f"_{args.method_generate}-{args.method_evaluate}-{args.method_select}_b{args.n_select_sample}"
    )
    name = f"{args.planning}{'-feedback' if args.feedback else ''}{method}_{backend}_{args.task_start_index}-{args.task_end_index}"
    name += improvements_suffix(improvements.from_args(args))
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def improvements_suffix(improved: improvements.Improvements) -> str:
    """Runs with other improvements go to other directories (a run directory holds one config)."""
    if improved == improvements.Improvements.all_on():
        return "_improved"
    on = [flag.lstrip("-") for flag, name, _, _ in improvements.FLAGS if getattr(improved, name)]
    return "".join(f"_{flag}" for flag in on)


@dataclass
class Puzzles:
    puzzles: list[Any]
    indices: list[int]
    config: Game24Config


@dataclass(frozen=True)
class Game24(Benchmark):
    concurrent_candidates: bool = True  # the candidates of one step asked at once (False: the bench's baseline)

    name = "game24"
    prog = "game24/run.py"
    description = "Game of 24 with ToT, Reflexion and RAFA (Liu et al., ICML 2024)."
    original_model = "gpt-4"
    # Which puzzles run does not change how each one runs: a run directory can grow its range.
    runtime_keys = RUNTIME_KEYS | {"task_start_index", "task_end_index", "order"}
    summary_title = "Game of 24"
    summary_steps = (1, 2, 3, 5, 10, 15, 20)
    progress_desc = "game24"

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        add_flags(parser)

    def oracle(self, run: Run):
        return oracle_llm

    def prepare(self, run: Run) -> None:
        args = run.args
        puzzles = load_puzzles(args.task_file_path)
        indices = select_indices(puzzles, args.task_start_index, args.task_end_index,
                                 descending=args.order == "descending")
        run.state = Puzzles(puzzles, indices, config_of(args, concurrent_candidates=self.concurrent_candidates))

    def run_name(self, run: Run) -> str:
        return run_name(run.args, run.spec)

    def max_steps(self, run: Run) -> int:
        # summary.json counts real submissions: 1 .. episode length (max_step + 1 unless --exact-max-step).
        return run.state.config.episode_steps

    def schedule(self, run: Run) -> list[Batch]:
        return [Batch(run.state.indices)]

    async def episode(self, run: Run, index: Any, ledger: Usage) -> dict[str, Any]:
        return await play(index, run.state.puzzles, run.llm.with_usage(ledger), run.state.config)
