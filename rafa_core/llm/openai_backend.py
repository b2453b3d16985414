"""The ``openai`` backend: OpenAI, Azure OpenAI, or any OpenAI-compatible server.

Which endpoint is used:

- ``base_url`` given (``--base-url``; vLLM, llama.cpp, Ollama, SGLang, the loopback test
  server): that server; the key is ``api_key``, else ``OPENAI_API_KEY``, else a dummy
  (local servers rarely check keys).
- otherwise, ``AZURE_OPENAI_ENDPOINT`` and ``AZURE_OPENAI_API_KEY`` set: Azure OpenAI
  through ``AsyncAzureOpenAI``; the model name is the deployment name unless
  ``AZURE_OPENAI_DEPLOYMENT`` says otherwise; the API version comes from
  ``OPENAI_API_VERSION`` (default :data:`AZURE_API_VERSION`).
- otherwise OpenAI itself, which needs ``OPENAI_API_KEY`` (or ``api_key``).

Requests to a ``base_url`` server take a lean HTTP path (JSON over pooled keep-alive
connections, :class:`~rafa_core.llm.lean_http.LeanTransport`) unless a proxy is configured
for it; those to OpenAI and Azure go through the official SDK (``AsyncOpenAI`` /
``AsyncAzureOpenAI``).  ``http="sdk"`` sends
every request through the SDK.  Both fail with the SDK's exception types.

Chat models go through chat completions; ``*-instruct`` / ``davinci`` / ``babbage`` models
(or ``mode="completions"``) through the legacy completions endpoint, which also serves
``loglik`` (``echo`` + ``logprobs``) where the server offers it.

Every HTTP request is retried by us (exponential backoff with full jitter; at most
``max_retries`` retries; 429's ``Retry-After`` honoured) on rate limits, 5xx, timeouts,
connection errors and malformed answers.  The SDK's own retries are off, so ours are the
only ones and they are counted (:attr:`OpenAILLM.retries`).  Each attempt holds a place in the
backend's :class:`~rafa_core.llm.limiter.AdaptiveLimiter` (``concurrency`` requests in flight
at most) and reports a 429 to it, which then lowers the limit and holds every request back
until ``Retry-After`` has passed; successes raise the limit again.

Reasoning models (o1, o3, gpt-5, ...) refuse some request parameters with a 400 naming the
parameter.  The backend then adapts once, says so on stderr, and asks again: ``max_tokens``
becomes ``max_completion_tokens``; ``temperature``, ``stop`` and ``logprobs`` are left out
(answers are cut at the stop strings here anyway; samples then carry no log-probabilities).

Every request carries OpenAI's ``seed``: for draw ``k`` of a request (``first_sample`` + the
choice it starts at) in a run seeded ``s`` it is :func:`~rafa_core.llm.draws.sampler_seed`
``(s, k)``, so another ``--seed`` or a later draw asks the server for other samples (servers
that honour ``seed``, such as vLLM and llama.cpp, then answer reproducibly).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

import openai

from .base import BaseLLM, GenerationResult, Prompt, as_messages, as_text, cut_at_stop
from .draws import sampler_seed
from .errors import BackendError, NotSupported, UserError
from .lean_http import LeanTransport, SdkTransport, suits as lean_path_suits
from .openai_retry import (
    ADAPTATIONS,
    MAX_RETRY_AFTER_S,
    REFUSAL_CODES,
    RetryStats,
    error_code,
    final_error,
    is_transient,
    message_of,
    retry_after_s,
    unreachable_reason,
)
from .openai_wire import (
    as_number,
    as_str,
    chat_result,
    choices,
    completions_result,
    field_of,
    merged,
    token_offsets,
    usage_count,
)

AZURE_API_VERSION = "2024-10-21"
OPENAI_URL = "https://api.openai.com/v1"
# Legacy completion models: the completions endpoint, not chat.
_COMPLETION_MODELS = re.compile(r"(instruct|davinci|babbage)", re.IGNORECASE)
_MAX_STOP = 4  # OpenAI accepts at most 4 stop sequences; the rest are cut here
_MAX_TOPUP_ROUNDS = 8

T = TypeVar("T")


@dataclass
class _ClientSlot:
    """One transport per event loop: connection pools belong to the loop that made them."""

    loop: asyncio.AbstractEventLoop | None = None
    client: Any = None  # a LeanTransport or an SdkTransport
    stats: RetryStats = field(default_factory=RetryStats)
    echo_aligned: bool | None = None  # None until the first loglik has checked the server
    reached: bool = False  # the server has answered once (a later refusal is a restart, retried)


def is_completion_model(model: str) -> bool:
    return bool(_COMPLETION_MODELS.search(model))


class OpenAILLM(BaseLLM):
    """OpenAI / Azure / OpenAI-compatible server backend (see the module docstring)."""

    supports_loglik = True  # tried through completions echo; NotSupported if the server refuses
    limits_each_request = True  # each HTTP attempt takes a limiter slot (see _call)

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 6,
        mode: str = "auto",
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 20.0,
        http: str = "auto",
        **kwargs: Any,
    ) -> None:
        if mode not in ("auto", "chat", "completions"):
            raise UserError(f"openai mode must be auto, chat or completions, got {mode!r}")
        if http not in ("auto", "lean", "sdk"):
            raise UserError(f"openai http must be auto, lean or sdk, got {http!r}")
        self.use_completions = mode == "completions" or (mode == "auto" and is_completion_model(model))
        super().__init__("openai:completions" if self.use_completions else "openai", model, **kwargs)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._client_args, self.endpoint = self._resolve_endpoint(model, base_url, api_key)
        lean_possible = self._client_args["kind"] == "openai" and lean_path_suits(self.base_url)
        if http == "lean" and not lean_possible:
            raise UserError("the lean HTTP path needs a plain http(s) --base-url reached without a proxy "
                            "(OpenAI and Azure go through the SDK)")
        self.lean = lean_possible and http != "sdk"
        self._slot = _ClientSlot()
        self._refused: set[str] = set()  # request parameters the model refused (see _adapt_to_refusal)

    # -- configuration -----------------------------------------------------------------------
    @staticmethod
    def _resolve_endpoint(model: str, base_url: str | None, api_key: str | None) -> tuple[dict[str, Any], str]:
        """(client kind and arguments, URL for messages); raises UserError on a missing key."""
        if base_url:
            key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
            return {"kind": "openai", "base_url": base_url, "api_key": key}, base_url
        azure_endpoint = os.environ.get("AZURE_OPENAI_ENDPOINT")
        azure_key = api_key or os.environ.get("AZURE_OPENAI_API_KEY")
        if azure_endpoint and azure_key:
            return {
                "kind": "azure",
                "azure_endpoint": azure_endpoint,
                "api_key": azure_key,
                "api_version": os.environ.get("OPENAI_API_VERSION") or AZURE_API_VERSION,
                "azure_deployment": os.environ.get("AZURE_OPENAI_DEPLOYMENT") or model,
            }, azure_endpoint
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise UserError(
                f"OPENAI_API_KEY is not set (needed for {model!r}); export it, "
                "or use --base-url for an OpenAI-compatible server, or the local backend"
            )
        return {"kind": "openai", "base_url": None, "api_key": key}, OPENAI_URL

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "endpoint": self.endpoint, "api": "completions" if self.use_completions else "chat"}

    @property
    def stats(self) -> RetryStats:
        return self._slot.stats

    @property
    def retries(self) -> int:
        """Retries made so far by this backend and all its views."""
        return self._slot.stats.retries

    def _client(self) -> LeanTransport | SdkTransport:
        loop = asyncio.get_running_loop()
        slot = self._slot
        if slot.client is None or slot.loop is not loop:
            slot.client = self._new_transport()
            slot.loop = loop
        return slot.client

    def _new_transport(self) -> LeanTransport | SdkTransport:
        args = dict(self._client_args)
        kind = args.pop("kind")
        if self.lean:
            return LeanTransport(args["base_url"], args["api_key"], timeout=self.timeout, max_connections=self.concurrency)
        # Our own HTTP client: the SDK's default one, when dropped after its event loop has
        # closed, schedules a close on the next loop that fails noisily.  Its pool keeps as
        # many connections alive as requests may be in flight (Limits of the SDK's own httpx).
        limits = openai.DEFAULT_CONNECTION_LIMITS.__class__(
            max_connections=max(self.concurrency, 10), max_keepalive_connections=max(self.concurrency, 10)
        )
        http_client = openai.DefaultAsyncHttpxClient(timeout=self.timeout, limits=limits)
        common = {"timeout": self.timeout, "max_retries": 0, "http_client": http_client}  # our retries only
        if kind == "azure":
            return SdkTransport(openai.AsyncAzureOpenAI(**args, **common))
        return SdkTransport(openai.AsyncOpenAI(**args, **common))

    async def aclose(self) -> None:
        slot = self._slot
        if slot.client is not None:
            try:
                await slot.client.aclose()
            except RuntimeError:  # its loop is gone already
                pass
            slot.client, slot.loop = None, None

    # -- retries -----------------------------------------------------------------------------
    def _wait_s(self, exc: BaseException, failed_attempts: int) -> float:
        """Before the next attempt: the server's ``Retry-After``, else exponential backoff with full jitter."""
        retry_after = retry_after_s(exc)
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        return random.uniform(0.0, min(self.backoff_max_s, self.backoff_base_s * 2 ** (failed_attempts - 1)))

    async def _call(self, make_request: Callable[[], Awaitable[T]]) -> T:
        """One API request with our retries; maps final failures to UserError / BackendError.

        A plain loop, not a retry library: at a local server's speed a library's per-call
        set-up was a third of the client's CPU."""
        stats = self._slot.stats
        retries_here = 0
        failed = 0  # attempts failed since the request was last rebuilt
        while True:
            try:
                return await self._attempt(make_request, retry=retries_here > 0)
            except Exception as exc:
                failed += 1
                if self._worth_retrying(exc) and failed <= self.max_retries:
                    retries_here += 1
                    stats.retries += 1
                    stats.max_retries_one_request = max(stats.max_retries_one_request, retries_here)
                    await asyncio.sleep(self._wait_s(exc, failed))
                    continue
                if isinstance(exc, openai.BadRequestError) and self._adapt_to_refusal(exc):
                    failed = 0
                    continue  # the request is rebuilt without what the model refused
                stats.failures += 1
                if isinstance(exc, (UserError, BackendError)):
                    raise
                raise self._final_error(exc, attempts=retries_here + 1) from exc

    def _worth_retrying(self, exc: BaseException) -> bool:
        # Nobody listening (refused) or no such host, before the server ever answered: another
        # try gives the same answer, so fail now (~1 s, not minutes of backoff).
        return is_transient(exc) and (self._slot.reached or unreachable_reason(exc) is None)

    async def _attempt(self, make_request: Callable[[], Awaitable[T]], retry: bool) -> T:
        """One HTTP attempt, holding a place in the limiter and telling it about 429s."""
        async with self._limiter().slot(retry=retry) as slot:
            self._slot.stats.requests += 1
            try:
                result = await make_request()
            except openai.APIStatusError as exc:
                self._slot.reached = True
                if isinstance(exc, openai.RateLimitError) and is_transient(exc):
                    slot.rate_limited(retry_after_s(exc))
                raise
            self._slot.reached = True
            slot.succeeded()
            return result

    def _adapt_to_refusal(self, exc: openai.BadRequestError) -> bool:
        """Whether the 400 refused a parameter we can do without (now remembered as refused)."""
        param = getattr(exc, "param", None)
        if error_code(exc) not in REFUSAL_CODES or param not in ADAPTATIONS:
            return False
        if param in self._refused:
            return False  # already adapted: this refusal is about something else
        self._refused.add(param)
        if param in ("logprobs", "top_logprobs"):
            self._refused |= {"logprobs", "top_logprobs"}
        print(f"note: {self.model!r} refuses {param!r}; {ADAPTATIONS[param]}", file=sys.stderr)
        return True

    def _final_error(self, exc: Exception, attempts: int) -> Exception:
        return final_error(exc, attempts, name=self.name, model=self.model, where=self.endpoint)

    # -- generation ----------------------------------------------------------------------------
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
        request = self._completions_request if self.use_completions else self._chat_request

        async def one(k: int, draw: int) -> GenerationResult:
            seed = sampler_seed(self.seed, draw)
            return await self._call(lambda: request(prompt, k, temperature, max_tokens, stop, logprobs, seed))

        total = await one(n, first_sample)
        # Servers may answer fewer choices than asked (llama.cpp answers one): ask again for
        # the rest, concurrently, each request for as many as the server gave the first time.
        per_request = len(total.completions)
        for _ in range(_MAX_TOPUP_ROUNDS):
            missing = n - len(total.completions)
            if missing <= 0:
                break
            before = len(total.completions)
            starts = range(before, n, per_request)  # each top-up is a later draw of the request
            parts = await asyncio.gather(*(one(min(per_request, n - s), first_sample + s) for s in starts))
            for part in parts:
                total = merged(total, part)
            if len(total.completions) == before:
                break
            per_request = 1  # the server gave fewer than asked again: go one by one
        if len(total.completions) < n:
            raise BackendError(
                f"{self.name} {self.model!r}: asked for {n} samples, the server gave {len(total.completions)}"
            )
        total.completions = total.completions[:n]
        for completion in total.completions:
            cut_at_stop(completion, stop)  # one the server did not honour (e.g. the 5th)
        return total

    def _draw_kwargs(self, first_sample: int) -> dict[str, Any]:
        return {"first_sample": first_sample} if first_sample else {}

    def _sampling_args(
        self, n: int, temperature: float, max_tokens: int, stop: list[str] | None, seed: int, **prompt: Any
    ) -> dict[str, Any]:
        """What chat and completions requests share; ``prompt`` is messages= or prompt=."""
        args: dict[str, Any] = {"model": self.model, **prompt, "n": n, "temperature": temperature,
                                "max_tokens": max_tokens, "seed": seed}
        if stop:
            args["stop"] = stop[:_MAX_STOP]
        if "max_tokens" in self._refused:
            args["max_completion_tokens"] = args.pop("max_tokens")
        for name in ("temperature", "stop", "seed"):
            if name in self._refused:
                args.pop(name, None)
        return args

    def _wants_logprobs(self, logprobs: bool) -> bool:
        return logprobs and "logprobs" not in self._refused

    async def _chat_request(
        self,
        prompt: Prompt,
        n: int,
        temperature: float,
        max_tokens: int,
        stop: list[str] | None,
        logprobs: bool,
        seed: int,
    ) -> GenerationResult:
        args = self._sampling_args(n, temperature, max_tokens, stop, seed, messages=as_messages(prompt))
        if self._wants_logprobs(logprobs):
            args["logprobs"] = True
            args["top_logprobs"] = 1  # llama.cpp's server sends logprobs only when this is set
        response = await self._client().post("/chat/completions", args)
        return chat_result(response, logprobs)

    async def _completions_request(
        self,
        prompt: Prompt,
        n: int,
        temperature: float,
        max_tokens: int,
        stop: list[str] | None,
        logprobs: bool,
        seed: int,
    ) -> GenerationResult:
        args = self._sampling_args(n, temperature, max_tokens, stop, seed, prompt=as_text(prompt))
        if self._wants_logprobs(logprobs):
            args["logprobs"] = 1
        response = await self._client().post("/completions", args)
        return completions_result(response, logprobs)

    # -- log-likelihood ------------------------------------------------------------------------
    async def _loglik(self, prefix: str, continuations: list[str]) -> tuple[list[float], int, int]:
        if self.base_url is None and not self.use_completions:
            raise NotSupported(
                f"loglik needs a completions model with echo+logprobs; {self.model!r} is a chat model "
                "(use gpt-3.5-turbo-instruct / davinci-002, an hf: model, or a --base-url server that offers it)"
            )
        if self._slot.echo_aligned is None:
            self._slot.echo_aligned = await self._echo_is_aligned()
        if not self._slot.echo_aligned:
            raise NotSupported(
                f"loglik is not supported by {self.endpoint}: its echoed prompt logprobs are shifted by one "
                "token (llama-cpp-python's server does this), so scores would be wrong; "
                "use llamacpp:<gguf> or an hf: model for loglik"
            )
        scored = await asyncio.gather(*(self._score(prefix, c) for c in continuations))
        return [s for s, _ in scored], sum(t for _, t in scored), len(continuations)

    async def _echo_is_aligned(self) -> bool:
        """Whether echoed logprob k belongs to prompt token k, checked once per backend.

        On a counting sequence a model's top guess at position k is usually token k itself;
        a server that reports each position one step late (the distribution of token k+1)
        has its top guesses match the *next* token instead.
        """
        text = ", ".join(str(i) for i in range(1, 11))
        response = await self._echo(text)
        lp = choices(response)[0].get("logprobs")
        tokens, tops = field_of(lp, "tokens"), field_of(lp, "top_logprobs")
        if not isinstance(tokens, list) or not isinstance(tops, list) or not tokens or not tops:
            return True  # nothing to check against; an empty answer is caught when scoring
        same = following = 0
        for k, top in enumerate(tops[: len(tokens) - 1]):
            if not top or not isinstance(top, dict):
                continue
            best = max(top.items(), key=lambda item: item[1])[0]
            same += best == tokens[k]
            following += best == tokens[k + 1]
        return following <= same

    async def _echo(self, text: str) -> Any:
        """A scoring request: the prompt echoed with its token logprobs (wrapped in our retries)."""

        async def request() -> Any:
            # max_tokens=1, not 0: some servers (llama.cpp) read 0 as "no limit".
            body = {"model": self.model, "prompt": text, "echo": True, "logprobs": 1, "max_tokens": 1, "temperature": 0.0}
            response = await self._client().post("/completions", body)
            choices(response)  # no choices: malformed, retried
            return response

        try:
            return await self._call(request)
        except (UserError, BackendError) as exc:
            refused = (openai.BadRequestError, openai.NotFoundError, openai.UnprocessableEntityError)
            if isinstance(exc.__cause__, refused):
                raise NotSupported(
                    f"loglik is not supported by {self.endpoint} for {self.model!r}: the completions endpoint "
                    f"refused echo+logprobs ({message_of(exc.__cause__)})"
                ) from exc
            raise

    async def _score(self, prefix: str, continuation: str) -> tuple[float, int]:
        """Sum of the echoed prompt logprobs of the tokens that overlap ``continuation``."""
        text = prefix + continuation
        response = await self._echo(text)
        lp = choices(response)[0].get("logprobs")
        tokens, values = field_of(lp, "tokens"), field_of(lp, "token_logprobs")
        if not isinstance(tokens, list) or not tokens or not isinstance(values, list):
            raise NotSupported(
                f"loglik is not supported by {self.endpoint} for {self.model!r}: echo+logprobs returned no prompt logprobs"
            )
        tokens = [as_str(t) for t in tokens]
        offsets = field_of(lp, "text_offset") or token_offsets(tokens)
        total = 0.0
        for token, offset, value in zip(tokens, offsets, values):
            # Tokens overlapping the continuation, not the one generated token after the prompt.
            if value is not None and offset + len(token) > len(prefix) and offset < len(text):
                total += as_number(value)
        return total, usage_count(response, "prompt_tokens")


# Answers are decoded JSON; anything shaped otherwise is MalformedResponse (retried).
