"""The contract between a benchmark and the one driver (:mod:`rafa_core.driver`).

A benchmark is a frozen dataclass that subclasses :class:`Benchmark`: its fields are what
the entry point fixes (e.g. BlocksWorld's method, a default data file), its class
attributes and methods declare the rest.  The driver does the generic steps once — parse,
announce the backends, seed, usage ledger, cache, build the LLMs, run directory, run the
schedule (resume included), summary, exit code — and calls the hooks below in that order:

    add_flags(parser)           the benchmark's own flags (the shared ones are added after)
    check(run)                  validate / resolve the flags; False: nothing to do in this process
    choose_backends(run)        {label: (backend string, why)}; each announced as "label: spec (why)"
    prepare(run)                load the data, print notes; set ``run.state`` (the run's own objects)
    run_name(run)               the directory under runs/<name>/ when --out is not given
    config(run)                 what config.json records besides the flags
    schedule(run)               a list of batches, or a generator of them (each after the last ran)
    episode(run, index, ledger) one episode -> its record (a line of episodes.jsonl)
    on_resume(run, records)     restore what finished episodes learned (players, memories)
    after_batch(run, batch)     e.g. reflect after a trial, write an epoch's files
    summary(run, result)        extra metrics for summary.json (or a whole other summary)
    report(run, summary)        the closing lines printed
    close(run)                  always, last (e.g. leave a process group)

Nothing here holds state between runs: a run's objects live in :class:`Run`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable

from .cli import build_llm
from .llm.base import BaseLLM
from .llm.registry import OracleFactory, describe_choice
from .llm.usage import Usage
from .runner import RUNTIME_KEYS, Batch, RunDir, Runner, RunResult, print_summary

SIMULATED_KINDS = frozenset({"oracle", "replay"})


def is_simulated(spec: str) -> bool:
    return spec.split(":", 1)[0] in SIMULATED_KINDS


@dataclass
class Run:
    """One run's objects, handed to every hook."""

    args: argparse.Namespace
    usage: Usage
    specs: dict[str, str] = field(default_factory=dict)  # label -> backend string, in announce order
    llms: dict[str, BaseLLM] = field(default_factory=dict)  # label -> backend (one object per distinct string)
    out: Path = Path(".")
    run_dir: RunDir | None = None
    runner: Runner | None = None
    state: Any = None  # the benchmark's own objects for this run (data, players, ...)
    speaks: bool = True  # False on a distributed rank that only computes
    progress: bool = True

    @property
    def llm(self) -> BaseLLM:
        """The first (for most benchmarks the only) backend."""
        return next(iter(self.llms.values()))

    @property
    def spec(self) -> str:
        return next(iter(self.specs.values()))

    @property
    def simulated(self) -> bool:
        return any(llm.simulated for llm in self.llms.values())

    def say(self, text: str) -> None:
        """Print a line without breaking the progress bar."""
        if self.runner is not None:
            self.runner.say(text)
        else:
            print(text, flush=True)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark's declaration; subclass it (a frozen dataclass) and override the hooks."""

    # Class-level declarations (ClassVar: not constructor fields; a subclass assigns them).
    name: ClassVar[str] = "benchmark"  # python -m rafa_core <name>; runs/<name>/<run name>
    prog: ClassVar[str] = "run.py"  # the entry point shown in usage lines
    description: ClassVar[str] = ""
    original_model: ClassVar[str] = "gpt-4"  # the backend without --backend when a key or --base-url is set
    runtime_keys: ClassVar[frozenset[str]] = RUNTIME_KEYS  # flags a resumed run may change
    summary_title: ClassVar[str] = ""
    summary_steps: ClassVar[tuple[int, ...]] = (1, 2, 3, 5, 10)  # env steps shown in the closing table
    progress_desc: ClassVar[str] = "episodes"
    progress_unit: ClassVar[str] = "ep"

    # -- flags and backends --------------------------------------------------------------------
    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    def check(self, run: Run) -> bool:
        return True

    def choose_backends(self, run: Run) -> dict[str, tuple[str, str]]:
        args = run.args
        return {"backend": describe_choice(args.backend, self.original_model, getattr(args, "base_url", None))}

    def oracle(self, run: Run) -> OracleFactory | None:
        """The simulated backend (``--backend oracle[:rate]``) of this benchmark."""
        return None

    def build_backend(self, run: Run, spec: str, cache: Any) -> BaseLLM:
        return build_llm(spec, run.args, run.usage, oracle=self.oracle(run), cache=cache)

    # -- the run ------------------------------------------------------------------------------------
    def prepare(self, run: Run) -> None:
        pass

    def run_name(self, run: Run) -> str:
        raise NotImplementedError

    def out_dir(self, run: Run) -> Path:
        return Path(run.args.out) if run.args.out else Path("runs") / self.name / self.run_name(run)

    def run_dir_path(self, run: Run) -> Path:
        """Where the files go (a rank that only computes writes to a scratch directory)."""
        return run.out

    def config(self, run: Run) -> dict[str, Any]:
        return {"backend": run.spec, "out": str(run.out), "llm": run.llm.describe()}

    def max_steps(self, run: Run) -> int:
        raise NotImplementedError

    def concurrency(self, run: Run) -> int:
        return run.args.concurrency

    def progress(self, run: Run) -> bool:
        return True

    def postfix(self, run: Run, records: list[dict[str, Any]]) -> str | None:
        """The progress bar's text (None: success rate and cost)."""
        return None

    def schedule(self, run: Run) -> list[Batch] | Iterable[Batch]:
        raise NotImplementedError

    async def episode(self, run: Run, index: Any, ledger: Usage) -> dict[str, Any]:
        raise NotImplementedError

    def on_resume(self, run: Run, records: list[dict[str, Any]]) -> None:
        pass

    async def after_batch(self, run: Run, batch: Batch) -> None:
        pass

    # -- the end ------------------------------------------------------------------------------------
    def summary(self, run: Run, result: RunResult) -> dict[str, Any]:
        return result.summary

    def report(self, run: Run, summary: dict[str, Any]) -> None:
        print_summary(self.summary_title or self.name, summary, run.out, steps=self.summary_steps)

    def close(self, run: Run) -> None:
        pass
