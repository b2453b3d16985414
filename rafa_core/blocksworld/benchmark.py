"""BlocksWorld declared for the driver: ``blocksworld/run_mcts.py`` (RAP), ``blocksworld/run_rafa_mcts.py`` (RAFA).

The original's flags (``--task --model_name --model_path --ckpt_path --num_gpus --data_path
--rollouts --max_depth --alpha --n_samples --prompt_path --name --verbose --single_run
--resume_file_idx --controller-addr --worker-address``), the shared flags, ``--backend``,
and one flag per way this project's search differs from the original's (``--improved``
turns all of them on; the defaults run the original's algorithm).  Without ``--backend``: ``--base-url`` serves
``--model_name`` through an OpenAI-compatible server (vLLM); else ``--model_path`` /
``--model_name`` load an ``hf`` model; else the embedded ``local`` model.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..benchmark import Benchmark, Run
from ..cli import build_llm, non_negative_int, open_cache, positive_float, positive_int, str2bool
from ..llm.base import BaseLLM
from ..llm.errors import UserError
from ..llm.registry import BackendOptions
from ..llm.usage import Usage
from ..runner import RUNTIME_KEYS, Batch, RunResult
from .distributed import DistContext, init_distributed, shutdown_distributed
from .episodes import IMPROVED, SearchSettings, run_rafa, run_rap
from .oracle import make_oracle
from .pddl_io import Instance, load_instance_set
from .prompts import load_prompts

ALL_INSTANCES = 10000  # the original's --single_run default: every instance
METHODS = {"rap": "RAP (MCTS, no acting)", "rafa": "RAFA (MCTS, acting and observing)"}
# The paper's models; --model_name Vicuna alone means the 13B one.
MODEL_ALIASES = {
    "vicuna": "lmsys/vicuna-13b-v1.3",
    "vicuna-13b": "lmsys/vicuna-13b-v1.3",
    "vicuna-33b": "lmsys/vicuna-33b-v1.3",
}


def add_flags(parser: argparse.ArgumentParser, default_data: Path | None) -> None:
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
    parser.add_argument("--prompt_path", default=None, help="a prompt set JSON (python -m rafa_core.blocksworld.prompts dumps the default)")
    parser.add_argument("--name", default=None, help="run name (default from the flags); the run goes to runs/blocksworld/<name>")
    parser.add_argument("--verbose", nargs="?", const=True, default=False, type=str2bool,
                        help="print each instance's trajectory (true/false)")
    parser.add_argument("--single_run", nargs="?", const=-1, default=None, type=int,
                        help="run instance N only, as the original (10000: all); bare: the one at --resume_file_idx")
    parser.add_argument("--resume_file_idx", type=non_negative_int, default=0,
                        help="start at this instance; the skipped ones are not run and not counted")
    parser.add_argument("--task", choices=["mcts"], default="mcts", help="kept from the original (only mcts)")
    parser.add_argument("--n_samples", type=positive_int, default=10, help="kept from the original, which never used it")
    parser.add_argument("--ckpt_path", default=None, help="the original's LLaMA checkpoint directory (= --model_path)")
    parser.add_argument("--controller-addr", "--worker-address", dest="unused_address", default=None,
                        help="kept from the original, which never used them")
    add_search_flags(parser)
    parser.add_argument("--oracle_priors", choices=["flat", "informative"], default="informative",
                        help="priors of the simulated oracle backend (default informative)")


def _flag(parser: argparse.ArgumentParser, name: str, help: str, **kwargs: Any) -> None:
    if "choices" in kwargs:
        parser.add_argument(name, default=None, help=help, **kwargs)
    else:  # a boolean: bare = true, or true/false
        parser.add_argument(name, nargs="?", const=True, default=None, type=str2bool, help=help, **kwargs)


def add_search_flags(parser: argparse.ArgumentParser) -> None:
    """Each difference from the original's search; unset = the original, ``--improved`` = ours."""
    group = parser.add_argument_group("search: the original's by default; --improved = all of this project's variants")
    group.add_argument("--improved", action="store_true",
                       help="every variant below at this project's value (each can still be set alone)")
    _flag(group, "--allow_undo", "propose the action that undoes the previous one (original: true; improved: false)")
    _flag(group, "--prior_context", "the prior's prompt: planbench = the original's (state at the last even depth, "
          "last 1-2 actions scored), trajectory = the whole trajectory (improved)", choices=["planbench", "trajectory"])
    _flag(group, "--backup_mean", "path mean in the backup: k+1 = sum/(k+1) (original), k = sum/k (improved)",
          choices=["k+1", "k"])
    _flag(group, "--backup_scope", "backup from the iteration's start node (original) or from the root (improved)",
          choices=["start", "root"])
    _flag(group, "--memory_propagate", "RAFA: re-add the path's means after each real step (original: true)")
    _flag(group, "--best_mean", "best trajectory's mean: depth+1 = (0+sum)/(depth+1) (original), depth = sum/depth",
          choices=["depth+1", "depth"])
    _flag(group, "--skip_exhausted", "selection passes over fully explored subtrees (improved)")
    _flag(group, "--mark_failed", "RAFA: a trajectory that really failed is no longer the best one (improved)")
    _flag(group, "--stop_when_solved", "RAFA: no further episode after one reached the goal (improved)")


