"""ALFWorld declared for the driver (``python alfworld/run.py``): RAFA with the original flags.

    python alfworld/run.py --num_trials 11 --num_envs 134 --run_name rafa --use_memory

plus ``--backend`` (actor, world model and critic), ``--reflect_backend``, ``--data``
(the ALFWorld data root; default ``$ALFWORLD_DATA``), ``--config``, ``--improved`` and the
shared flags. By default the agent is the original code's; ``--improved`` turns on every
improvement of ``trials.IMPROVEMENTS`` (each is also a key of the config's ``rafa:``
section, which wins over ``--improved``) and memory, unless ``--use_memory false``.
The trials are batches of the driver's runner (:class:`.trials.TrialLoop`); reflecting after
a trial is the after-batch hook.
"""

from __future__ import annotations

import argparse
import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from ..benchmark import Benchmark, Run
from ..cli import non_negative_int, positive_int, str2bool
from ..llm.errors import UserError
from ..llm.registry import describe_choice
from ..llm.usage import Usage
from ..runner import RUNTIME_KEYS, Batch, RunResult
from .env import DEFAULT_CONFIG, AlfWorld, require_data_dir
from .oracle import oracle_llm
from .trials import IMPROVEMENTS, TrialLoop, TrialSettings

# The original ran a completions model with token log-probabilities (text-davinci-003,
# retired); its closest live successor. Reflections used GPT-4.
ORIGINAL_DEFAULT = "gpt-3.5-turbo-instruct"
ORIGINAL_REFLECT = "gpt-4"
# Changing these does not change what a finished game computed (the config file's content is
# recorded as alfworld_config), so a run may be extended or resumed with them changed.
ALFWORLD_RUNTIME_KEYS = RUNTIME_KEYS | {"num_trials", "start_trial_num", "progress", "config"}


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num_trials", type=positive_int, default=11, help="trials (default 11)")
    p.add_argument("--num_envs", type=positive_int, default=134, help="games (default 134, the unseen split)")
    p.add_argument("--run_name", default="rafa_alfworld", help="names the default --out directory")
    p.add_argument("--use_memory", nargs="?", const=True, default=None, type=str2bool,
                   help="reflections between trials (default off, as the original; on with --improved)")
    p.add_argument("--is_resume", nargs="?", const=True, default=False, type=str2bool,
                   help="continue the run in --resume_dir (any run directory resumes by itself)")
    p.add_argument("--resume_dir", default=None, help="the run directory to continue (with --is_resume)")
    p.add_argument("--start_trial_num", type=non_negative_int, default=0,
                   help="first trial to play; earlier trials must be complete in the run directory")
    p.add_argument("--backend", default=None,
                   help=f"actor / world model / critic (default {ORIGINAL_DEFAULT} with a key, else local)")
    p.add_argument("--reflect_backend", default=None,
                   help=f"reflections (default {ORIGINAL_REFLECT} with an OpenAI model, else the --backend)")
    p.add_argument("--data", default=None, help="ALFWorld data root (default $ALFWORLD_DATA)")
    p.add_argument("--config", default=None, help="YAML config (default alfworld/base_config.yaml)")
    p.add_argument("--progress", nargs="?", const=True, default=True, type=str2bool, help="progress bar (default on)")
    p.add_argument("--improved", action="store_true",
                   help="turn on all of this project's improvements over the original (README: Differences)")


def load_config(path: str | None) -> dict[str, Any]:
    config = copy.deepcopy(DEFAULT_CONFIG)
    config["rafa"] = {}
    if not path:
        return config
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise UserError(f"cannot read config {path}: {exc.strerror or exc}")
    except yaml.YAMLError as exc:
        raise UserError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}")
    if not isinstance(loaded, dict):
        raise UserError(f"config {path} must be a mapping")
    for key, value in loaded.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def settings_from(args: argparse.Namespace, rafa: dict[str, Any]) -> TrialSettings:
    def number(key: str, default: Any, kind: type) -> Any:
        value = rafa.get(key, default)
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise UserError(f"config rafa.{key} must be a {kind.__name__}, got {value!r}")

    def flag(key: str, default: bool) -> bool:
        value = rafa.get(key, default)
        if isinstance(value, bool):
            return value
        try:
            return str2bool(str(value))
        except argparse.ArgumentTypeError:
            raise UserError(f"config rafa.{key} must be true or false, got {value!r}")

    improved = bool(getattr(args, "improved", False))
    return TrialSettings(
        num_trials=args.num_trials,
        num_envs=args.num_envs,
        use_memory=improved if args.use_memory is None else args.use_memory,
        start_trial=args.start_trial_num,
        max_steps=number("max_steps", 20, int),
        breadth=number("breadth", 2, int),
        depth=number("depth", 2, int),
        discount=number("discount", 0.9, float),
        speculative_leaves=flag("speculative_leaves", False),
        samples=number("samples", 6, int),
        memory_size=number("memory_size", 3, int),
        concurrency=args.concurrency,
        progress=args.progress,
        **{key: flag(key, improved) for key in IMPROVEMENTS},
    )


