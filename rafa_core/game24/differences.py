"""Measure what each improvement flag changes on the simulated oracle (the README's table).

    python -m rafa_core.game24.differences [--puzzles 100] [--error-rate 0.3]

Runs the paper's configurations on puzzles 900.. with the original's algorithm (the
default), with each improvement flag alone where it can matter, and with ``--improved``;
prints success within 5 and 20 real submissions, within the whole episode, at the paper's
"step 20" (real step <= 17, the original figure's convention), the mean number of
submissions of the solved puzzles, and LLM calls and words (the simulated backend's
token count) per puzzle.
The oracle is a test double: the numbers show the mechanics, not a model's skill.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from ..cli import run_event_loop
from .cli import amain
from .paper import STEP_OFFSET

PAPER_FLAGS = ["--method_generate", "propose", "--method_evaluate", "value", "--method_select", "greedy",
               "--n_generate_sample", "10", "--n_evaluate_sample", "3"]
CONFIGS = {
    "ToT b=1": ["--planning", "tot", "--n_select_sample", "1"],
    "RAFA b=1": ["--planning", "tot", "--feedback", "--n_select_sample", "1"],
    "Reflexion": ["--planning", "naive", "--feedback"],
}
# Which flags can change which configuration. Not run: --exact-max-step (its result is the
# default run's "<= 20 steps": the first 20 submissions draw the same samples either way),
# --parsed-lessons on ToT (no feedback, no lessons), --lean-naive on the searches.
VARIANTS = {
    "ToT b=1": ["--value-cache", "--improved"],
    "RAFA b=1": ["--value-cache", "--short-answers", "--parsed-lessons", "--improved"],
    "Reflexion": ["--lean-naive", "--parsed-lessons", "--improved"],
}


def run(config: str, flag: str | None, puzzles: int, backend: str, tmp: Path, seed: int = 0) -> dict:
    argv = ["--backend", backend, "--no-cache", "--concurrency", "16", "--seed", str(seed), *PAPER_FLAGS, *CONFIGS[config],
            "--task_start_index", "900", "--task_end_index", str(900 + puzzles),
            "--out", str(tmp / f"{config}{flag or ''}".replace(" ", "_"))]
    argv += [flag] if flag else []
    with contextlib.redirect_stdout(io.StringIO()):
        return run_event_loop(amain(argv, progress=False))


def mean_steps_to_solve(by_step: dict[str, float]) -> float:
    """Mean real submissions of the solved episodes, from the cumulative success rates."""
    rates = [0.0] + [by_step[str(k)] for k in range(1, len(by_step) + 1)]
    solved = rates[-1]
    return sum(k * (rates[k] - rates[k - 1]) for k in range(1, len(rates))) / solved if solved else 0.0


def row(config: str, flag: str | None, summary: dict) -> str:
    by_step = summary["success_by_step"]
    last = str(len(by_step))
    paper20 = by_step[str(20 - STEP_OFFSET)]
    n = max(summary["episodes"], 1)
    return (f"| {config} | {flag or 'default (original)'} | {by_step['5']:.0%} | {by_step['20']:.0%} "
            f"| {by_step[last]:.0%} ({last}) | {paper20:.0%} | {mean_steps_to_solve(by_step):.2f} "
            f"| {summary['llm_calls'] / n:,.0f} | {summary['prompt_tokens'] / n:,.0f} / {summary['completion_tokens'] / n:,.0f} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--puzzles", type=int, default=100)
    parser.add_argument("--error-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0, help="another seed: other draws (the spread of the numbers)")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--only", nargs="*", default=None, metavar="FLAG",
                        help="run only these variants, without dashes: default value-cache improved ...")
    args = parser.parse_args(argv)
    backend = f"oracle:{args.error_rate:g}" if args.error_rate else "oracle"
    print(f"{backend} [SIMULATED], puzzles 900..{899 + args.puzzles}, seed {args.seed}")
    print("| configuration | flags | success <= 5 steps | <= 20 steps | whole episode (steps) "
          "| paper's step 20 (<= 17 steps) | mean steps to solve | LLM calls / puzzle | words in / out per puzzle |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs:
            for flag in [None, *VARIANTS[config]]:
                if args.only is not None and (flag or "default").lstrip("-") not in args.only:
                    continue
                print(row(config, flag, run(config, flag, args.puzzles, backend, Path(tmp), args.seed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