def search_settings(args: argparse.Namespace) -> SearchSettings:
    base = SearchSettings.improved() if args.improved else SearchSettings()
    chosen = {name: getattr(args, name) for name in IMPROVED if getattr(args, name, None) is not None}
    return replace(base, rollouts=args.rollouts, max_depth=args.max_depth, alpha=args.alpha, w_exp=args.w_exp, **chosen)


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

        llm: BaseLLM = HFLLM(spec[3:], tp_plan="auto", usage=usage, cache=cache, concurrency=4 * args.concurrency,
                              seed=args.seed)
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
    single = args.single_run
    if single is None or single == ALL_INSTANCES:
        return instances[start:]
    if single == -1:  # bare --single_run
        return instances[start:start + 1]
    if not 0 <= single < len(instances):
        raise UserError(f"--single_run {single}: the set has instances 0..{len(instances) - 1}")
    return [instances[single]] if single >= start else []


def resolve_data_path(given: str, default_data: Path | None) -> tuple[Path, str | None]:
    """(the set to load, a note): the original's ``data/blocksworld/step_N.json`` falls back to
    this project's generated step_N set, with a note saying so."""
    path = Path(given)
    if path.is_file() or default_data is None:
        return path, None
    ours = default_data.parent / path.name
    if path.parts[-3:-1] == ("data", "blocksworld") and ours.is_file():
        return ours, (f"note: {given} (the original's PlanBench set) is not here; running this project's generated "
                      f"set {ours} instead. For the PlanBench sets pass their JSON with --data_path "
                      "(either format loads; see blocksworld/data/README.md)")
    raise UserError(f"instance set not found: {given} (this project's sets: {default_data.parent}/step_4.json and "
                    "step_6.json; published sets load through --data_path, see blocksworld/data/README.md)")


def run_name(method: str, args: argparse.Namespace, spec: str) -> str:
    if args.name:
        name = args.name
    else:
        data = Path(args.data_path).stem if args.data_path else "data"
        name = f"{method}_{data}_{spec}_r{args.rollouts}_d{args.max_depth}_a{args.alpha:g}"
        if args.improved:
            name += "_improved"
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


def describe_settings(settings: SearchSettings) -> str:
    original = SearchSettings()
    as_original = [n for n in IMPROVED if getattr(settings, n) == getattr(original, n)]
    as_improved = [n for n in IMPROVED if getattr(settings, n) != getattr(original, n)]
    if not as_improved:
        return "the original's (--improved for this project's variants)"
    if not as_original:
        return "--improved (all of this project's variants)"
    if len(as_improved) > len(as_original):
        return "--improved except " + ", ".join(f"{n}={getattr(settings, n)}" for n in as_original)
    return "the original's except " + ", ".join(f"{n}={getattr(settings, n)}" for n in as_improved)


