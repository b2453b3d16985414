"""The ``llamacpp:<gguf>`` backend: a GGUF model in-process through ``llama-cpp-python``.

Needs the optional extra: ``pip install "rafa_core[llamacpp]"``.  llama.cpp is not
thread-safe per model, so every call runs in a worker thread under one lock; ``n``
samples are ``n`` calls, sample ``k`` seeded with :func:`~rafa_core.llm.draws.sampler_seed`
``(seed, k)`` (its low 31 bits: llama.cpp's seeds are 32-bit, and all ones means "random").  Token
log-probabilities (``logprobs=True`` and ``loglik``) are computed by re-reading the model's
next-token distribution position by position, exactly, without llama-cpp-python's slow
``logits_all`` mode.  The model is opened with its trained context length (``n_ctx`` /
``--context-window`` to choose another), and prompts are counted by its own tokenizer and
chat template (:class:`~rafa_core.llm.tokens.LlamaCppCounter`) to check them against it.

``python -m rafa_core.llm.llamacpp --model <gguf> --port <p>`` starts llama.cpp's
OpenAI-compatible server (``llama_cpp.server``) with the same safety switch as the
in-process backend (see :func:`amx_unusable`, :func:`prefer_passive_openmp`).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import platform
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from .base import BaseLLM, Completion, GenerationResult, Prompt, as_messages
from .draws import sampler_seed
from .errors import BackendError, UserError
from .tokens import LlamaCppCounter

T = TypeVar("T")

_SYS_ARCH_PRCTL = 158
_ARCH_GET_XCOMP_SUPP = 0x1022
_XFEATURE_XTILEDATA = 18


@functools.cache
def amx_unusable() -> bool:
    """True where the CPU advertises AMX but the kernel does not offer its tile state.

    Some virtual machines do this; llama.cpp then picks its AMX kernels and dies with a
    protection fault on the first matrix product.  There we load models without llama.cpp's
    extra buffer types (AMX, weight repacking), which is slower but correct.

    The probe runs in a fresh interpreter: once a library in this process (torch, llama.cpp)
    has asked the kernel for AMX, the in-process answer changes although AMX still faults.
    """
    probe = "from rafa_core.llm.llamacpp import probe_amx_unusable as p; print(int(p()))"
    try:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        return out.stdout.strip() == "1"
    except (OSError, subprocess.SubprocessError):
        return probe_amx_unusable()


def probe_amx_unusable() -> bool:
    """The probe itself; only meaningful in a process that has not touched AMX yet."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if "amx_tile" not in cpuinfo:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        mask = ctypes.c_uint64(0)
        if libc.syscall(_SYS_ARCH_PRCTL, _ARCH_GET_XCOMP_SUPP, ctypes.byref(mask)) != 0:
            return True
    except (OSError, AttributeError):
        return False
    return not (mask.value >> _XFEATURE_XTILEDATA) & 1


