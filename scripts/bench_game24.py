#!/usr/bin/env python3
"""What concurrency buys on the Game of 24: RAFA b=1 against a slow server, near its critical path.

A loopback OpenAI-compatible server, in its own process, answers like the simulated oracle
after a fixed delay (100 ms).  Runs go through the real entry point (its driver, on its event
loop) and the real openai backend (its lean HTTP path), with the server's start-up outside the
timed region (an untimed pass over the puzzles first fills the simulated model's solver memo,
so that every timed run meets a server as warm as the others):

1. the original's pattern (one puzzle at a time, one request at a time, candidates valued one
   after another) against the defaults on ``--puzzles`` puzzles: both wall times, their ratio
   (target >= 25x), both request counts and success rates (which must be equal);
2. the critical-path bound of the work each default run did (the same run replayed with every
   request taking exactly the latency, on a virtual clock with free CPU and no limits) and the
   fraction of it achieved;
3. the defaults on ``--scale`` puzzles: wall against the ``--puzzles`` run's (target <= 2x),
   over ``--pairs`` interleaved pairs of runs (the median of each size's walls: on a shared VM
   one run's wall moves by a fifth from one second to the next);
4. client CPU per request at 0 ms latency, for the request path alone (concurrent
   ``generate`` calls) and for whole runs of ``--puzzles`` and ``--scale`` puzzles (target <= 1 ms);
5. a quota that rejects ``--quota-share`` (30%) of the clean run's requests as they came (a token
   bucket replayed over the clean run's send times; bursts of at most 50 ms' worth): first a naive
   client under it (the same in-flight setting, its adaptation switched off: each request only
   waits out its own Retry-After), then ours (AIMD in-flight limit, Retry-After holding back every
   request): the share of requests rejected with a 429, retries per request (mean and most), and
   whether the results equal the clean run's.

Each timed run starts with the garbage of the runs before it collected (as in a process of its
own). Every timed run also prints its CPU (client + simulated server) and the lower bound that CPU
puts on its wall time on this machine's cores: a wall far above it means a loaded machine
(other processes' CPU), one at it means the run was CPU-bound.  Each round starts with the
wall time of a fixed pure-Python loop, so rounds on a machine whose speed moves (a shared VM)
can be told apart.

    python scripts/bench_game24.py [--latency 0.1] [--puzzles 10] [--scale 100] [--pairs 3] [--repeat 3]

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
import dataclasses
import gc
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rafa_core import driver  # noqa: E402
from rafa_core.cli import positive_int, run_event_loop  # noqa: E402
from rafa_core.game24 import prompts  # noqa: E402
from rafa_core.game24.benchmark import Game24  # noqa: E402
from rafa_core.game24.oracle import Game24Oracle  # noqa: E402
from rafa_core.llm.critical_path import DelayedLLM, run_on_virtual_clock  # noqa: E402
from rafa_core.llm import lean_http  # noqa: E402
from rafa_core.llm.errors import BackendError  # noqa: E402
from rafa_core.llm.limiter import Slot  # noqa: E402
from rafa_testkit.loopback import LoopbackProcess, Quota  # noqa: E402
from rafa_core.llm.openai_backend import OpenAILLM  # noqa: E402
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
RAFA_B1 = ["--planning", "tot", "--feedback", *PAPER_FLAGS, "--n_select_sample", "1"]
SEQUENTIAL = ["--concurrency", "1", "--max-in-flight", "1"]  # and candidates one after another
UNLIMITED = ["--max-in-flight", "1000000"]  # the bound: every episode and request at once
CORES = os.cpu_count() or 1
QUOTA_WINDOW_S = 0.05  # the bucket holds 50 ms of the quota; what share it rejects depends on the run's bursts (printed)
# The priced models, and which of them count tokens alike (one simulated run per encoding).
COST_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4")
COUNTED_AS = {"gpt-4o-mini": "gpt-4o-mini", "gpt-4o": "gpt-4o-mini", "gpt-4": "gpt-4"}


def simulated_tokens(name: str, flags: list[str], backend: str, puzzles: int, tokens_as: str, tmp: str) -> dict:
    """One paper configuration on the simulated oracle, its tokens counted as ``tokens_as`` counts them."""
    argv = ["--backend", backend, "--no-cache", "--concurrency", "16", "--tokens-as", tokens_as, *PAPER_FLAGS,
            *flags, "--task_start_index", "900", "--task_end_index", str(900 + puzzles),
            "--out", str(Path(tmp) / f"{name.replace(' ', '_')}-{tokens_as}")]
    with contextlib.redirect_stdout(io.StringIO()):
        return run_event_loop(run_game24(argv, MeasuredGame24()))


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


# -- running the entry point ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MeasuredGame24(Game24):
    """The Game of 24 declaration, keeping every backend it builds (optionally wrapped) for the bench to read."""

    wrap: Callable[[Any], Any] = lambda llm: llm
    built: list[Any] = dataclasses.field(default_factory=list)

    def build_backend(self, run: Any, spec: str, cache: Any) -> Any:
        llm = self.wrap(Game24.build_backend(self, run, spec, cache))
        self.built.append(llm)
        return llm


async def run_game24(argv: list[str], benchmark: MeasuredGame24) -> dict[str, Any]:
    """The run through the one driver, as ``game24/run.py`` runs it; its summary."""
    summary = await driver.run_benchmark(benchmark, argv, progress=False)
    assert summary is not None
    return summary


@contextlib.contextmanager
def send_times_recorded():
    """The monotonic time of every HTTP request the lean path sends (attempts included)."""
    times: list[float] = []
    original = lean_http.LeanTransport.post

    async def post(self: Any, *args: Any, **kwargs: Any) -> Any:
        times.append(time.monotonic())
        return await original(self, *args, **kwargs)

    lean_http.LeanTransport.post = post
    try:
        yield times
    finally:
        lean_http.LeanTransport.post = original


@contextlib.contextmanager
def without_adaptation():
    """A naive client: 429s neither lower the in-flight limit nor hold other requests back
    (each rejected request still waits its own Retry-After before its retry, as the SDK's does)."""
    original = Slot.rate_limited
    Slot.rate_limited = lambda self, retry_after_s=None: None
    try:
        yield
    finally:
        Slot.rate_limited = original


def bucket_rejections(times: list[float], quota: Quota) -> int:
    """How many of requests sent at ``times`` a token bucket would reject (nobody reacting)."""
    level, at, rejected = quota.burst, times[0] if times else 0.0, 0
    for t in sorted(times):
        level = min(quota.burst, level + (t - at) * quota.per_s)
        at = t
        if level >= 1.0:
            level -= 1.0
        else:
            rejected += 1
    return rejected


def quota_rejecting(times: list[float], share: float) -> Quota:
    """The quota (bursts of QUOTA_WINDOW_S' worth) that rejects ``share`` of requests sent at ``times``."""
    def quota(per_s: float) -> Quota:
        return Quota(per_s=per_s, burst=max(1.0, QUOTA_WINDOW_S * per_s))

    low, high = 1e-3, 1e6  # rejections fall as the rate rises: bisect (on a log scale)
    for _ in range(60):
        middle = (low * high) ** 0.5
        if bucket_rejections(times, quota(middle)) > share * len(times):
            low = middle
        else:
            high = middle
    return quota(high)


def game24_argv(backend: list[str], puzzles: int, out: Path, extra: list[str] = ()) -> list[str]:
    return [*backend, "--no-cache", *RAFA_B1, "--task_start_index", "900",
            "--task_end_index", str(900 + puzzles), "--out", str(out), *extra]


def run_http(server: LoopbackProcess, out: Path, puzzles: int, *, sequential: bool = False,
             may_fail: bool = False) -> dict[str, Any]:
    """One run through the real entry point against the server: wall, client and server CPU
    seconds, summary, records, backend, the requests' send times, the server's counters
    (``may_fail``: a backend error ends the run with ``error`` set instead of raising)."""
    argv = game24_argv(["--backend", "gpt-4o-mini", "--base-url", server.base_url], puzzles, out,
                       SEQUENTIAL if sequential else [])
    before = server.stats()
    error, summary = None, None
    benchmark = MeasuredGame24(concurrent_candidates=not sequential)
    # The earlier runs' garbage is collected first: a run in a process of its own would not meet
    # it (a full collection walking earlier runs' results cost up to 0.15 s of a 100-puzzle run).
    gc.collect()
    with send_times_recorded() as sent, contextlib.redirect_stdout(io.StringIO()):
        cpu, start = time.process_time(), time.perf_counter()
        try:
            summary = run_event_loop(run_game24(argv, benchmark))
        except BackendError as exc:
            if not may_fail:
                raise
            error = str(exc)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = server.stats()
    server_counts = {k: after[k] - before[k] for k in ("requests", "rejected")}
    return {"wall": wall, "cpu": cpu, "server_cpu": after["cpu_s"] - before["cpu_s"], "summary": summary,
            "records": episode_results(out) if error is None else None, "llm": benchmark.built[0], "sent": sent,
            "server": server_counts, "error": error}


def cpu_line(run: dict[str, Any], label: str) -> str:
    """The run's CPU, and the wall time it allows at best on this machine's cores."""
    total = run["cpu"] + run["server_cpu"]
    return (f"    CPU of {label}: client {run['cpu']:.2f} s + simulated server {run['server_cpu']:.2f} s = {total:.2f} s "
            f"-> wall >= {total / CORES:.2f} s on {CORES} cores (wall {run['wall']:.2f} s); "
            f"per request: client {run['cpu'] / requests_of(run) * 1000:.2f} ms, "
            f"server {run['server_cpu'] / requests_of(run) * 1000:.2f} ms")


def critical_path(latency: float, puzzles: int, out: Path) -> tuple[float, int]:
    """The bound of the default run's work: (virtual seconds, requests) with free CPU, no limits."""
    argv = game24_argv(["--backend", "oracle"], puzzles, out, ["--concurrency", str(puzzles), *UNLIMITED])
    benchmark = MeasuredGame24(wrap=lambda llm: DelayedLLM(llm, latency))
    with contextlib.redirect_stdout(io.StringIO()):
        summary, seconds = run_on_virtual_clock(lambda: run_game24(argv, benchmark))
    return seconds, summary["llm_calls"]


def episode_results(out: Path) -> list[dict[str, Any]]:
    """The episodes as computed (without usage and timing), in index order."""
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines() if line]
    drop = {"usage", "wall_s"}
    return sorted(({k: v for k, v in r.items() if k not in drop} for r in records), key=lambda r: str(r["index"]))


