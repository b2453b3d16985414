"""One driver for every benchmark: the generic steps, once.

``main(benchmark, argv)`` parses the benchmark's flags and the shared ones, announces the
backends (the first lines of output), seeds, opens the usage ledger and the cache, builds
one backend per distinct backend string, opens the run directory, runs the schedule with
the :class:`~rafa_core.runner.Runner` (which alone resumes), writes and prints the summary
and returns the exit code (0 done, 2 bad input, 3 stopped at ``--max-cost``; see
:mod:`rafa_core.cli`).  What differs between benchmarks is declared in their
:class:`~rafa_core.benchmark.Benchmark`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
from typing import Any, Iterator, Sequence

from .benchmark import Benchmark, Run, is_simulated
from .cli import EXIT_BUDGET, EXIT_OK, ArgumentParser, add_shared_flags, config_from_args, open_cache, run_main, seed_everything
from .llm.base import BaseLLM
from .llm.usage import Usage
from .runner import RunDir, Runner, write_json_atomic


def build_parser(benchmark: Benchmark) -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=benchmark.prog, description=benchmark.description)
    benchmark.add_flags(parser)
    add_shared_flags(parser)
    return parser


def announce(label: str, spec: str, why: str) -> None:
    print(f"{label}: {spec}{' [SIMULATED]' if is_simulated(spec) else ''} ({why})", flush=True)


def build_backends(benchmark: Benchmark, run: Run) -> None:
    """One backend per distinct backend string (one loaded model), in the order announced."""
    specs = list(run.specs.values())
    cache = None if all(map(is_simulated, specs)) and not run.args.cache else open_cache(run.args)
    built: dict[str, BaseLLM] = {}
    for label, spec in run.specs.items():
        if spec not in built:
            built[spec] = benchmark.build_backend(run, spec, cache)
        run.llms[label] = built[spec]


async def close_backends(run: Run) -> None:
    for llm in {id(llm): llm for llm in run.llms.values()}.values():
        await llm.aclose()


async def run_benchmark(benchmark: Benchmark, argv: Sequence[str] | None = None, *,
                        progress: bool = True) -> dict[str, Any] | None:
    """The whole run; its summary (None in a process with nothing to do)."""
    args = build_parser(benchmark).parse_args(argv)
    run = Run(args=args, usage=Usage(max_cost=args.max_cost), progress=progress)
    try:
        if not benchmark.check(run):
            return None
        for label, (spec, why) in benchmark.choose_backends(run).items():
            run.specs[label] = spec
            if run.speaks:
                announce(label, spec, why)
        seed_everything(args.seed)
        benchmark.prepare(run)
        run.out = benchmark.out_dir(run)
        build_backends(benchmark, run)
        try:
            with fewer_collections():
                return await play(benchmark, run)
        finally:
            await close_backends(run)
    finally:
        benchmark.close(run)


@contextlib.contextmanager
def fewer_collections(young: int = 10_000) -> Iterator[None]:
    """Run the cyclic garbage collector's young pass every ``young`` allocations, not every 700.

    A run's requests, answers and search states die young and outside cycles: by default
    the collector spent a sixth of a Game of 24 run's CPU finding that out. Restored afterwards.
    """
    before = gc.get_threshold()
    gc.set_threshold(young, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


async def play(benchmark: Benchmark, run: Run) -> dict[str, Any]:
    """Run directory, runner over the schedule, summary."""
    config = config_from_args(run.args, **benchmark.config(run))
    run.run_dir = RunDir(benchmark.run_dir_path(run), config, runtime_keys=benchmark.runtime_keys)
    run.runner = Runner(run.run_dir, run.usage, max_steps=benchmark.max_steps(run), concurrency=benchmark.concurrency(run),
                        simulated=run.simulated, progress=run.progress and run.speaks and benchmark.progress(run),
                        desc=benchmark.progress_desc, unit=benchmark.progress_unit,
                        postfix=lambda records: benchmark.postfix(run, records))

    async def episode(index: Any, ledger: Usage) -> dict[str, Any]:
        return await benchmark.episode(run, index, ledger)

    async def after_batch(batch: Any) -> None:
        await benchmark.after_batch(run, batch)

    result = await run.runner.run_schedule(benchmark.schedule(run), episode, after_batch=after_batch,
                                           on_resume=lambda records: benchmark.on_resume(run, records))
    summary = benchmark.summary(run, result)
    if summary is not result.summary:
        write_json_atomic(run.run_dir.file("summary.json"), summary)
    if run.speaks:
        benchmark.report(run, summary)
    return summary


def exit_code(summary: dict[str, Any] | None) -> int:
    return EXIT_BUDGET if summary is not None and summary.get("stopped") == "budget" else EXIT_OK


def main(benchmark: Benchmark, argv: Sequence[str] | None = None) -> int:
    """Run ``benchmark`` with the command line ``argv``; the exit code."""
    async def entry() -> int:
        return exit_code(await run_benchmark(benchmark, argv))

    return run_main(entry)
