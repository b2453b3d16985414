#!/usr/bin/env python3
"""What concurrency buys on the Game of 24: RAFA b=1 on 10 puzzles against a slow server.

A loopback OpenAI-compatible server answers like the simulated oracle after a fixed delay
(100 ms). The same run is made twice through the real entry point and the real OpenAI
client: once the original's way (one puzzle at a time, candidates evaluated one after
another), once with the defaults (puzzles under ``--concurrency``, candidates of a step
evaluated concurrently). Prints both wall times, their ratio (target >= 8x), both request
counts and both success rates (which must be equal: the answers do not depend on order).

    python scripts/bench_game24.py [--latency 0.1] [--puzzles 10] [--error-rate 0.0]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.1, help="server delay per request (s)")
    parser.add_argument("--puzzles", type=int, default=10)
    parser.add_argument("--error-rate", type=float, default=0.0, help="the oracle's error rate")
    args = parser.parse_args()
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
