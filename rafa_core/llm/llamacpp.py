"""The ``llamacpp:<gguf>`` backend: a GGUF model in-process through ``llama-cpp-python``.

Needs the optional extra: ``pip install "rafa_core[llamacpp]"``.  llama.cpp is not
thread-safe per model, so every call runs in a worker thread under one lock; ``n``
samples are ``n`` calls with different sampling seeds (drawn from ``seed``).

``python -m rafa_core.llm.llamacpp --model <gguf> --port <p>`` starts llama.cpp's
OpenAI-compatible server (``llama_cpp.server``) with the same safety switch as the
in-process backend (see :func:`amx_unusable`).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import platform
import random
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from .base import BackendError, BaseLLM, Completion, GenerationResult, Prompt, UserError, as_messages

T = TypeVar("T")

_SYS_ARCH_PRCTL = 158
_ARCH_GET_XCOMP_SUPP = 0x1022
_XFEATURE_XTILEDATA = 18


@functools.cache
def amx_unusable() -> bool:
    """True where the CPU advertises AMX but the kernel does not offer its tile state.

    Some virtual machines do this; llama.cpp then picks its AMX kernels and dies with a
    protection fault on the first matrix product.  There we load models without llama.cpp's
    extra buffer types (AMX, weight repacking), which is slower but correct.  Computed once,
    before llama.cpp asks the kernel for AMX (which changes the answer of the probe).
    """
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
    """The loaded model(s) and the lock serialising calls into them; shared by every view.

    Per-token logits (``logits_all``) make llama-cpp-python several times slower at plain
    generation, so a second instance with them is loaded only when logprobs or loglik
    are first asked for.
    """

    path: Path
    n_ctx: int
    generator: Any
    scorer: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    seeds: random.Random = field(default_factory=random.Random)

    def model(self, with_logits: bool) -> Any:
        if not with_logits:
            return self.generator
        if self.scorer is None:
            self.scorer = _load(self.path, self.n_ctx, logits_all=True)
        return self.scorer


def _load(path: Path, n_ctx: int, logits_all: bool) -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise UserError("the llamacpp backend needs llama-cpp-python: pip install \"rafa_core[llamacpp]\"")
    try:
        with safe_model_params():
            return llama_cpp.Llama(str(path), n_ctx=n_ctx, logits_all=logits_all, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise UserError(f"llamacpp: cannot load {path}: {exc}")


class LlamaCppLLM(BaseLLM):
    supports_loglik = True

    def __init__(self, gguf_path: str | Path, *, seed: int = 0, n_ctx: int = 2048, **kwargs: Any) -> None:
        path = Path(gguf_path)
        super().__init__(f"llamacpp:{path.name}", path.stem, **kwargs)
        if not path.is_file():
            raise UserError(f"llamacpp: GGUF file not found: {path}")
        self.path = path
        self.n_ctx = n_ctx
        self._engine = _Engine(path, n_ctx, _load(path, n_ctx, logits_all=False), seeds=random.Random(seed))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "gguf": str(self.path)}

    async def _run(self, work: Callable[[Any], T], *, with_logits: bool) -> T:
        engine = self._engine

        def locked() -> T:
            with engine.lock:
                return work(engine.model(with_logits))

        return await asyncio.to_thread(locked)

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
    ) -> GenerationResult:
        messages = as_messages(prompt)
        seeds = [self._engine.seeds.randrange(2**31) for _ in range(n)]

        def sample_all(model: Any) -> list[dict[str, Any]]:
            return [
                model.create_chat_completion(
                    messages=messages,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    stop=stop or None,
                    logprobs=logprobs,
                    top_logprobs=1 if logprobs else None,
                    seed=s,
                )
                for s in seeds
            ]

        try:
            responses = await self._run(sample_all, with_logits=logprobs)
        except (ValueError, RuntimeError) as exc:  # e.g. the prompt exceeds the context
            raise BackendError(f"{self.name}: {exc}") from exc
        completions, prompt_tokens, completion_tokens = [], 0, 0
        for response in responses:
            choice = response["choices"][0]
            tokens = token_logprobs = None
            content = (choice.get("logprobs") or {}).get("content") if logprobs else None
            if content:
                tokens = [t["token"] for t in content]
                token_logprobs = [float(t["logprob"]) for t in content]
            text = choice["message"].get("content") or ""
            completions.append(Completion(text, choice.get("finish_reason"), token_logprobs=token_logprobs, tokens=tokens))
            prompt_tokens += response["usage"]["prompt_tokens"]
            completion_tokens += response["usage"]["completion_tokens"]
        return GenerationResult(completions, prompt_tokens, completion_tokens, calls=n)

    # -- log-likelihood ----------------------------------------------------------------------------
    async def _loglik(self, prefix: str, continuations: list[str]) -> tuple[list[float], int, int]:
        def score_all(model: Any) -> tuple[list[float], int]:
            scores, processed = [], 0
            for continuation in continuations:
                score, tokens = _score(model, prefix, continuation, self.n_ctx)
                scores.append(score)
                processed += tokens
            return scores, processed

        try:
            scores, processed = await self._run(score_all, with_logits=True)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"{self.name}: {exc}") from exc
        return scores, processed, len(continuations)


def _score(model: Any, prefix: str, continuation: str, n_ctx: int) -> tuple[float, int]:
    """Sum of log p(continuation tokens | prefix); context and continuation tokenised apart."""
    import numpy as np

    context = model.tokenize(prefix.encode("utf-8"), add_bos=True, special=False)
    target = model.tokenize(continuation.encode("utf-8"), add_bos=False, special=False)
    if not target:
        return 0.0, 0
    if not context:  # the first token needs something to be predicted from
        context = [model.token_bos()]
    tokens = context + target
    if len(tokens) > n_ctx:
        raise ValueError(f"prefix + continuation is {len(tokens)} tokens, more than the context ({n_ctx})")
    model.reset()
    model.eval(tokens)
    logits = np.asarray(model.scores[len(context) - 1 : len(tokens) - 1], dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(log_probs[np.arange(len(target)), target].sum()), len(tokens)


def serve() -> None:
    """Run llama.cpp's OpenAI-compatible server (arguments as ``python -m llama_cpp.server``)."""
    from llama_cpp.server.__main__ import main

    with safe_model_params():
        main()


if __name__ == "__main__":
    serve()
