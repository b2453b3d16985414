"""``python alfworld/run.py``: RAFA on ALFWorld, with the original flags.

    python alfworld/run.py --num_trials 11 --num_envs 134 --run_name rafa --use_memory

plus ``--backend`` (actor, world model and critic), ``--reflect_backend``, ``--data``
(the ALFWorld data root; default ``$ALFWORLD_DATA``), ``--config``, ``--improved`` and the
shared flags. By default the agent is the original code's; ``--improved`` turns on every
improvement of ``trials.IMPROVEMENTS`` (each is also a key of the config's ``rafa:``
section, which wins over ``--improved``) and memory, unless ``--use_memory false``.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from ..cli import (
    ArgumentParser,
    EXIT_BUDGET,
    add_shared_flags,
    announce_backend,
    build_llm,
    config_from_args,
    non_negative_int,
    open_cache,
    positive_int,
    seed_everything,
    str2bool,
)
from ..llm.base import UserError
from ..llm.registry import describe_choice
from ..llm.usage import Usage
from ..runner import RUNTIME_KEYS, RunDir
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


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="alfworld/run.py", description="RAFA on ALFWorld (look-ahead agent with reflections)")
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
    add_shared_flags(p)
    add_improved_flag(p)
    return p


def add_improved_flag(p: argparse.ArgumentParser) -> None:
    try:
        p.add_argument("--improved", action="store_true",
                       help="turn on all of this project's improvements over the original (README: Differences)")
    except argparse.ArgumentError:  # the shared flags define it already
        pass


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


async def main(argv: list[str] | None = None, default_config: str | Path | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.data is not None:
        os.environ["ALFWORLD_DATA"] = args.data
    data = require_data_dir()
    if args.is_resume and not args.resume_dir:
        raise UserError("--is_resume needs --resume_dir DIR (or rerun with the same --out)")
    config = load_config(args.config or (str(default_config) if default_config else None))
    settings = settings_from(args, config.get("rafa") or {})

    backend = announce_backend(args.backend, ORIGINAL_DEFAULT, args)
    reflect_spec, why = reflect_choice(args, backend)
    print(f"reflect backend: {reflect_spec}{' [SIMULATED]' if reflect_spec.startswith(('oracle', 'replay')) else ''} ({why})", flush=True)
    on = [key for key in IMPROVEMENTS if getattr(settings, key)]
    print(f"agent: {'improvements on: ' + ', '.join(on) if on else 'as the original code'}; "
          f"memory {'on' if settings.use_memory else 'off'}", flush=True)
    seed_everything(args.seed)

    out = Path(args.resume_dir if (args.is_resume and args.resume_dir) else args.out or Path("runs") / "alfworld" / args.run_name)
    games = AlfWorld(config)
    if settings.num_envs > len(games):
        print(f"note: {data} has {len(games)} games; playing {len(games)} (not --num_envs {settings.num_envs})", flush=True)
    usage = Usage(max_cost=args.max_cost)
    cache = open_cache(args)
    llm = build_llm(backend, args, usage, oracle=oracle_llm, cache=cache)
    reflect_llm = llm if reflect_spec == backend else build_llm(reflect_spec, args, usage, oracle=oracle_llm, cache=cache)
    run_config = config_from_args(
        args,
        backend=llm.describe(),
        reflect=reflect_llm.describe(),
        data=str(data),
        games=len(games),
        alfworld_config=config,
        backend_reason=describe_choice(args.backend, ORIGINAL_DEFAULT, args.base_url)[1],
    )
    run_dir = RunDir(out, run_config, runtime_keys=ALFWORLD_RUNTIME_KEYS)
    try:
        summary = await TrialLoop(run_dir, games, llm, reflect_llm, usage, settings).run()
    finally:
        await llm.aclose()
        if reflect_llm is not llm:
            await reflect_llm.aclose()
    by_trial = summary["successes_by_trial"]
    total = min(settings.num_envs, len(games))
    print(f"solved {summary['successes']}/{total} games; by trial: {by_trial}; "
          f"{summary['llm_calls']} LLM calls; cost ${summary['cost_usd']:.4f}; run dir {out}", flush=True)
    if summary.get("stopped") == "budget":
        return EXIT_BUDGET
    return 0


def entry(default_config: str | Path | None = None) -> int:
    from ..cli import run_main

    return run_main(lambda: main(sys.argv[1:], default_config=default_config))
