"""``game24/run.py``: the original's flags, the shared flags, a resumable run directory."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, Sequence

from ..cli import ArgumentParser, add_shared_flags, announce_backend, build_llm, config_from_args, open_cache, positive_int, run_main, seed_everything
from ..llm.usage import Usage
from ..runner import RUNTIME_KEYS, RunDir, Runner, print_summary
from .data import load_puzzles, select_indices
from . import improvements
from .episode import PLANNINGS, Game24Config, play
from .model import Game24Settings
from .oracle import oracle_llm

ORIGINAL_DEFAULT_MODEL = "gpt-4"
# Which puzzles run does not change how each one runs: a run directory can grow its range.
GAME24_RUNTIME_KEYS = RUNTIME_KEYS | {"task_start_index", "task_end_index", "order"}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="game24/run.py",
        description="Game of 24 with ToT, Reflexion and RAFA (Liu et al., ICML 2024).",
    )
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
    add_shared_flags(parser)
    return parser


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


async def amain(argv: Sequence[str] | None = None, *, concurrent_candidates: bool = True,
                progress: bool = True) -> dict[str, Any]:
    """Parse flags, run every puzzle of the range into the run directory; the summary."""
    args = build_parser().parse_args(argv)
    spec = announce_backend(args.backend, ORIGINAL_DEFAULT_MODEL, args)
    seed_everything(args.seed)
    puzzles = load_puzzles(args.task_file_path)
    indices = select_indices(puzzles, args.task_start_index, args.task_end_index,
                             descending=args.order == "descending")
    out = args.out or f"runs/game24/{run_name(args, spec)}"
    usage = Usage(max_cost=args.max_cost)
    llm = build_llm(spec, args, usage, oracle=oracle_llm, cache=open_cache(args))
    try:
        run_dir = RunDir(out, config_from_args(args, backend=spec, out=out, llm=llm.describe()),
                         runtime_keys=GAME24_RUNTIME_KEYS)
        config = config_of(args, concurrent_candidates=concurrent_candidates)
        # summary.json counts real submissions: 1 .. episode length (max_step + 1 unless --exact-max-step).
        runner = Runner(run_dir, usage, max_steps=config.episode_steps, concurrency=args.concurrency,
                        simulated=llm.simulated, progress=progress, desc="game24")

        async def episode(index: int, ledger: Usage) -> dict[str, Any]:
            return await play(index, puzzles, llm.with_usage(ledger), config)

        result = await runner.run(indices, episode)
    finally:
        await llm.aclose()
    print_summary("Game of 24", result.summary, out, steps=(1, 2, 3, 5, 10, 15, 20))
    return result.summary


def main(argv: Sequence[str] | None = None) -> int:
    async def entry() -> int:
        summary = await amain(argv)
        return 3 if summary.get("stopped") == "budget" else 0

    return run_main(entry)


if __name__ == "__main__":
    sys.exit(main())