def add_original_metrics(summary: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """The original's ``total_correct`` (correct answers per iteration / episode, summed over
    instances) and the instances solved in any of them, for summary.json.  A
    RAFA run stopped at its first success (``--stop_when_solved``) counts as solved after it."""
    vectors = [list(r.get("total_correct") or [0]) for r in records]
    width = max((len(v) for v in vectors), default=0)
    padded = [v + v[-1:] * (width - len(v)) for v in vectors]
    total = [sum(v[i] for v in padded) for i in range(width)]
    return {**summary, "total_correct": total, "solved_any": sum(1 for r in records if r.get("solved_any"))}


@dataclass
class Job:
    """One run's objects: the launch, the instances, the prompts, the search settings."""

    ctx: DistContext
    instances: dict[int, Instance] = field(default_factory=dict)
    prompts: Any = None
    settings: SearchSettings | None = None
    scratch: tempfile.TemporaryDirectory | None = None


@dataclass(frozen=True)
class BlocksWorld(Benchmark):
    method: str = "rafa"  # "rap": plan only (run_mcts.py); "rafa": act and observe (run_rafa_mcts.py)
    default_data: Path | None = None  # the set used without --data_path (the generated step_4.json)

    name = "blocksworld"
    # How the job is launched does not change what it computes: a run may resume differently.
    runtime_keys = RUNTIME_KEYS | {"launch", "num_gpus", "single_run", "name"}
    summary_steps = (1, 2, 4, 6, 8, 12, 20, 40, 60)

    @property
    def prog(self) -> str:  # type: ignore[override]
        return "blocksworld/run_mcts.py" if self.method == "rap" else "blocksworld/run_rafa_mcts.py"

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"BlocksWorld with {METHODS[self.method]}."

    @property
    def progress_desc(self) -> str:  # type: ignore[override]
        return f"blocksworld {self.method}"

    @property
    def summary_title(self) -> str:  # type: ignore[override]
        return f"BlocksWorld {METHODS[self.method]}"

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        add_flags(parser, self.default_data)

    def check(self, run: Run) -> bool:
        args = run.args
        if args.ckpt_path and not args.model_path:
            args.model_path = args.ckpt_path
        ctx = init_distributed()
        run.state = Job(ctx)
        run.speaks = ctx.is_main
        if not ctx.participates:
            print(f"rank {ctx.rank}: {ctx.describe()}", file=sys.stderr)
            return False
        return True

    def choose_backends(self, run: Run) -> dict[str, tuple[str, str]]:
        return {"backend": resolve_backend(run.args)}

    def build_backend(self, run: Run, spec: str, cache: Any) -> BaseLLM:
        return make_backend(spec, run.args, run.usage, run.state.ctx)

    def prepare(self, run: Run) -> None:
        args, job, speak = run.args, run.state, run.speaks
        if speak and job.ctx.distributed:
            print(f"launch: {job.ctx.describe()}", flush=True)
        if not args.data_path:
            raise UserError("no instance set: pass --data_path <set.json>")
        data_path, note = resolve_data_path(args.data_path, self.default_data)
        if note and speak:
            print(note, flush=True)
        chosen = select_instances(load_instance_set(data_path), args)
        if not chosen:
            raise UserError(f"--single_run {args.single_run} is before --resume_file_idx {args.resume_file_idx}: nothing to run")
        job.prompts = load_prompts(args.prompt_path)
        longest = max((i.optimal_length or 0) for i in chosen)
        if speak and longest > args.max_depth:
            print(f"note: optimal plans of up to {longest} actions but --max_depth {args.max_depth}", flush=True)
        job.settings = search_settings(args)
        if speak:
            print(f"search: {describe_settings(job.settings)}", flush=True)
        job.instances = {i.index: i for i in chosen}

    def run_name(self, run: Run) -> str:
        return run_name(self.method, run.args, run.spec)

    def run_dir_path(self, run: Run) -> Path:
        if run.speaks:
            return run.out
        run.state.scratch = tempfile.TemporaryDirectory(prefix="rafa-rank-")  # only rank 0 writes the run
        return Path(run.state.scratch.name)

    def config(self, run: Run) -> dict[str, Any]:
        return {"method": self.method, "backend": run.spec, "out": str(run.out), "llm": run.llm.describe(),
                "launch": run.state.ctx.describe()}

    def max_steps(self, run: Run) -> int:
        return run.args.max_depth * (run.args.rollouts if self.method == "rafa" else 1)

    def schedule(self, run: Run) -> list[Batch]:
        return [Batch(list(run.state.instances))]

    async def episode(self, run: Run, index: Any, ledger: Usage) -> dict[str, Any]:
        job = run.state
        run_one = run_rap if self.method == "rap" else run_rafa
        record = await run_one(job.instances[index], run.llm.with_usage(ledger), job.prompts, job.settings)
        if run.args.verbose and run.speaks:
            print_trajectory(self.method, job.instances[index], record)
        return record

    def summary(self, run: Run, result: RunResult) -> dict[str, Any]:
        return add_original_metrics(result.summary, result.records) if run.speaks else result.summary

    def report(self, run: Run, summary: dict[str, Any]) -> None:
        super().report(run, summary)
        unit = "iteration" if self.method == "rap" else "episode"
        print(f"  solved in any {unit}: {summary['solved_any']}/{summary['episodes']}; "
              f"total_correct (per {unit}): {summary['total_correct']}")

    def close(self, run: Run) -> None:
        if isinstance(run.state, Job):
            if run.state.scratch is not None:
                run.state.scratch.cleanup()
            shutdown_distributed(run.state.ctx)


