"""Reliability figures in one table: fuzzed parser inputs, API faults injected and survived,
kills survived, episodes lost or duplicated, and the slowdown of a run under 20% faults.

    python scripts/bench_reliability.py [--examples 300] [--kills 8]

Everything is simulated and offline: the Game of 24 oracle answers behind the loopback
OpenAI-compatible server (faults) or in process (kills).  A few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the parser table and its strategies live with the tests

from hypothesis import HealthCheck, given, settings  # noqa: E402

import test_fuzz_parsers as fuzz  # noqa: E402
from rafa_core.game24 import cli as game24_cli  # noqa: E402
from rafa_core.game24.oracle import Game24Oracle  # noqa: E402
from rafa_core.llm import openai_backend  # noqa: E402
from rafa_testkit.loopback import FAULT_KINDS, FaultPlan, LoopbackServer  # noqa: E402


# -- fuzzing -----------------------------------------------------------------------------------
def fuzz_parsers(examples: int) -> list[dict[str, Any]]:
    """Each parser on ``examples`` generated inputs plus the 100 kB adversarial ones."""
    rows = []
    for spec in fuzz.PARSERS:
        seen = {"inputs": 0, "slowest": 0.0, "violations": 0, "too_slow": 0}

        def one(text: str) -> None:
            seen["inputs"] += 1
            try:
                seen["slowest"] = max(seen["slowest"], fuzz.check_one(spec, text))
            except AssertionError as exc:  # a wrong result, or slower than the bound 3 times
                seen["too_slow" if " took " in str(exc) else "violations"] += 1

        run = settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                       suppress_health_check=list(HealthCheck))(given(fuzz.inputs(spec))(one))
        run()
        for text in [fuzz.repeated_to_huge(u) for u in fuzz.ADVERSARIAL_UNITS] + fuzz.POWER_TOWERS:
            one(text)
        rows.append({"parser": spec.name, **seen})
    return rows


# -- faults ------------------------------------------------------------------------------------
def game24_argv(url: str, out: Path, count: int) -> list[str]:
    return ["--backend", "loopback", "--base-url", url, "--no-cache", "--timeout", "0.5", "--max-retries", "10",
            "--feedback", "--task_start_index", "900", "--task_end_index", str(900 + count), "--concurrency", "4",
            "--out", str(out)]


def records(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "episodes.jsonl").read_text().splitlines()
    return {str(r["index"]): {k: v for k, v in r.items() if k != "wall_s"} for r in map(json.loads, lines)}


def run_behind_server(out: Path, faults: FaultPlan | None, count: int, backoff: dict[str, float]) -> dict[str, Any]:
    built: list[openai_backend.OpenAILLM] = []
    original = openai_backend.OpenAILLM.__init__

    def init(self, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **{**kwargs, **backoff})
        built.append(self)

    openai_backend.OpenAILLM.__init__ = init  # type: ignore[method-assign]
    try:
        with LoopbackServer(Game24Oracle(0.3), faults=faults) as server:
            started = time.monotonic()
            with contextlib.redirect_stdout(io.StringIO()):  # the entry point's own report
                asyncio.run(game24_cli.amain(game24_argv(server.base_url, out, count), progress=False))
            wall = time.monotonic() - started
            stats = server.stats.snapshot()
    finally:
        openai_backend.OpenAILLM.__init__ = original  # type: ignore[method-assign]
    return {"wall": wall, "stats": stats, "retries": sum(b.retries for b in built),
            "max_retries_one_request": max((b.stats.max_retries_one_request for b in built), default=0),
            "failures": sum(b.stats.failures for b in built)}


def fault_runs(work: Path, count: int) -> dict[str, Any]:
    short = {"backoff_base_s": 0.005, "backoff_max_s": 0.05}
    plan = FaultPlan(rate=0.2, kinds=FAULT_KINDS, retry_after_s=0.05, hang_s=2.0)
    clean = run_behind_server(work / "clean", None, count, short)
    faulty = run_behind_server(work / "faulty", plan, count, short)
    faulty_default = run_behind_server(work / "faulty-default-backoff", plan, count, {})
    return {
        "clean": clean, "faulty": faulty, "faulty_default": faulty_default,
        "same_results": records(work / "faulty") == records(work / "clean")
        and records(work / "faulty-default-backoff") == records(work / "clean"),
    }


# -- kills -------------------------------------------------------------------------------------
KILL_ARGS = ["--backend", "oracle:0.3", "--feedback", "--task_start_index", "900", "--task_end_index", "960",
             "--concurrency", "4", "--no-cache"]


def run_game24(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(REPO / "game24/run.py"), *KILL_ARGS, "--out", str(out)], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_runs(work: Path, kills: int) -> dict[str, Any]:
    reference, killed = work / "reference", work / "killed"
    started = time.monotonic()
    run_game24(reference).wait()
    full = time.monotonic() - started
    rng = random.Random(7)
    torn = mid_run = 0
    startup = 0.7  # interpreter and imports, before the first episode starts
    for _ in range(kills):
        done = len((killed / "episodes.jsonl").read_text().splitlines()) if (killed / "episodes.jsonl").exists() else 0
        left = max(0.0, full - startup) * (1 - done / 60)
        proc = run_game24(killed)
        time.sleep(startup * rng.uniform(0.5, 1.0) + left * rng.uniform(0.0, 0.8))  # somewhere in what is left
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            mid_run += 1
        proc.wait()
        log = killed / "episodes.jsonl"
        torn += int(log.exists() and not log.read_bytes().endswith(b"\n") and log.stat().st_size > 0)
    assert run_game24(killed).wait() == 0
    lines = (killed / "episodes.jsonl").read_text().splitlines()
    indices = [json.loads(line)["index"] for line in lines]
    expected = set(range(900, 960))
    summary_of = lambda out: {k: v for k, v in json.loads((out / "summary.json").read_text()).items() if k != "wall_s"}  # noqa: E731
    return {"kills": mid_run, "torn_lines_repaired": torn, "lost": len(expected - set(indices)),
            "duplicates": len(indices) - len(set(indices)),
            "same_results": records(killed) == records(reference) and summary_of(killed) == summary_of(reference)}


# -- the table ---------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="generated inputs per parser")
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--puzzles", type=int, default=6, help="Game of 24 puzzles in the fault runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rafa-bench-reliability-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        fuzzed = fuzz_parsers(args.examples)
        t_fuzz = time.monotonic() - t0
        faults = fault_runs(work, args.puzzles)
        kills = kill_runs(work, args.kills)

    rows: list[tuple[str, str]] = []
    for row in fuzzed:
        bad = f", {row['violations']} VIOLATIONS" if row["violations"] else ""
        bad += f", {row['too_slow']} over {fuzz.PARSE_BOUND_S * 1000:.0f} ms" if row["too_slow"] else ""
        rows.append((f"fuzzed inputs: {row['parser']}", f"{row['inputs']} (slowest {row['slowest'] * 1000:.1f} ms{bad})"))
    rows.append(("fuzzed inputs: total / contract violations / over the time bound",
                 f"{sum(r['inputs'] for r in fuzzed)} / {sum(r['violations'] for r in fuzzed)} / "
                 f"{sum(r['too_slow'] for r in fuzzed)} ({t_fuzz:.0f} s)"))
    stats = faults["faulty"]["stats"]
    for kind in FAULT_KINDS:
        rows.append((f"faults injected / survived: {kind}", f"{stats['faults'][kind]} / {stats['faults'][kind] if faults['same_results'] else 0}"))
    total = sum(stats["faults"].values())
    rows.append(("faults: total of requests", f"{total} of {stats['requests']} ({total / stats['requests']:.0%})"))
    rows.append(("faults: retries (max for one request, bound 10)",
                 f"{faults['faulty']['retries']} ({faults['faulty']['max_retries_one_request']}); failed requests {faults['faulty']['failures']}"))
    rows.append(("faults: results equal to the clean run", "yes" if faults["same_results"] else "NO"))
    clean_wall = faults["clean"]["wall"]
    rows.append(("slowdown under 20% faults (short backoff)",
                 f"{faults['faulty']['wall'] / clean_wall:.2f}x ({clean_wall:.1f} s -> {faults['faulty']['wall']:.1f} s)"))
    rows.append(("slowdown under 20% faults (default backoff)",
                 f"{faults['faulty_default']['wall'] / clean_wall:.2f}x ({clean_wall:.1f} s -> {faults['faulty_default']['wall']:.1f} s)"))
    rows.append(("kills (SIGKILL mid-run) survived", f"{kills['kills']} (torn lines repaired: {kills['torn_lines_repaired']})"))
    rows.append(("episodes lost (target 0)", str(kills["lost"])))
    rows.append(("duplicate episodes (target 0)", str(kills["duplicates"])))
    rows.append(("killed run equal to uninterrupted (episodes + summary)", "yes" if kills["same_results"] else "NO"))
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(f"\nfault runs: Game of 24, {args.puzzles} puzzles, oracle:0.3 behind the loopback server, "
          "--timeout 0.5, --max-retries 10, hangs 2 s, Retry-After 0.05 s; kills: 60 puzzles, concurrency 4")


if __name__ == "__main__":
    main()
