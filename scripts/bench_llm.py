"""Benchmarks of the LLM layer, measured in one run on the embedded SmolLM2-135M-Instruct.

Prints:
  0. loading the local model: first load (GGUF conversion) vs a load from the disk cache;
  a. hf `loglik`: N continuations after a ~200-token prefix, batched vs one at a time
     (continuations/s and the ratio; target >= 3x), and how far the scores differ;
  b. a replay of a finished run from the response cache: backend calls on replay (0);
  c. the LLM layer's overhead per `generate` served from the cache (target < 1 ms).

    python scripts/bench_llm.py            # a few minutes on 2 CPU cores
    python scripts/bench_llm.py --quick    # smaller numbers, for a smoke check
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from rafa_core.llm import ResponseCache, Usage  # noqa: E402
from rafa_core.llm.hf import HFLLM, local_llm, prefer_sleeping_openmp_threads  # noqa: E402

STORY = (
    "The lighthouse keeper climbed the spiral stairs every evening, counting the steps as "
    "his father had taught him, and lit the great lamp before the fishing boats came home. "
)
WORKERS = ["fisherman", "baker", "teacher", "sailor", "mayor", "child", "doctor", "painter"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--continuations", type=int, default=32, help="loglik continuations (default 32)")
    parser.add_argument("--prefix-repeats", type=int, default=6,
                        help="copies of a ~34-token sentence in the loglik prefix (default 6: ~200 tokens)")
    parser.add_argument("--workload", type=int, default=24, help="generate calls in the replayed run (default 24)")
    parser.add_argument("--cached-calls", type=int, default=2000, help="cached generate calls timed (default 2000)")
    parser.add_argument("--skip-conversion", action="store_true",
                        help="do not time a first load with GGUF conversion (saves ~30 s)")
    parser.add_argument("--quick", action="store_true", help="small numbers for a smoke check")
    args = parser.parse_args(argv)
    if args.quick:
        args.continuations, args.workload, args.cached_calls = 8, 6, 300
    return args


def local_in(cache_dir: Path, **kwargs) -> HFLLM:
    """The local model with its converted-weights cache under ``cache_dir``."""
    previous = os.environ.get("RAFA_CACHE_DIR")
    os.environ["RAFA_CACHE_DIR"] = str(cache_dir)
    try:
        return local_llm(**kwargs)
    finally:
        if previous is None:
            os.environ.pop("RAFA_CACHE_DIR", None)
        else:
            os.environ["RAFA_CACHE_DIR"] = previous


async def timed_load(llm: HFLLM) -> float:
    start = time.perf_counter()
    await llm.load()
    return time.perf_counter() - start


# -- 0. loading --------------------------------------------------------------------------
async def bench_loading(args: argparse.Namespace, scratch: Path) -> HFLLM:
    print("0. loading the local model")
    if args.skip_conversion:
        llm = local_llm()
        seconds = await timed_load(llm)
        print(f"   load: {seconds:.1f} s ({llm.stats.loaded_from})")
        return llm
    fresh_cache = scratch / "rafa-cache"
    first = local_in(fresh_cache)
    first_s = await timed_load(first)
    await first.aclose()
    second = local_in(fresh_cache)
    second_s = await timed_load(second)
    print(f"   first load ({first.stats.loaded_from}): {first_s:.1f} s")
    print(f"   later load ({second.stats.loaded_from}): {second_s:.1f} s  -> {first_s / second_s:.0f}x faster")
    return second


# -- a. loglik throughput ----------------------------------------------------------------
async def bench_loglik(llm: HFLLM, args: argparse.Namespace) -> None:
    prefix = STORY * args.prefix_repeats + "One evening, at the harbour,"
    continuations = [
        f" the {WORKERS[i % len(WORKERS)]} waved at boat number {i}." for i in range(args.continuations)
    ]
    ledger = Usage()
    await llm.with_usage(ledger).loglik(prefix, [""])  # warm-up; an empty continuation counts the prefix
    prefix_tokens = ledger.prompt_tokens
    passes_before = llm.stats.forward_passes

    start = time.perf_counter()
    batched = await llm.loglik(prefix, continuations)
    batched_s = time.perf_counter() - start
    batched_passes = llm.stats.forward_passes - passes_before

    start = time.perf_counter()
    single = [(await llm.loglik(prefix, [c]))[0] for c in continuations]
    single_s = time.perf_counter() - start

    n = len(continuations)
    worst = max(abs(a - b) for a, b in zip(batched, single))
    print(f"a. loglik: {n} continuations after a {prefix_tokens}-token prefix")
    print(f"   batched:        {n / batched_s:8.1f} continuations/s  ({batched_s:.2f} s, {batched_passes} forward passes)")
    print(f"   one at a time:  {n / single_s:8.1f} continuations/s  ({single_s:.2f} s, {n} calls)")
    print(f"   speed-up: {single_s / batched_s:.1f}x (target >= 3x); largest score difference {worst:.1e} (limit 1e-4)")


# -- b. replay of a finished run ---------------------------------------------------------
def workload_prompts(count: int) -> list[str]:
    return [f"In one short sentence, what does a {WORKERS[i % len(WORKERS)]} do on day {i}?" for i in range(count)]


async def run_workload(llm: HFLLM, prompts: list[str]) -> list[str]:
    """A small 'run': concurrent greedy generations plus a few critic-style loglik calls."""
    answers = await asyncio.gather(
        *(llm.generate(p, temperature=0.0, max_tokens=8, stop=["\n"]) for p in prompts)
    )
    scores = await asyncio.gather(
        *(llm.loglik(p, [" Yes.", " No."]) for p in prompts[:4])
    )
    return [a[0].text for a in answers] + [f"{s[0]:.4f},{s[1]:.4f}" for s in scores]


async def bench_replay(llm: HFLLM, args: argparse.Namespace, scratch: Path) -> tuple[ResponseCache, list[str]]:
    cache = ResponseCache(scratch / "responses.sqlite")
    prompts = workload_prompts(args.workload)
    first_usage = Usage()
    first = llm.with_usage(first_usage)
    first.cache = cache
    start = time.perf_counter()
    recorded = await run_workload(first, prompts)
    first_s = time.perf_counter() - start

    # A brand-new backend on the same cache, as a re-run of the finished run would have.
    replay_usage = Usage()
    replayer = local_llm(cache=cache, usage=replay_usage)
    start = time.perf_counter()
    replayed = await run_workload(replayer, prompts)
    replay_s = time.perf_counter() - start
    print(f"b. replay of a finished run ({len(prompts)} generate + 4 loglik calls) from the response cache")
    print(f"   first run:  {first_usage.calls} backend calls, {first_s:.1f} s")
    print(
        f"   replay:     {replay_usage.calls} backend calls, {replay_usage.cache_hits} cache hits, "
        f"{replay_s * 1000:.1f} ms, model loaded: {replayer.stats.loaded_from is not None}, "
        f"same answers: {replayed == recorded}"
    )
    return cache, prompts


# -- c. overhead per cached call ---------------------------------------------------------
async def bench_cached_overhead(cache: ResponseCache, prompts: list[str], args: argparse.Namespace) -> None:
    llm = local_llm(cache=cache)  # never loads the model: every call is a cache hit
    per_call: list[float] = []
    for i in range(args.cached_calls):
        prompt = prompts[i % len(prompts)]
        start = time.perf_counter()
        await llm.generate(prompt, temperature=0.0, max_tokens=8, stop=["\n"])
        per_call.append(time.perf_counter() - start)
    assert llm.usage.calls == 0, "a cached call reached the model"
    print(f"c. LLM-layer overhead per cached generate ({args.cached_calls} calls)")
    print(
        f"   median {statistics.median(per_call) * 1e6:.0f} us, mean {statistics.fmean(per_call) * 1e6:.0f} us "
        f"(target < 1000 us)"
    )


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prefer_sleeping_openmp_threads()  # before torch is first imported
    with tempfile.TemporaryDirectory(prefix="rafa-bench-") as tmp:
        scratch = Path(tmp)
        llm = await bench_loading(args, scratch)
        await bench_loglik(llm, args)
        cache, prompts = await bench_replay(llm, args, scratch)
        await bench_cached_overhead(cache, prompts, args)
        cache.close()


if __name__ == "__main__":
    asyncio.run(main())
