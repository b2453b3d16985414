"""Episodes and runs: the run directory, resume, concurrency, progress, usage, summary.

A run directory holds ``config.json`` (flags, versions, backend, the code that ran),
``episodes.jsonl`` (one finished episode per line, appended, flushed and fsynced whole),
``requests.jsonl`` (every LLM call, see :mod:`rafa_core.llm.request_log`) and
``summary.json`` (rewritten atomically).  Restarting with the same directory skips finished
episodes, says so, and warns when the library's code changed in between.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

from .llm.errors import BudgetExceeded, UserError
from .llm.request_log import REQUESTS_FILE, RequestLog, labels
from .llm.usage import Usage

# Flags that change how a run goes, not what it computes: a resumed run may change them.
RUNTIME_KEYS = frozenset(
    {"concurrency", "cache", "no_cache", "max_cost", "out", "verbose", "timeout", "max_retries",
     "base_url", "endpoint", "versions", "backend_reason", "argv", "is_resume", "resume_dir", "resume_file_idx",
     "code", "earlier_code", "no_request_log", "price", "estimate"}
)
LIBRARY_ROOT = Path(__file__).resolve().parent

EpisodeFn = Callable[[Any, Usage], Awaitable[dict[str, Any]]]


# -- files -----------------------------------------------------------------------------------
def write_json_atomic(path: Path, data: Any) -> None:
    """Write via a temporary file + rename, so a kill never leaves half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class JsonlLog:
    """An append-only JSONL file of whole records.

    Each record is written as one line, flushed and fsynced. On open, a torn last line
    (the process was killed mid-write) is cut off, so what remains is only whole records.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = self._load_and_repair()

    def _load_and_repair(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        records: list[dict[str, Any]] = []
        good_end = 0
        pos = 0
        for line in raw.splitlines(keepends=True):
            pos += len(line)
            if not line.endswith(b"\n"):
                break  # torn final write
            try:
                record = json.loads(line)
            except ValueError:
                break
            if not isinstance(record, dict):
                break
            records.append(record)
            good_end = pos
        if good_end < len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
                f.flush()
                os.fsync(f.fileno())
        return records

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.records.append(record)


def package_versions(names: Iterable[str] = ("rafa_core", "openai", "transformers", "torch", "genai-prices")) -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def source_hash(root: Path = LIBRARY_ROOT) -> str:
    """A hash of the library's source (its .py and .json files): what made the episodes."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def git_commit(root: Path = LIBRARY_ROOT) -> str | None:
    """The checkout's commit (None outside a git checkout, e.g. an installed wheel)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def code_identity() -> dict[str, Any]:
    return {"git_commit": git_commit(), "source_sha256": source_hash()}


def _without(value: Any, keys: frozenset[str]) -> Any:
    """``value`` with runtime-only keys dropped at any depth (e.g. a backend's endpoint URL)."""
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    return value


class RunDir:
    """The run directory and its config check.

    A directory written with a different config (other than runtime-only flags) is refused
    with one clear line: resuming it would mix two experiments.
    """

    def __init__(self, path: str | Path, config: dict[str, Any], runtime_keys: frozenset[str] = RUNTIME_KEYS) -> None:
        self.path = Path(path)
        self.config = config
        self._request_log: RequestLog | None = None
        code = code_identity()
        earlier: list[dict[str, Any]] = []
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create run directory {self.path}: {exc}")
        config_path = self.path / "config.json"
        if config_path.exists():
            try:
                old = json.loads(config_path.read_text(encoding="utf-8"))
            except ValueError:
                raise UserError(f"{config_path} is not valid JSON; use another --out or delete it")
            new = json.loads(json.dumps(config, default=str))
            differ = sorted(
                k
                for k in set(old) | set(new)
                if k not in runtime_keys
                and _without(old.get(k), runtime_keys) != _without(new.get(k), runtime_keys)
            )
            if differ:
                raise UserError(
                    f"{self.path} holds a run with a different config (differs in: {', '.join(differ)}); "
                    "use another --out or the same flags to resume"
                )
            earlier = _earlier_code(old, code, self.path)
        write_json_atomic(config_path, {**config, "versions": package_versions(), "code": code,
                                        **({"earlier_code": earlier} if earlier else {})})

    def file(self, name: str) -> Path:
        return self.path / name

    def request_log(self) -> RequestLog | None:
        """The run's request log (``requests.jsonl``), unless ``--no-request-log`` was given."""
        if self.config.get("no_request_log"):
            return None
        if self._request_log is None:
            self._request_log = RequestLog(self.file(REQUESTS_FILE))
        return self._request_log


def _earlier_code(old: dict[str, Any], code: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """The code identities this run was made with before; warns (one line) when it changed."""
    earlier = list(old.get("earlier_code") or [])
    before = old.get("code")
    if isinstance(before, dict) and before.get("source_sha256") != code["source_sha256"]:
        print(f"warning: the library's source changed since {path} was started "
              f"({before.get('source_sha256')} -> {code['source_sha256']}); its finished episodes were made "
              "by the old code (both recorded in config.json; use another --out for a clean run)", file=sys.stderr)
        earlier.append(before)
    return earlier


# -- summary -----------------------------------------------------------------------------------
def solved_step(record: dict[str, Any]) -> int | None:
    if not record.get("success"):
        return None
    return int(record.get("solved_at") or record.get("env_steps") or 0)


def summarize(
    records: list[dict[str, Any]],
    usage: Usage,
    *,
    wall_s: float,
    max_steps: int,
    stopped: str | None = None,
    simulated: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    n = len(records)
    successes = sum(1 for r in records if r.get("success"))
    steps = [solved_step(r) for r in records]
    summary = {
        "episodes": n,
        "successes": successes,
        "success_rate": successes / n if n else 0.0,
        **{k: v for k, v in usage.to_json().items() if k != "per_model"},
        "wall_s": round(wall_s, 3),
        "success_by_step": {
            str(k): (sum(1 for s in steps if s is not None and s <= k) / n if n else 0.0)
            for k in range(1, max_steps + 1)
        },
        "per_model": usage.to_json()["per_model"],
        "simulated": simulated,
        "stopped": stopped,
    }
    if extra:
        summary.update(extra)
    return summary


def print_summary(title: str, summary: dict[str, Any], out: str | Path, steps: Iterable[int]) -> None:
    """The closing table of a run: success within k environment steps for the chosen k, usage."""
    by_step = summary["success_by_step"]
    last = len(by_step)
    shown = sorted({k for k in steps if 1 <= k <= last} | ({last} if last else set()))
    simulated = "  [SIMULATED backend]" if summary.get("simulated") else ""
    print(f"\n{title}: {summary['successes']}/{summary['episodes']} solved ({summary['success_rate']:.1%}){simulated}")
    print("  env steps k   " + "".join(f"{k:>7}" for k in shown))
    print("  success <= k  " + "".join(f"{by_step[str(k)]:>7.1%}" for k in shown))
    print(f"  LLM calls {summary['llm_calls']}, tokens {summary['prompt_tokens']} in / "
          f"{summary['completion_tokens']} out, cache hits {summary['cache_hits']}, "
          f"cost ${summary['cost_usd']:.4f}, wall {summary['wall_s']:.1f} s")
    print(f"  run directory: {out}")


# -- running -----------------------------------------------------------------------------------
@dataclass
class RunResult:
    summary: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stopped_for_budget(self) -> bool:
        return self.summary.get("stopped") == "budget"


@dataclass
class Batch:
    """Episodes that run together (at once, up to the concurrency); batches run one after another.

    Trials (ALFWorld) and epochs (Tic-Tac-Toe) are batches; a plain run is one batch.
    """

    indices: list[Any]
    desc: str | None = None  # progress label of this batch (a lazy schedule: one bar per batch)
    concurrency: int | None = None  # at most this many of its episodes at once
    play: bool = True  # False: not played again (before --start_trial_num); only its after-batch hook runs
    tag: Any = None  # the benchmark's own description of the batch (epoch, phase, trial)


AfterBatch = Callable[[Batch], Awaitable[None]]
OnResume = Callable[[list[dict[str, Any]]], None]


class Runner:
    """Runs a schedule of episodes concurrently into a run directory, resuming what is there.

    Resume lives here and only here: finished episodes (lines of ``episodes.jsonl``) are
    skipped, their usage counts toward the totals and the cost cap, and ``on_resume`` gets
    them so a benchmark can restore what its episodes learned (players, memories).
    """

    def __init__(
        self,
        run_dir: RunDir,
        usage: Usage,
        *,
        max_steps: int,
        concurrency: int = 1,
        simulated: bool = False,
        progress: bool = True,
        desc: str = "episodes",
        unit: str = "ep",
        postfix: Callable[[list[dict[str, Any]]], str | None] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.usage = usage
        self.max_steps = max_steps
        self.concurrency = max(1, concurrency)
        self.simulated = simulated
        self.progress = progress
        self.desc = desc
        self.unit = unit
        self.postfix = postfix
        self.bar = None
        self.log = JsonlLog(run_dir.file("episodes.jsonl"))
        if usage.requests is None:
            usage.request_log = run_dir.request_log()
        # Resume: what finished before counts toward totals and the cost cap.
        for record in self.log.records:
            usage.add_json(record.get("usage", {}))

    def finished(self) -> set[str]:
        return {str(r.get("index")) for r in self.log.records}

    async def run(self, indices: list[Any], episode: EpisodeFn) -> RunResult:
        return await self.run_schedule([Batch(list(indices))], episode)

    async def run_schedule(
        self,
        schedule: Iterable[Batch],
        episode: EpisodeFn,
        *,
        on_resume: OnResume | None = None,
        after_batch: AfterBatch | None = None,
    ) -> RunResult:
        """Run the batches in order; the summary covers every scheduled episode.

        A list is known in advance: one resume line and one progress bar for the whole run.
        A generator (batches that depend on earlier ones, e.g. the games a trial replays) is
        drawn one batch at a time, each with its own line and bar.
        """
        if on_resume is not None:
            on_resume(list(self.log.records))
        whole = isinstance(schedule, (list, tuple))
        start = time.monotonic()
        stopped: str | None = None
        wanted: list[Any] = []
        if whole:
            self.bar = self._open([i for b in schedule if b.play for i in b.indices], self.desc)
        try:
            for batch in schedule:
                wanted += batch.indices
                if batch.play:
                    if not whole:
                        self.bar = self._open(batch.indices, batch.desc or self.desc)
                    try:
                        stopped = await self._play(batch, episode)
                    finally:
                        if not whole:
                            self._close()
                    if stopped:
                        break
                if after_batch is not None:
                    await after_batch(batch)
        finally:
            self._close()
            self._flush_requests()
        keep = {str(i) for i in wanted}
        records = [r for r in self.log.records if str(r.get("index")) in keep]
        summary = summarize(records, self.usage, wall_s=time.monotonic() - start, max_steps=self.max_steps,
                            stopped=stopped, simulated=self.simulated)
        write_json_atomic(self.run_dir.file("summary.json"), summary)
        return RunResult(summary=summary, records=records)

    def _open(self, indices: list[Any], desc: str):
        done = self.finished()
        todo = sum(1 for i in indices if str(i) not in done)
        announce_resume(self.run_dir.path, found=len(indices) - todo, todo=todo)
        announce_job(self.run_dir.config, episodes=todo, max_steps=self.max_steps, simulated=self.simulated)
        return self._progress_bar(total=len(indices), initial=len(indices) - todo, desc=desc)

    def _flush_requests(self) -> None:
        requests = self.usage.requests
        if requests is not None:
            requests.flush()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    async def _play(self, batch: Batch, episode: EpisodeFn) -> str | None:
        """Play the batch's unfinished episodes; "budget" when the cost cap stopped them."""
        done = self.finished()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for i in batch.indices:
            if str(i) not in done:
                queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                ledger = self.usage.child()
                t0 = time.monotonic()
                with labels(episode=index):
                    record = await episode(index, ledger)
                record = {"index": index, **record, "usage": ledger.to_json(), "wall_s": round(time.monotonic() - t0, 3)}
                self._flush_requests()  # an episode on record has its calls in the request log
                self.log.append(record)
                self._update_bar(self.bar)

        width = min(batch.concurrency or self.concurrency, self.concurrency, queue.qsize())
        workers = [asyncio.create_task(worker()) for _ in range(width)]
        try:
            if workers:
                await asyncio.gather(*workers)
        except BudgetExceeded as exc:
            print(f"stopped: {exc}; finished episodes are kept", file=sys.stderr)
            return "budget"
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return None

    def say(self, text: str) -> None:
        """A line of output that keeps the progress bar intact."""
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def _progress_bar(self, total: int, initial: int, desc: str):
        if not self.progress:
            return None
        from tqdm import tqdm

        bar = tqdm(total=total, initial=initial, desc=desc, unit=self.unit, dynamic_ncols=True, file=sys.stderr)
        self._update_bar(bar, advance=False)
        return bar

    def _update_bar(self, bar, advance: bool = True) -> None:
        if bar is None:
            return
        records = self.log.records
        text = self.postfix(records) if self.postfix is not None else None
        if text is None:
            rate = sum(1 for r in records if r.get("success")) / len(records) if records else 0.0
            text = f"success={rate:.1%} cost=${self.usage.cost_usd:.4f}"
        bar.set_postfix_str(text, refresh=False)
        if advance:
            bar.update(1)


# -- what a run says before it starts ------------------------------------------------------------
# Flags that make a job smaller, per benchmark (those present in a run's config are named).
SHRINKING_FLAGS = ("task_start_index", "task_end_index", "max_step", "n_generate_sample", "num_envs", "num_trials",
                   "num_train_epochs", "num_eval_epochs", "rollouts", "max_depth", "instances", "max_steps")
EMBEDDED_BACKENDS = frozenset({"local"})


def announce_resume(path: Path, *, found: int, todo: int) -> None:
    """A rerun says what it found: resume is never silent."""
    if found:
        print(f"resuming {path}: {found} finished episode{'s' if found != 1 else ''} found and skipped, "
              f"{todo} to run", file=sys.stderr, flush=True)


def announce_job(config: dict[str, Any], *, episodes: int, max_steps: int, simulated: bool) -> None:
    """On the embedded CPU model, say how big the job is and which flags make it smaller."""
    if simulated or not episodes or not _uses_embedded_model(config):
        return
    flags = " ".join(f"--{k} {config[k]}" for k in SHRINKING_FLAGS if isinstance(config.get(k), int))
    print(f"job: {episodes} episode{'s' if episodes != 1 else ''} x up to {max_steps} steps on the embedded 135M "
          "model on the CPU, each step several LLM calls of seconds each; to make it smaller lower "
          f"{flags or 'the number of episodes and steps'}, "
          "or use a server (--base-url, OPENAI_API_KEY); scripts/demo.sh is a one-minute example",
          file=sys.stderr, flush=True)


def _uses_embedded_model(config: dict[str, Any]) -> bool:
    backends = [config.get(k) for k in ("backend", "X", "O", "reflect")]
    return any((b.get("backend") if isinstance(b, dict) else b) in EMBEDDED_BACKENDS for b in backends)