def request_path_cpu(base_url: str, requests: int = 2000, at_once: int = 32) -> float:
    """CPU seconds of this process per ``generate`` call through the openai backend (no cache)."""
    llm = OpenAILLM("gpt-4o-mini", base_url=base_url, concurrency=at_once)
    texts = [prompts.value_prompt(f"{a} {b} {c}") for a in range(1, 14) for b in range(1, 14) for c in range(1, 14)]

    async def main() -> None:
        async def worker(k: int) -> None:
            for i in range(k, requests, at_once):
                await llm.generate(texts[i % len(texts)], n=3, temperature=0.7, first_sample=3 * (i // len(texts)))

        await llm.generate("warm-up: one connection made outside the timed region")
        cpu = time.process_time()
        await asyncio.gather(*(worker(k) for k in range(at_once)))
        nonlocal_cpu.append(time.process_time() - cpu)
        await llm.aclose()

    nonlocal_cpu: list[float] = []
    run_event_loop(main())
    return nonlocal_cpu[0] / requests


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (of an even number, the lower middle one)."""
    return sorted(runs, key=lambda run: run["wall"])[(len(runs) - 1) // 2]


def requests_of(run: dict[str, Any]) -> int:
    return run["llm"].stats.requests


# -- one measurement ---------------------------------------------------------------------------
def measure(args: argparse.Namespace, tmp: Path, round_no: int) -> dict[str, Any]:
    oracle = Game24Oracle(args.error_rate)
    row: dict[str, Any] = {}
    with LoopbackProcess(oracle, latency_s=args.latency) as server:
        # Untimed: the simulated model's solver fills its memo on every puzzle first, so no timed
        # run pays for it (its CPU is a stand-in's, on our cores; a real server's is not).
        run_http(server, tmp / f"warm{round_no}", max(args.puzzles, args.scale))
        if not args.skip_sequential:
            row["sequential"] = run_http(server, tmp / f"seq{round_no}", args.puzzles, sequential=True)
        pairs = [(run_http(server, tmp / f"def{round_no}-{k}", args.puzzles),
                  run_http(server, tmp / f"scale{round_no}-{k}", args.scale)) for k in range(args.pairs)]
        row["default_walls"] = [small["wall"] for small, _ in pairs]
        row["scaled_walls"] = [large["wall"] for _, large in pairs]
        row["default"] = median_run([small for small, _ in pairs])
        row["scaled"] = median_run([large for _, large in pairs])
    with LoopbackProcess(oracle, latency_s=0.0) as server:
        row["path_cpu"] = request_path_cpu(server.base_url)
        row["zero"] = run_http(server, tmp / f"zero{round_no}", args.puzzles)
        row["zero_scaled"] = run_http(server, tmp / f"zero-scale{round_no}", args.scale)
    quota = quota_rejecting(row["default"]["sent"], args.quota_share)
    row["quota_limit"] = quota
    row["quota_clean_share"] = bucket_rejections(row["default"]["sent"], quota) / len(row["default"]["sent"])
    with LoopbackProcess(oracle, latency_s=args.latency, quota=quota) as server:
        with without_adaptation():
            row["naive"] = run_http(server, tmp / f"naive{round_no}", args.puzzles, may_fail=True)
        row["quota"] = run_http(server, tmp / f"quota{round_no}", args.puzzles)
    return row


def report(args: argparse.Namespace, row: dict[str, Any], bounds: dict[str, tuple[float, int]]) -> dict[str, float]:
    """Print one round; the numbers the closing summary ranges over."""
    numbers: dict[str, float] = {}
    default, scaled, zero = row["default"], row["scaled"], row["zero"]
    bound, bound_requests = bounds["default"]
    if "sequential" in row:
        seq = row["sequential"]
        print(f"  original pattern (--concurrency 1 --max-in-flight 1, candidates one by one): wall {seq['wall']:6.2f} s, "
              f"requests {requests_of(seq)}, success {seq['summary']['success_rate']:.0%}")
    print(f"  defaults, {args.puzzles} puzzles: wall {default['wall']:5.2f} s, requests {requests_of(default)}, "
          f"success {default['summary']['success_rate']:.0%}; critical path {bound:.2f} s "
          f"({bound_requests} requests) -> {bound / default['wall']:.0%} of the bound")
    numbers["achieved"] = bound / default["wall"]
    if "sequential" in row:
        seq = row["sequential"]
        same = (requests_of(seq) == requests_of(default)
                and seq["summary"]["success_rate"] == default["summary"]["success_rate"])
        numbers["speedup"] = seq["wall"] / default["wall"]
        print(f"  speed-up {numbers['speedup']:.1f}x (target >= 25x; the bound allows {seq['wall'] / bound:.0f}x); "
              f"same requests and success: {'yes' if same else 'NO'}")
    scaled_bound, _ = bounds["scaled"]
    numbers["scaling"] = scaled["wall"] / default["wall"]
    print(f"  defaults, {args.scale} puzzles: wall {scaled['wall']:5.2f} s, requests {requests_of(scaled)}, "
          f"success {scaled['summary']['success_rate']:.0%}; critical path {scaled_bound:.2f} s -> "
          f"{scaled_bound / scaled['wall']:.0%}; {args.scale}/{args.puzzles} puzzles wall {numbers['scaling']:.2f}x "
          f"(target <= 2x)")
    if len(row["default_walls"]) > 1:
        walls = " | ".join(f"{small:.2f} s, {large:.2f} s" for small, large in zip(row["default_walls"], row["scaled_walls"]))
        print(f"    walls of {len(row['default_walls'])} interleaved pairs ({args.puzzles}, {args.scale} puzzles; the medians count): {walls}")
    print(cpu_line(default, f"the {args.puzzles}-puzzle run"))
    print(cpu_line(scaled, f"the {args.scale}-puzzle run"))
    numbers["scaled_cpu_bound_s"] = (scaled["cpu"] + scaled["server_cpu"]) / CORES
    numbers["server_cpu_ms"] = scaled["server_cpu"] / requests_of(scaled) * 1000
    numbers["path_cpu_ms"] = row["path_cpu"] * 1000
    zero_scaled = row["zero_scaled"]
    numbers["run_cpu_ms"] = zero["cpu"] / requests_of(zero) * 1000
    numbers["scaled_run_cpu_ms"] = zero_scaled["cpu"] / requests_of(zero_scaled) * 1000
    print(f"  client CPU per request at 0 ms (target <= 1 ms): request path {numbers['path_cpu_ms']:.2f} ms; "
          f"whole run of {args.puzzles} puzzles {numbers['run_cpu_ms']:.2f} ms ({zero['cpu']:.2f} s for "
          f"{requests_of(zero)} requests, start-up included), of {args.scale} puzzles {numbers['scaled_run_cpu_ms']:.2f} ms "
          f"({zero_scaled['cpu']:.2f} s for {requests_of(zero_scaled)} requests)")
    print(cpu_line(zero_scaled, f"the {args.scale}-puzzle run at 0 ms"))
    limit = row["quota_limit"]
    print(f"  quota {limit.per_s:.0f} requests/s in bursts of {limit.burst:.0f} ({QUOTA_WINDOW_S * 1000:.0f} ms' worth): "
          f"it would reject {row['quota_clean_share']:.0%} of the clean run's requests as they were sent")
    for key, label in (("naive", "naive client (no adaptation)"), ("quota", "ours (AIMD + Retry-After)")):
        run = row[key]
        stats, limiter = run["llm"].stats, run["llm"]._shared.limiter
        server = run["server"]
        share = server["rejected"] / max(1, server["requests"])
        same = run["records"] == default["records"]
        print(f"    {label}: {server['rejected']} of {server['requests']} requests rejected ({share:.0%}); retries per "
              f"request mean {stats.retries / max(1, stats.requests - stats.retries):.2f}, most "
              f"{stats.max_retries_one_request} (of --max-retries 6), failed {stats.failures}; in-flight limit went "
              f"down to {limiter.stats.lowest_limit if limiter else '?'}; wall {run['wall']:.2f} s; "
              + (f"the run FAILED: {run['error']}" if run["error"] else
                 f"results identical to the clean run: {'yes' if same else 'NO'}"))
        numbers[f"{key}_rejected"] = share
        numbers[f"{key}_retries_max"] = stats.max_retries_one_request
        numbers[f"{key}_same"] = float(same)
    return numbers


def reference_loop_ms() -> float:
    """A fixed pure-Python loop's wall time: how fast this machine runs Python right now (a
    shared VM's speed moves by half within minutes; the 100-puzzle run is CPU-bound)."""
    start = time.perf_counter()
    sum(i * i for i in range(3_000_000))
    return (time.perf_counter() - start) * 1000


def load_average() -> str:
    """The machine's load (other processes' demand for the cores) as the run sees it."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.1, help="server delay per request (s)")
    parser.add_argument("--puzzles", type=int, default=10)
    parser.add_argument("--scale", type=int, default=100, help="the larger run's puzzles")
    parser.add_argument("--pairs", type=positive_int, default=3,
                        help="interleaved pairs of --puzzles and --scale runs per round (their median walls count)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of measurements")
    parser.add_argument("--quota-share", type=float, default=0.3,
                        help="the share of the clean run's requests (as they were sent) the quota rejects")
    parser.add_argument("--skip-sequential", action="store_true", help="skip the slow original-pattern run")
    parser.add_argument("--error-rate", type=float, default=0.0, help="the oracle's error rate")
    parser.add_argument("--costs", action="store_true", help="measure tokens and cost of the five paper configurations")
    args = parser.parse_args()
    if args.costs:
        return measure_costs(100 if args.puzzles == 10 else args.puzzles, args.error_rate or 0.3)
    print(f"Game of 24, RAFA b=1, loopback server in its own process, {args.latency * 1000:.0f} ms latency, "
          f"oracle error rate {args.error_rate:g} [SIMULATED model]")
    rounds = []
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        # The bound depends on the work only, not on the machine: computed once.
        bounds = {"default": critical_path(args.latency, args.puzzles, Path(tmp) / "bound"),
                  "scaled": critical_path(args.latency, args.scale, Path(tmp) / "scaled-bound")}
        for r in range(args.repeat):
            print(f"round {r + 1}/{args.repeat} (load average {load_average()}; reference loop "
                  f"{reference_loop_ms():.0f} ms)", flush=True)
            row = measure(args, Path(tmp), r)
            numbers = report(args, row, bounds)
            rounds.append(numbers)
            if "sequential" in row:
                ok &= row["sequential"]["summary"]["success_rate"] == row["default"]["summary"]["success_rate"]
            ok &= bool(numbers["quota_same"])
    print(f"load average at the end {load_average()} (1, 5, 15 min; {CORES} cores)")
    if args.repeat > 1:
        print(f"over {args.repeat} rounds (min / median / max):")
        for key, label in (("speedup", "speed-up x"), ("achieved", "share of the bound"), ("scaling", "scaling x"),
                           ("scaled_cpu_bound_s", f"{args.scale}-puzzle CPU bound s"),
                           ("server_cpu_ms", "server CPU ms / request"),
                           ("path_cpu_ms", "request path CPU ms"), ("run_cpu_ms", f"{args.puzzles}-puzzle run ms / req"),
                           ("scaled_run_cpu_ms", f"{args.scale}-puzzle run ms / req"),
                           ("naive_rejected", "naive: rejected share"), ("naive_retries_max", "naive: most retries"),
                           ("quota_rejected", "ours: rejected share"), ("quota_retries_max", "ours: most retries")):
            values = [n[key] for n in rounds if key in n]
            if values:
                print(f"  {label:28s} {min(values):8.2f} {statistics.median(values):8.2f} {max(values):8.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
