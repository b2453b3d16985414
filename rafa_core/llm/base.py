"""The LLM protocol, completions, errors, and the common machinery every backend shares.

A backend subclasses :class:`BaseLLM` and implements ``_generate`` (and ``_loglik`` where it
can).  ``BaseLLM`` adds, once for all backends: the response cache (per run seed and sample
index), the usage ledger with its cost cap, and the per-backend limit on requests in flight
(an :class:`~rafa_core.llm.limiter.AdaptiveLimiter`, which backs off on 429s).

Seeds: a backend is built with the run's ``seed`` (``--seed``). It is part of every sample's
cache key, and samplers that take a seed are given one derived from it and the sample index
(:func:`~rafa_core.llm.draws.sampler_seed`), so another seed draws other samples and the same
seed replays from the cache without a backend call.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import time
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

from .context import known_context_window
from .errors import BackendError, BudgetExceeded, ContextOverflow, NotSupported, UserError  # noqa: F401  (re-exported)
from .limiter import AdaptiveLimiter
from .tokens import TokenizerMissing, counter_for_model
from .usage import Usage

if TYPE_CHECKING:
    from .cache import ResponseCache
    from .tokens import TokenCounter

Messages = list[dict[str, str]]
Prompt = Union[str, Messages]

# The one bound on model text: every completion is cut to this many characters where it enters
# the system (BaseLLM.generate, fresh or cached), so no parser ever reads an unbounded answer
# (a server that ignores max_tokens once sent 1 MB of newlines). The longest answers asked for
# are ~1000 tokens, a few thousand characters.
MAX_COMPLETION_CHARS = 16_000


@dataclass
class Completion:
    text: str
    finish_reason: str | None = None
    # Per-token log-probabilities of ``text`` when ``logprobs=True`` was asked (else None).
    token_logprobs: list[float] | None = None
    tokens: list[str] | None = None
    cached: bool = False

    @property
    def mean_logprob(self) -> float:
        """Mean token log-probability (0.0 when unknown); used to rank sampled actions."""
        if not self.token_logprobs:
            return 0.0
        return sum(self.token_logprobs) / len(self.token_logprobs)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "token_logprobs": self.token_logprobs,
            "tokens": self.tokens,
        }

    def bounded(self, source: str) -> "Completion":
        """This completion cut to :data:`MAX_COMPLETION_CHARS` (said on stderr when it cuts)."""
        if len(self.text) <= MAX_COMPLETION_CHARS:
            return self
        print(f"note: a {len(self.text):,}-character answer from {source} was cut to "
              f"{MAX_COMPLETION_CHARS:,} characters", file=sys.stderr)
        self.cut(MAX_COMPLETION_CHARS, "length")
        return self

    def cut(self, at: int, finish_reason: str) -> None:
        """Keep the first ``at`` characters, with the tokens and log-probabilities in step."""
        self.text = self.text[:at]
        self.finish_reason = finish_reason
        if self.tokens is not None and self.token_logprobs is not None:
            kept, length = 0, 0
            while kept < len(self.tokens) and length < at:
                length += len(self.tokens[kept])
                kept += 1
            self.tokens, self.token_logprobs = self.tokens[:kept], self.token_logprobs[:kept]

    @classmethod
    def from_json(cls, data: dict[str, Any], cached: bool = False) -> "Completion":
        return cls(
            text=data["text"],
            finish_reason=data.get("finish_reason"),
            token_logprobs=data.get("token_logprobs"),
            tokens=data.get("tokens"),
            cached=cached,
        )


def cut_at_stop(completion: Completion, stop: list[str] | tuple[str, ...] | None) -> Completion:
    """The completion cut before the earliest stop string in it (``finish_reason`` "stop").

    The one place stop strings are cut: backends whose sampler may run past a stop string
    (a rule's text, a stopping criterion checked per token, a server that honours only four)
    call it on each fresh completion; a completion without a stop string is left as it is.
    """
    cuts = [completion.text.find(s) for s in stop or () if s and s in completion.text]
    if cuts:
        completion.cut(min(cuts), "stop")
    return completion


@dataclass
class GenerationResult:
    """What a backend's ``_generate`` returns: the samples and what they cost."""

    completions: list[Completion]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 1


@runtime_checkable
class LLM(Protocol):
    name: str

    async def generate(
        self,
        prompt: Prompt,
        *,
        n: int = 1,
        temperature: float = 0.7,
        max_tokens: int = 256,
        stop: list[str] | None = None,
        logprobs: bool = False,
    ) -> list[Completion]: ...

    async def loglik(self, prefix: str, continuations: list[str]) -> list[float]: ...


def as_messages(prompt: Prompt) -> Messages:
    """A plain string prompt is one user message."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return list(prompt)


def as_text(prompt: Prompt) -> str:
    """Flatten chat messages into one text (for completion-style backends and rules)."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(m["content"] for m in prompt)


@dataclass
class _Shared:
    """State shared by every view of one backend (see :meth:`BaseLLM.with_usage`)."""

    limiter: AdaptiveLimiter | None
    concurrency: int
    loop: asyncio.AbstractEventLoop | None = None


class BaseLLM:
    """Cache + usage ledger + concurrency limit around a backend's raw calls."""

    #: True for test doubles; runs print "simulated" wherever such a backend appears.
    simulated: bool = False
    supports_loglik: bool = False
    #: True when the backend takes a limiter slot per HTTP attempt itself (:meth:`_limiter`)
    #: and reports 429s to it; ``generate`` / ``loglik`` then hold no slot around the call.
    limits_each_request: bool = False

    def __init__(
        self,
        name: str,
        model: str,
        *,
        usage: Usage | None = None,
        cache: "ResponseCache | None" = None,
        concurrency: int = 8,
        seed: int = 0,
    ) -> None:
        self.name = name
        self.model = model
        self.seed = seed  # the run's --seed: in every cache key, and what samplers are seeded from
        self.usage = usage if usage is not None else Usage()
        self.cache = cache
        self._shared = _Shared(limiter=None, concurrency=max(1, concurrency))

    # -- views -------------------------------------------------------------------------
    def with_usage(self, usage: Usage) -> "BaseLLM":
        """The same backend (model, cache, concurrency limit) recording into ``usage``.

        Runs give each episode its own ledger whose parent is the run's ledger, so the
        episode's cost is known while the run total stays right.
        """
        view = copy.copy(self)
        view.usage = usage
        return view

    @property
    def concurrency(self) -> int:
        """How many requests this backend (and its views) may have in flight at most."""
        return self._shared.concurrency

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "simulated": self.simulated}

    # -- public API --------------------------------------------------------------------
    async def generate(
        self,
        prompt: Prompt,
        *,
        n: int = 1,
        temperature: float = 0.7,
        max_tokens: int = 256,
        stop: list[str] | None = None,
        logprobs: bool = False,
        first_sample: int = 0,
    ) -> list[Completion]:
        """``n`` samples of ``prompt``; they are samples ``first_sample .. first_sample+n-1``.

        Asking the same request again with a later ``first_sample`` draws fresh samples
        (a retry at temperature > 0) that are still cached one by one. Sample ``k`` is keyed
        by (request, this backend's ``seed``, ``k``).
        """
        if n < 1:
            return []
        started = time.perf_counter()
        request = {
            "op": "generate",
            "backend": self.name,
            "model": self.model,
            "messages": as_messages(prompt),
            "temperature": temperature,
            "max_tokens": max_tokens,
            "stop": list(stop) if stop else None,
            "logprobs": logprobs,
        }
        results: list[Completion | None] = [None] * n
        keys = ([request_key({**request, "seed": self.seed}, first_sample + i) for i in range(n)]
                if self.cache is not None else [])
        if self.cache is not None:
            for i, key in enumerate(keys):
                hit = self.cache.get(key)
                if hit is not None and isinstance(hit.get("text"), str):  # else: a miss
                    results[i] = Completion.from_json(hit, cached=True).bounded(f"{self.name} {self.model!r} (cached)")
        missing = [i for i, c in enumerate(results) if c is None]
        hits = n - len(missing)
        if hits:
            self.usage.record_cache_hits(self.model, hits)
        result = GenerationResult(completions=[], calls=0)
        if missing:
            self.check_context(prompt, max_tokens)
            self.usage.check_budget()
            async with self._limit():
                result = await self._generate(
                    prompt,
                    n=len(missing),
                    temperature=temperature,
                    max_tokens=max_tokens,
                    stop=list(stop) if stop else None,
                    logprobs=logprobs,
                    **self._draw_kwargs(first_sample + missing[0]),
                )
            self.usage.record(
                self.model, result.prompt_tokens, result.completion_tokens, calls=result.calls
            )
            fresh = result.completions
            if len(fresh) < len(missing):
                raise BackendError(
                    f"{self.name}: asked for {len(missing)} samples, got {len(fresh)}"
                )
            for i, completion in zip(missing, fresh):
                completion = completion.bounded(f"{self.name} {self.model!r}")
                results[i] = completion
                if self.cache is not None:
                    self.cache.put(keys[i], completion.to_json())
        done = [c for c in results if c is not None]
        if self.usage.requests is not None:
            self.usage.requests.generate(request, n=n, first_sample=first_sample, completions=done, cache_hits=hits,
                                         prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                                         started=started)
        return done

    async def loglik(self, prefix: str, continuations: list[str]) -> list[float]:
        """Sum of token log-probabilities of each continuation after ``prefix``."""
        if not self.supports_loglik:
            raise NotSupported(
                f"backend {self.name!r} cannot score log-likelihoods (loglik not supported); "
                "use an hf: model, the local model, or a completions server with echo+logprobs"
            )
        started = time.perf_counter()
        request = {"op": "loglik", "backend": self.name, "model": self.model, "prefix": prefix}
        scores: list[float | None] = [None] * len(continuations)
        keys = [request_key({**request, "continuation": c}, 0) for c in continuations]
        if self.cache is not None:
            for i, key in enumerate(keys):
                hit = self.cache.get(key)
                if hit is not None and isinstance(hit.get("loglik"), (int, float)):  # else: a miss
                    scores[i] = float(hit["loglik"])
        missing = [i for i, s in enumerate(scores) if s is None]
        if len(missing) < len(continuations):
            self.usage.record_cache_hits(self.model, len(continuations) - len(missing))
        prompt_tokens = 0
        if missing:
            self.usage.check_budget()
            async with self._limit():
                values, prompt_tokens, calls = await self._loglik(
                    prefix, [continuations[i] for i in missing]
                )
            self.usage.record(self.model, prompt_tokens, 0, calls=calls)
            for i, value in zip(missing, values):
                scores[i] = float(value)
                if self.cache is not None:
                    self.cache.put(keys[i], {"loglik": float(value)})
        done = [float(s) for s in scores]  # type: ignore[arg-type]
        if self.usage.requests is not None:
            self.usage.requests.loglik(request, continuations=list(continuations), scores=done,
                                       cache_hits=len(continuations) - len(missing), prompt_tokens=prompt_tokens,
                                       started=started)
        return done

    async def aclose(self) -> None:
        """Release network clients / models; a no-op for most backends."""

    # -- tokens and the context window (tokens.py, context.py) ---------------------------------
    #: ``--context-window``: the window to check against, whatever the model's own is.
    window_override: int | None = None

    def token_counter(self) -> "TokenCounter":
        """How this backend's model counts tokens (here: an OpenAI model's, by its name)."""
        try:
            return counter_for_model(self.model)
        except TokenizerMissing as exc:
            raise UserError(str(exc)) from None

    def context_window(self) -> int | None:
        """The model's context window in tokens; None when unknown (prompts go unchecked)."""
        return self.window_override or known_context_window(self.model)

    def count_prompt(self, prompt: Prompt) -> int:
        """The prompt's tokens as this backend's model counts them, chat formatting included."""
        return self.token_counter().prompt(as_messages(prompt))

    def check_context(self, prompt: Prompt, max_tokens: int) -> None:
        """Refuse, with one clear error, a request that does not fit the model's window."""
        window = self.context_window()
        if window is None:
            return
        at_most = getattr(self.token_counter(), "at_most", None)  # tokenizing costs more than the request
        if at_most is not None and at_most(as_messages(prompt)) + max_tokens <= window:
            return
        needed = self.count_prompt(prompt)
        if needed + max_tokens > window:
            who = self.name if self.model == self.name else f"{self.name} {self.model!r}"
            raise ContextOverflow(
                f"{who}: the prompt has {needed:,} tokens and the answer may take "
                f"{max_tokens:,} more, over the model's {window:,}-token context window; use a model with a "
                "larger window, or --context-window N if the model has one the table does not know"
            )

    # -- for subclasses ------------------------------------------------------------------
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
        raise NotImplementedError

    def _draw_kwargs(self, first_sample: int) -> dict[str, Any]:
        """Extra ``_generate`` arguments for a later draw: samplers that seed each draw
        (see :func:`~rafa_core.llm.draws.sampler_seed`) return ``{"first_sample": ...}``."""
        return {}

    async def _loglik(
        self, prefix: str, continuations: list[str]
    ) -> tuple[list[float], int, int]:
        """Return (scores, prompt tokens processed, backend calls made)."""
        raise NotImplementedError

    def _limit(self) -> Any:
        """What ``generate`` / ``loglik`` hold around a backend call: a limiter slot, or
        nothing when the backend takes one per HTTP attempt (``limits_each_request``)."""
        return contextlib.nullcontext() if self.limits_each_request else self._limiter()

    def _limiter(self) -> AdaptiveLimiter:
        # One limiter per event loop: a backend may serve several asyncio.run() calls
        # (tests, scripts), and a limiter's waiters belong to the loop that made them.
        shared = self._shared
        loop = asyncio.get_running_loop()
        if shared.limiter is None or shared.loop is not loop:
            shared.limiter = AdaptiveLimiter(shared.concurrency)
            shared.loop = loop
        return shared.limiter


def request_key(request: dict[str, Any], sample_index: int) -> str:
    """Cache key: a hash of the whole request (its seed included) plus which sample of it this is."""
    blob = json.dumps({**request, "sample": sample_index}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
