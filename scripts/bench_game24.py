#!/usr/bin/env python3
"""What concurrency buys on the Game of 24: RAFA b=1 on 10 puzzles against a slow server.

A loopback OpenAI-compatible server answers like the simulated oracle after a fixed delay
(100 ms). The same run is made twice through the real entry point and the real OpenAI
client: once the original's way (one puzzle at a time, candidates evaluated one after
another), once with the defaults (puzzles under ``--concurrency``, candidates of a step
evaluated concurrently). Prints both wall times, their ratio (target >= 8x), both request
counts and both success rates (which must be equal: the answers do not depend on order).

    python scripts/bench_game24.py [--latency 0.1] [--puzzles 10] [--error-rate 0.0]

With ``--costs`` it instead measures the tokens of the five paper configurations on
puzzles 900-999 with the simulated oracle, through the usage ledger, counted exactly as
each priced model counts them (``--tokens-as``: tiktoken's o200k_base for gpt-4o and
gpt-4o-mini, cl100k_base for gpt-4), and prints the cost per 100 puzzles (the table in
game24/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rafa_core.game24.cli import amain  # noqa: E402
from rafa_core.game24.oracle import Game24Oracle  # noqa: E402
from rafa_core.llm.loopback import LoopbackServer  # noqa: E402
from rafa_core.llm.usage import price_of  # noqa: E402

PAPER_FLAGS = ["--method_generate", "propose", "--method_evaluate", "value", "--method_select", "greedy",
               "--n_generate_sample", "10", "--n_evaluate_sample", "3"]
PAPER_CONFIGS = {
    "ToT b=1": ["--planning", "tot", "--n_select_sample", "1"],
    "ToT b=2": ["--planning", "tot", "--n_select_sample", "2"],
    "Reflexion": ["--planning", "naive", "--feedback"],
    "RAFA b=1": ["--planning", "tot", "--feedback", "--n_select_sample", "1"],
    "RAFA b=2": ["--planning", "tot", "--feedback", "--n_select_sample", "2"],
}
# The priced models, and which of them count tokens alike (one simulated run per encoding).
COST_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4")
COUNTED_AS = {"gpt-4o-mini": "gpt-4o-mini", "gpt-4o": "gpt-4o-mini", "gpt-4": "gpt-4"}


def run_once(base_url: str, out: Path, puzzles: int, *, sequential: bool) -> tuple[float, dict]:
    argv = [
        "--backend", "gpt-4o-mini", "--base-url", base_url, "--no-cache",
        "--planning", "tot", "--feedback", "--method_generate", "propose", "--method_evaluate", "value",
        "--method_select", "greedy", "--n_generate_sample", "10", "--n_evaluate_sample", "3",
        "--n_select_sample", "1", "--task_start_index", "900", "--task_end_index", str(900 + puzzles),
        "--out", str(out),
    ]
    if sequential:
        argv += ["--concurrency", "1"]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        summary = asyncio.run(amain(argv, concurrent_candidates=not sequential, progress=False))
    return time.perf_counter() - start, summary


def simulated_tokens(name: str, flags: list[str], backend: str, puzzles: int, tokens_as: str, tmp: str) -> dict:
    """One paper configuration on the simulated oracle, its tokens counted as ``tokens_as`` counts them."""
    argv = ["--backend", backend, "--no-cache", "--concurrency", "16", "--tokens-as", tokens_as, *PAPER_FLAGS,
            *flags, "--task_start_index", "900", "--task_end_index", str(900 + puzzles),
            "--out", str(Path(tmp) / f"{name.replace(' ', '_')}-{tokens_as}")]
    with contextlib.redirect_stdout(io.StringIO()):
        return asyncio.run(amain(argv, progress=False))


def measure_costs(puzzles: int, error_rate: float) -> int:
    backend = "oracle" if error_rate == 0 else f"oracle:{error_rate:g}"
    print(f"Tokens per 100 puzzles (900..{900 + puzzles - 1} scaled to 100), measured with the simulated {backend} "
          "through the usage ledger, counted as each model counts them (tiktoken: o200k_base for gpt-4o and "
          "gpt-4o-mini, cl100k_base for gpt-4)")
    print(f"  {'configuration':12s} {'success':>8s} {'calls':>7s} {'in o200k':>10s} {'out o200k':>10s} "
          f"{'in cl100k':>10s} {'out cl100k':>10s} {'gpt-4o-mini':>12s} {'gpt-4o':>9s} {'gpt-4':>9s}")
    scale = 100 / puzzles
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in PAPER_CONFIGS.items():
            runs = {m: simulated_tokens(name, flags, backend, puzzles, m, tmp) for m in set(COUNTED_AS.values())}
            costs = []
            for model in COST_MODELS:
                summary = runs[COUNTED_AS[model]]
                price_in, price_out = price_of(model)
                costs.append((summary["prompt_tokens"] * price_in + summary["completion_tokens"] * price_out) * scale / 1e6)
            o200k, cl100k = runs["gpt-4o-mini"], runs["gpt-4"]
            print(f"  {name:12s} {o200k['success_rate']:>8.0%} {o200k['llm_calls'] * scale:>7.0f} "
                  f"{o200k['prompt_tokens'] * scale:>10,.0f} {o200k['completion_tokens'] * scale:>10,.0f} "
                  f"{cl100k['prompt_tokens'] * scale:>10,.0f} {cl100k['completion_tokens'] * scale:>10,.0f} "
                  + " ".join(f"{'$%.2f' % c:>{w}s}" for c, w in zip(costs, (12, 9, 9))))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.1, help="server delay per request (s)")
    parser.add_argument("--puzzles", type=int, default=10)
    parser.add_argument("--error-rate", type=float, default=0.0, help="the oracle's error rate")
    parser.add_argument("--costs", action="store_true", help="measure tokens and cost of the five paper configurations")
    args = parser.parse_args()
    if args.costs:
        return measure_costs(100 if args.puzzles == 10 else args.puzzles, args.error_rate or 0.3)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, sequential in (("sequential", True), ("default", False)):
            with LoopbackServer(Game24Oracle(args.error_rate), latency_s=args.latency) as server:
                wall, summary = run_once(server.base_url, Path(tmp) / name, args.puzzles, sequential=sequential)
                results[name] = (wall, server.stats.snapshot()["requests"], summary)
    print(f"Game of 24, RAFA b=1, {args.puzzles} puzzles, loopback server with {args.latency * 1000:.0f} ms "
          f"latency, oracle error rate {args.error_rate:g} [SIMULATED model]")
    for name, label in (("sequential", "--concurrency 1, sequential candidates"), ("default", "defaults")):
        wall, requests, summary = results[name]
        print(f"  {label:40s} wall {wall:7.2f} s   requests {requests:5d}   "
              f"success {summary['success_rate']:.1%}")
    ratio = results["sequential"][0] / results["default"][0]
    same = results["sequential"][2]["success_rate"] == results["default"][2]["success_rate"]
    print(f"  speed-up {ratio:.1f}x (target >= 8x); success rates {'equal' if same else 'DIFFER'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
