"""``blocksworld/run_mcts.py`` (RAP) and ``blocksworld/run_rafa_mcts.py`` (RAFA).

The original's flags (``--model_name --model_path --num_gpus --data_path --rollouts
--max_depth --alpha --prompt_path --name --verbose --single_run --resume_file_idx``), the
shared flags, and ``--backend``.  Without ``--backend``: ``--base-url`` serves
``--model_name`` through an OpenAI-compatible server (vLLM); else ``--model_path`` /
``--model_name`` load an ``hf`` model; else the embedded ``local`` model.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from ..cli import (
    ArgumentParser,
    add_shared_flags,
    build_llm,
    config_from_args,
    non_negative_int,
    open_cache,
    positive_float,
    positive_int,
    run_main,
    seed_everything,
    str2bool,
)
from ..llm.base import BaseLLM, UserError
from ..llm.registry import BackendOptions
from ..llm.usage import Usage
from ..runner import RUNTIME_KEYS, RunDir, Runner, print_summary
from .distributed import DistContext, init_distributed, shutdown_distributed
from .episodes import SearchSettings, run_rafa, run_rap
from .oracle import make_oracle
from .pddl_io import Instance, load_instance_set
from .prompts import load_prompts

# How the job is launched does not change what it computes: a run may resume differently.
BLOCKSWORLD_RUNTIME_KEYS = RUNTIME_KEYS | {"launch", "num_gpus", "single_run", "name"}
METHODS = {"rap": "RAP (MCTS, no acting)", "rafa": "RAFA (MCTS, acting and observing)"}
# The paper's models; --model_name Vicuna alone means the 13B one.
MODEL_ALIASES = {
    "vicuna": "lmsys/vicuna-13b-v1.3",
    "vicuna-13b": "lmsys/vicuna-13b-v1.3",
    "vicuna-33b": "lmsys/vicuna-33b-v1.3",
}


def build_parser(method: str, default_data: Path | None) -> argparse.ArgumentParser:
    prog = "blocksworld/run_mcts.py" if method == "rap" else "blocksworld/run_rafa_mcts.py"
    parser = ArgumentParser(prog=prog, description=f"BlocksWorld with {METHODS[method]}.")
    parser.add_argument("--backend", default=None,
                        help="hf:<id or path>, local, an OpenAI-compatible model name (with --base-url), "
                             "oracle[:error rate] (simulated), replay:<file>; default: see --model_name")
    parser.add_argument("--model_name", default=None,
                        help="Vicuna (= lmsys/vicuna-13b-v1.3), Vicuna-33B, LLaMA (needs --model_path) or any HF id; "
                             "with --base-url, the served model's name")
    parser.add_argument("--model_path", default=None, help="a local model directory (loaded with the hf backend)")
    parser.add_argument("--num_gpus", type=positive_int, default=1,
                        help="kept from the original: GPUs used are torch.distributed.run's --nproc_per_node "
                             "(tensor parallel) or, launched plainly, all visible GPUs (device_map=auto)")
    parser.add_argument("--data_path", "--data", dest="data_path",
                        default=str(default_data) if default_data else None,
                        help="instance set JSON (default: the generated step_4.json)")
    parser.add_argument("--rollouts", type=positive_int, default=10,
                        help="RAP: search iterations; RAFA: episodes (default 10)")
    parser.add_argument("--max_depth", type=positive_int, default=4, help="plan length bound (4 for step 4, 6 for step 6)")
    parser.add_argument("--alpha", type=_unit_float, default=0.5, help="reward = prior^alpha * r1^(1-alpha)")
    parser.add_argument("--w_exp", type=positive_float, default=1.0, help="UCT exploration weight")
    parser.add_argument("--allow_undo", nargs="?", const=True, default=False, type=str2bool,
                        help="also propose the action that undoes the previous one, as the original did "
                             "(default false: it never shortens a plan and triples the tree)")
    parser.add_argument("--prompt_path", default=None, help="a prompt set JSON (python -m rafa_core.blocksworld.prompts dumps the default)")
    parser.add_argument("--name", default=None, help="run name (default from the flags); the run goes to runs/blocksworld/<name>")
    parser.add_argument("--verbose", nargs="?", const=True, default=False, type=str2bool,
                        help="print each instance's trajectory (true/false)")
    parser.add_argument("--single_run", nargs="?", const=True, default=False, type=str2bool,
                        help="run one instance only (the one at --resume_file_idx)")
    parser.add_argument("--resume_file_idx", type=non_negative_int, default=0,
                        help="start at this instance; the skipped ones are not run and not counted")
    parser.add_argument("--oracle_priors", choices=["flat", "informative"], default="informative",
                        help="priors of the simulated oracle backend (default informative)")
    add_shared_flags(parser)
    return parser


def _unit_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1]: {text}")
    return value


def resolve_backend(args: argparse.Namespace) -> tuple[str, str]:
    """(backend string, why) from --backend, --base-url, --model_path / --model_name."""
    if args.backend:
        return args.backend, "chosen with --backend"
    if args.base_url:
        if args.model_name or args.model_path:
            served = MODEL_ALIASES.get((args.model_name or "").lower(), args.model_name or args.model_path)
            return served, f"--model_name served at {args.base_url}"
        return MODEL_ALIASES["vicuna"], f"the original's default model, served at {args.base_url}"
    if args.model_path:
        return f"hf:{args.model_path}", "--model_path, loaded with transformers"
    if args.model_name:
        name = args.model_name.strip()
        if name.lower() == "llama":
            raise UserError("--model_name LLaMA needs --model_path (the original LLaMA weights are not on the Hub)")
        return f"hf:{MODEL_ALIASES.get(name.lower(), name)}", "--model_name, loaded with transformers"
    return "local", "embedded SmolLM2-135M-Instruct: no --backend, --model_name or --model_path"


def make_backend(spec: str, args: argparse.Namespace, usage: Usage, ctx: DistContext) -> BaseLLM:
    def oracle(rate: float, options: BackendOptions) -> BaseLLM:
        return make_oracle(rate, options, priors=args.oracle_priors)

    cache = open_cache(args)
    if spec.startswith("hf:") and ctx.tensor_parallel:
        from ..llm.hf import HFLLM

        llm: BaseLLM = HFLLM(spec[3:], tp_plan="auto", usage=usage, cache=cache, concurrency=4 * args.concurrency)
    else:
        llm = build_llm(spec, args, usage, oracle=oracle, cache=cache)
    if not llm.supports_loglik:
        raise UserError(
            f"backend {spec!r} cannot score log-likelihoods (loglik), which the MCTS priors need; "
            "use hf:<model>, local, or a completions server with prompt log-probabilities (vLLM)"
        )
    return llm


def select_instances(instances: list[Instance], args: argparse.Namespace) -> list[Instance]:
    start = args.resume_file_idx
    if start >= len(instances):
        raise UserError(f"--resume_file_idx {start} is past the last instance ({len(instances) - 1})")
    chosen = instances[start:]
    return chosen[:1] if args.single_run else chosen


def run_name(method: str, args: argparse.Namespace, spec: str) -> str:
    if args.name:
        name = args.name
    else:
        data = Path(args.data_path).stem if args.data_path else "data"
        name = f"{method}_{data}_{spec}_r{args.rollouts}_d{args.max_depth}_a{args.alpha:g}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def print_trajectory(method: str, instance: Instance, record: dict[str, Any]) -> None:
    from tqdm import tqdm

    print = tqdm.write  # noqa: A001 - keep the progress bar intact
    status = "solved" if record.get("success") else "failed"
    print(f"[{instance.index}] {instance.source}: {status} (env steps {record.get('env_steps')})")
    print(f"    goal: {record['instance']['goal']}")
    if method == "rap":
        print(f"    plan: {'; '.join(record['plan']) or '(empty)'}")
        return
    for episode in record["episodes"]:
        mark = "goal" if episode["success"] else "no goal"
        print(f"    episode {episode['episode']}: {'; '.join(episode['actions'])} -> {mark}"
              f" ({episode['wrong_predictions']} wrong predictions)")


async def amain(method: str, argv: Sequence[str] | None = None, *, default_data: Path | None = None,
                progress: bool = True) -> dict[str, Any] | None:
    """Parse flags and run every selected instance; returns the summary (None on idle ranks)."""
    args = build_parser(method, default_data).parse_args(argv)
    ctx = init_distributed()
    try:
        if not ctx.participates:
            print(f"rank {ctx.rank}: {ctx.describe()}", file=sys.stderr)
            return None
        return await _run(method, args, ctx, progress=progress)
    finally:
        shutdown_distributed(ctx)


async def _run(method: str, args: argparse.Namespace, ctx: DistContext, *, progress: bool) -> dict[str, Any]:
    speak = ctx.is_main
    spec, why = resolve_backend(args)
    if speak:
        simulated = " [SIMULATED]" if spec.split(":", 1)[0] in {"oracle", "replay"} else ""
        print(f"backend: {spec}{simulated} ({why})", flush=True)
        if ctx.distributed:
            print(f"launch: {ctx.describe()}", flush=True)
    if not args.data_path:
        raise UserError("no instance set: pass --data_path <set.json>")
    seed_everything(args.seed)
    instances = load_instance_set(args.data_path)
    chosen = select_instances(instances, args)
    prompts = load_prompts(args.prompt_path)
    longest = max((i.optimal_length or 0) for i in chosen)
    if speak and longest > args.max_depth:
        print(f"note: optimal plans of up to {longest} actions but --max_depth {args.max_depth}", flush=True)
    settings = SearchSettings(rollouts=args.rollouts, max_depth=args.max_depth, alpha=args.alpha, w_exp=args.w_exp,
                              allow_undo=args.allow_undo)
    out = args.out or f"runs/blocksworld/{run_name(method, args, spec)}"
    scratch = None if speak else tempfile.TemporaryDirectory(prefix="rafa-rank-")
    usage = Usage(max_cost=args.max_cost)
    llm = make_backend(spec, args, usage, ctx)
    try:
        config = config_from_args(args, method=method, backend=spec, out=out, llm=llm.describe(), launch=ctx.describe())
        run_dir = RunDir(out if scratch is None else scratch.name, config, runtime_keys=BLOCKSWORLD_RUNTIME_KEYS)
        max_steps = args.max_depth * (args.rollouts if method == "rafa" else 1)
        runner = Runner(run_dir, usage, max_steps=max_steps, concurrency=args.concurrency,
                        simulated=llm.simulated, progress=progress and speak, desc=f"blocksworld {method}")
        by_index = {i.index: i for i in chosen}
        run_one = run_rap if method == "rap" else run_rafa

        async def episode(index: int, ledger: Usage) -> dict[str, Any]:
            record = await run_one(by_index[index], llm.with_usage(ledger), prompts, settings)
            if args.verbose and speak:
                print_trajectory(method, by_index[index], record)
            return record

        result = await runner.run(list(by_index), episode)
    finally:
        await llm.aclose()
        if scratch is not None:
            scratch.cleanup()
    if speak:
        print_summary(f"BlocksWorld {METHODS[method]}", result.summary, out, steps=(1, 2, 4, 6, 8, 12, 20, 40, 60))
    return result.summary


def main(method: str, argv: Sequence[str] | None = None, *, default_data: Path | None = None) -> int:
    async def entry() -> int:
        summary = await amain(method, argv, default_data=default_data)
        return 3 if summary is not None and summary.get("stopped") == "budget" else 0

    return run_main(entry)