def reflect_choice(args: argparse.Namespace, backend: str) -> tuple[str, str]:
    if args.reflect_backend:
        return args.reflect_backend, "chosen with a flag"
    kind = backend.split(":", 1)[0]
    if kind in {"oracle", "replay", "local", "hf", "llamacpp"}:
        return backend, "the same model as --backend"
    return ORIGINAL_REFLECT, "the original's reflection model"


@dataclass
class Job:
    """One run's objects: the data, the config file, the trial settings, the trial loop."""

    data: Path
    config: dict[str, Any]
    settings: TrialSettings
    games: AlfWorld | None = None
    loop: TrialLoop | None = None


@dataclass(frozen=True)
class AlfWorldBenchmark(Benchmark):
    default_config: str | Path | None = None  # alfworld/base_config.yaml of the repository

    name = "alfworld"
    prog = "alfworld/run.py"
    description = "RAFA on ALFWorld (look-ahead agent with reflections)"
    original_model = ORIGINAL_DEFAULT
    runtime_keys = ALFWORLD_RUNTIME_KEYS

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        add_flags(parser)

    def check(self, run: Run) -> bool:
        args = run.args
        if args.data is not None:
            os.environ["ALFWORLD_DATA"] = args.data
        data = require_data_dir()
        if args.is_resume and not args.resume_dir:
            raise UserError("--is_resume needs --resume_dir DIR (or rerun with the same --out)")
        config = load_config(args.config or (str(self.default_config) if self.default_config else None))
        run.state = Job(data, config, settings_from(args, config.get("rafa") or {}))
        return True

    def choose_backends(self, run: Run) -> dict[str, tuple[str, str]]:
        backend = describe_choice(run.args.backend, ORIGINAL_DEFAULT, run.args.base_url)
        return {"backend": backend, "reflect backend": reflect_choice(run.args, backend[0])}

    def oracle(self, run: Run):
        return oracle_llm

    def prepare(self, run: Run) -> None:
        job = run.state
        on = [key for key in IMPROVEMENTS if getattr(job.settings, key)]
        print(f"agent: {'improvements on: ' + ', '.join(on) if on else 'as the original code'}; "
              f"memory {'on' if job.settings.use_memory else 'off'}", flush=True)
        job.games = AlfWorld(job.config)
        if job.settings.num_envs > len(job.games):
            print(f"note: {job.data} has {len(job.games)} games; playing {len(job.games)} "
                  f"(not --num_envs {job.settings.num_envs})", flush=True)

    def out_dir(self, run: Run) -> Path:
        args = run.args
        return Path(args.resume_dir if (args.is_resume and args.resume_dir) else args.out or Path("runs") / "alfworld" / args.run_name)

    def config(self, run: Run) -> dict[str, Any]:
        job = run.state
        return {"backend": run.llms["backend"].describe(), "reflect": run.llms["reflect backend"].describe(),
                "data": str(job.data), "games": len(job.games), "alfworld_config": job.config,
                "backend_reason": describe_choice(run.args.backend, ORIGINAL_DEFAULT, run.args.base_url)[1]}

    def max_steps(self, run: Run) -> int:
        return run.state.settings.max_steps

    def progress(self, run: Run) -> bool:
        return run.args.progress

    def concurrency(self, run: Run) -> int:
        return run.state.settings.concurrency  # --concurrency as given (games hold engines: not the API default)

    def schedule(self, run: Run) -> Iterator[Batch]:
        job = run.state
        job.loop = TrialLoop(run.run_dir, job.games, run.llms["backend"], run.llms["reflect backend"], run.usage,
                             job.settings, runner=run.runner)
        return job.loop.schedule()

    async def episode(self, run: Run, index: Any, ledger: Usage) -> dict[str, Any]:
        return await run.state.loop.play(index, ledger)

    async def after_batch(self, run: Run, batch: Batch) -> None:
        await run.state.loop.after_trial(batch)

    def summary(self, run: Run, result: RunResult) -> dict[str, Any]:
        return run.state.loop.final_summary(result.summary.get("stopped"))

    def report(self, run: Run, summary: dict[str, Any]) -> None:
        total = min(run.state.settings.num_envs, len(run.state.games))
        print(f"solved {summary['successes']}/{total} games; by trial: {summary['successes_by_trial']}; "
              f"{summary['llm_calls']} LLM calls; cost ${summary['cost_usd']:.4f}; run dir {run.out}", flush=True)