def prefer_passive_openmp() -> None:
    """Let llama.cpp's idle OpenMP threads sleep instead of spin, unless the user chose.

    With spinning threads, a machine whose cores are busy with other work slows prompt
    processing down by one to two orders of magnitude (measured: 13 s instead of 0.45 s for
    a short chat turn on 2 loaded cores).  Must run before llama_cpp is first imported.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@contextmanager
def safe_model_params() -> Iterator[None]:
    """While active, llama-cpp-python loads models without extra buffer types if AMX is unusable."""
    import llama_cpp.llama as llama_module

    original = llama_module.llama_cpp.llama_model_default_params
    if not amx_unusable() or not hasattr(original(), "use_extra_bufts"):
        yield
        return

    def without_extra_buffers() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    llama_module.llama_cpp.llama_model_default_params = without_extra_buffers
    try:
        yield
    finally:
        llama_module.llama_cpp.llama_model_default_params = original


@dataclass
class _Engine:
    """The loaded model and the lock serialising calls into it; shared by every view."""

    model: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


def _load(path: Path, n_ctx: int | None) -> Any:
    prefer_passive_openmp()
    try:
        import llama_cpp
    except ImportError:
        raise UserError("the llamacpp backend needs llama-cpp-python: pip install \"rafa_core[llamacpp]\"")
    try:
        with safe_model_params():
            # No logits_all: llama-cpp-python is many times slower with it; the log-probabilities
            # we need are read one position at a time instead (see _token_logprobs).
            # n_ctx=0: the context length the model was trained with.
            return llama_cpp.Llama(str(path), n_ctx=n_ctx or 0, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise UserError(f"llamacpp: cannot load {path}: {exc}")


class LlamaCppLLM(BaseLLM):
    supports_loglik = True

    def __init__(self, gguf_path: str | Path, *, seed: int = 0, n_ctx: int | None = None, **kwargs: Any) -> None:
        path = Path(gguf_path)
        super().__init__(f"llamacpp:{path.name}", path.stem, seed=seed, **kwargs)
        if not path.is_file():
            raise UserError(f"llamacpp: GGUF file not found: {path}")
        self.path = path
        model = _load(path, n_ctx)
        self.n_ctx = model.n_ctx()  # the trained length unless n_ctx was given
        self._engine = _Engine(model)
        self._counter = LlamaCppCounter(model, path.stem)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "gguf": str(self.path), "n_ctx": self.n_ctx}

    def _draw_kwargs(self, first_sample: int) -> dict[str, Any]:
        return {"first_sample": first_sample} if first_sample else {}

    def token_counter(self) -> LlamaCppCounter:
        return self._counter

    def context_window(self) -> int:
        return self.n_ctx

    async def _run(self, work: Callable[[Any], T]) -> T:
        engine = self._engine

        def locked() -> T:
            with engine.lock:
                return work(engine.model)

        try:
            return await asyncio.to_thread(locked)
        except (ValueError, RuntimeError) as exc:  # e.g. the prompt exceeds the context
            raise BackendError(f"{self.name}: {exc}") from exc

    # -- generation --------------------------------------------------------------------------
    async def _generate(
        self,
        prompt: Prompt,
        *,
        n: int,
        temperature: float,
        max_tokens: int,
        stop: list[str] | None,
        logprobs: bool,
        first_sample: int = 0,
    ) -> GenerationResult:
        messages = as_messages(prompt)
        seeds = [sampler_seed(self.seed, first_sample + i) % 2**31 for i in range(n)]

        def sample(model: Any, seed: int) -> tuple[Completion, int, int]:
            response = model.create_chat_completion(
                messages=messages, temperature=temperature, max_tokens=max_tokens, stop=stop or None, seed=seed
            )
            choice = response["choices"][0]
            usage = response["usage"]
            completion = Completion(choice["message"].get("content") or "", choice.get("finish_reason"))
            if logprobs:
                # The prompt as the model saw it is still at the head of its evaluated tokens.
                context = [int(t) for t in model.input_ids[: usage["prompt_tokens"]]]
                target = model.tokenize(completion.text.encode("utf-8"), add_bos=False, special=False)
                completion.token_logprobs = _token_logprobs(model, context, target)
                completion.tokens = [model.detokenize([t]).decode("utf-8", errors="replace") for t in target]
            return completion, usage["prompt_tokens"], usage["completion_tokens"]

        results = await self._run(lambda model: [sample(model, s) for s in seeds])
        return GenerationResult(
            completions=[c for c, _, _ in results],
            prompt_tokens=sum(p for _, p, _ in results),
            completion_tokens=sum(k for _, _, k in results),
            calls=n,
        )

    # -- log-likelihood ----------------------------------------------------------------------------
    async def _loglik(self, prefix: str, continuations: list[str]) -> tuple[list[float], int, int]:
        def score_all(model: Any) -> tuple[list[float], int]:
            context = model.tokenize(prefix.encode("utf-8"), add_bos=True, special=False) or [model.token_bos()]
            scores, processed = [], 0
            for continuation in continuations:
                # Context and continuation tokenised apart, so the boundary is exact.
                target = model.tokenize(continuation.encode("utf-8"), add_bos=False, special=False)
                scores.append(sum(_token_logprobs(model, context, target)))
                processed += len(context) + len(target)
            return scores, processed

        scores, processed = await self._run(score_all)
        return scores, processed, len(continuations)


def _token_logprobs(model: Any, context: list[int], target: list[int]) -> list[float]:
    """log p(target[i] | context + target[:i]) for each i, reading one position's logits at a time."""
    import llama_cpp
    import numpy as np

    if not target:
        return []
    if len(context) + len(target) > model.n_ctx():
        raise ValueError(f"{len(context) + len(target)} tokens do not fit the context ({model.n_ctx()})")
    model.reset()
    model.eval(context)
    values = []
    for i, token in enumerate(target):
        pointer = llama_cpp.llama_get_logits_ith(model.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(model.n_vocab(),)).astype(np.float64)
        top = logits.max()
        values.append(float(logits[token] - top - np.log(np.exp(logits - top).sum())))
        if i + 1 < len(target):
            model.eval([token])
    return values


def serve() -> None:
    """Run llama.cpp's OpenAI-compatible server (arguments as ``python -m llama_cpp.server``)."""
    prefer_passive_openmp()
    from llama_cpp.server.__main__ import main

    with safe_model_params():
        main()


if __name__ == "__main__":
    serve()
