"""The ``openai`` backend: OpenAI, Azure OpenAI, or any OpenAI-compatible server.

Built on the official SDK (``AsyncOpenAI``).  Which endpoint is used:

- ``base_url`` given (``--base-url``; vLLM, llama.cpp, Ollama, SGLang, the loopback test
  server): that server; the key is ``api_key``, else ``OPENAI_API_KEY``, else a dummy
  (local servers rarely check keys).
- otherwise, ``AZURE_OPENAI_ENDPOINT`` and ``AZURE_OPENAI_API_KEY`` set: Azure OpenAI
  through ``AsyncAzureOpenAI``; the model name is the deployment name unless
  ``AZURE_OPENAI_DEPLOYMENT`` says otherwise; the API version comes from
  ``OPENAI_API_VERSION`` (default :data:`AZURE_API_VERSION`).
- otherwise OpenAI itself, which needs ``OPENAI_API_KEY`` (or ``api_key``).

Chat models go through chat completions; ``*-instruct`` / ``davinci`` / ``babbage`` models
(or ``mode="completions"``) through the legacy completions endpoint, which also serves
``loglik`` (``echo`` + ``logprobs``) where the server offers it.

Every HTTP request is retried by us (tenacity; exponential backoff with jitter; at most
``max_retries`` retries; 429's ``Retry-After`` honoured) on rate limits, 5xx, timeouts,
connection errors and malformed answers.  The SDK's own retries are off, so ours are the
only ones and they are counted (:attr:`OpenAILLM.retries`).

Reasoning models (o1, o3, gpt-5, ...) refuse some request parameters with a 400 naming the
parameter.  The backend then adapts once, says so on stderr, and asks again: ``max_tokens``
becomes ``max_completion_tokens``; ``temperature``, ``stop`` and ``logprobs`` are left out
(answers are cut at the stop strings here anyway; samples then carry no log-probabilities).
"""

from __future__ import annotations

import asyncio
import errno
import math
import os
import re
import socket
import sys
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar
from urllib.parse import urlsplit

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from .base import (
    BackendError,
    BaseLLM,
    Completion,
    GenerationResult,
    NotSupported,
    Prompt,
    UserError,
    as_messages,
    as_text,
)

AZURE_API_VERSION = "2024-10-21"
OPENAI_URL = "https://api.openai.com/v1"
# Legacy completion models: the completions endpoint, not chat.
_COMPLETION_MODELS = re.compile(r"(instruct|davinci|babbage)", re.IGNORECASE)
_MAX_STOP = 4  # OpenAI accepts at most 4 stop sequences; the rest are cut here
# What a refused parameter becomes (OpenAI's reasoning models refuse these with a 400).
_NO_LOGPROBS = "leaving it out: samples carry no log-probabilities (ranked by frequency instead)"
_ADAPTATIONS = {
    "max_tokens": "sending max_completion_tokens instead (hidden reasoning tokens count against it, "
                  "so an answer may come back empty: a failed step in the log)",
    "temperature": "leaving it out: the model samples at its own temperature, so greedy calls are not greedy",
    "stop": "leaving it out: answers are cut at the stop strings here",
    "logprobs": _NO_LOGPROBS,
    "top_logprobs": _NO_LOGPROBS,
}
_REFUSAL_CODES = ("unsupported_parameter", "unsupported_value")
_MAX_RETRY_AFTER_S = 60.0
_MAX_TOPUP_ROUNDS = 8
# Which later draw of a request this is (BaseLLM.generate's first_sample).  Real servers
# ignore the header; the loopback test server uses it to answer as ScriptedLLM would.
DRAW_HEADER = "X-Rafa-Draw"

T = TypeVar("T")


class MalformedResponse(Exception):
    """The server answered 200 with something that is not a usable completion."""


@dataclass
class RetryStats:
    """Shared by every view of one backend (``with_usage`` copies share this object)."""

    requests: int = 0  # HTTP requests attempted, retries included
    retries: int = 0  # attempts after the first, over all requests
    failures: int = 0  # requests that failed after all their retries
    max_retries_one_request: int = 0  # the most retries any single request needed


@dataclass
class _ClientSlot:
    """One SDK client per event loop: httpx connection pools belong to the loop that made them."""

    loop: asyncio.AbstractEventLoop | None = None
    client: Any = None
    stats: RetryStats = field(default_factory=RetryStats)
    echo_aligned: bool | None = None  # None until the first loglik has checked the server
    reached: bool = False  # the server has answered once (a later refusal is a restart, retried)


def is_completion_model(model: str) -> bool:
    return bool(_COMPLETION_MODELS.search(model))


class OpenAILLM(BaseLLM):
    """OpenAI / Azure / OpenAI-compatible server backend (see the module docstring)."""

    supports_loglik = True  # tried through completions echo; NotSupported if the server refuses

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
        **kwargs: Any,
    ) -> None:
        if mode not in ("auto", "chat", "completions"):
            raise UserError(f"openai mode must be auto, chat or completions, got {mode!r}")
        self.use_completions = mode == "completions" or (mode == "auto" and is_completion_model(model))
        super().__init__("openai:completions" if self.use_completions else "openai", model, **kwargs)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._client_args, self.endpoint = self._resolve_endpoint(model, base_url, api_key)
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

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        slot = self._slot
        if slot.client is None or slot.loop is not loop:
            args = dict(self._client_args)
            kind = args.pop("kind")
            common = {
                "timeout": self.timeout,
                "max_retries": 0,  # our retries only
                # Our own HTTP client: the SDK's default one, when dropped after its event loop
                # has closed, schedules a close on the next loop that fails noisily.
                "http_client": openai.DefaultAsyncHttpxClient(timeout=self.timeout),
            }
            if kind == "azure":
                slot.client = openai.AsyncAzureOpenAI(**args, **common)
            else:
                slot.client = openai.AsyncOpenAI(**args, **common)
            slot.loop = loop
        return slot.client

    async def aclose(self) -> None:
        slot = self._slot
        if slot.client is not None:
            try:
                await slot.client.close()
            except RuntimeError:  # its loop is gone already
                pass
            slot.client, slot.loop = None, None

    # -- retries -----------------------------------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = _retry_after_s(exc)
        if retry_after is not None:
            return min(retry_after, _MAX_RETRY_AFTER_S)
        return wait_random_exponential(multiplier=self.backoff_base_s, max=self.backoff_max_s)(state)

    async def _call(self, make_request: Callable[[], Awaitable[T]]) -> T:
        """One API request with our retries; maps final failures to UserError / BackendError."""
        stats = self._slot.stats
        retries_here = 0

        def count_retry(state: RetryCallState) -> None:
            nonlocal retries_here
            retries_here += 1
            stats.retries += 1
            stats.max_retries_one_request = max(stats.max_retries_one_request, retries_here)

        async def attempt() -> T:
            stats.requests += 1
            try:
                answer = await make_request()
            except openai.APIStatusError:
                self._slot.reached = True
                raise
            self._slot.reached = True
            return answer

        def worth_retrying(exc: BaseException) -> bool:
            # Nobody listening (refused) or no such host, before the server ever answered: another
            # try gives the same answer, so fail now (~1 s, not minutes of backoff).
            return _is_transient(exc) and (self._slot.reached or unreachable_reason(exc) is None)

        while True:
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self.max_retries + 1),
                wait=self._wait,
                retry=retry_if_exception(worth_retrying),
                before_sleep=count_retry,
                reraise=True,
            )
            try:
                return await retrying(attempt)
            except (UserError, BackendError):
                stats.failures += 1
                raise
            except openai.BadRequestError as exc:
                if self._adapt_to_refusal(exc):
                    continue  # the request is rebuilt without what the model refused
                stats.failures += 1
                raise self._final_error(exc, attempts=retries_here + 1) from exc
            except Exception as exc:
                stats.failures += 1
                raise self._final_error(exc, attempts=retries_here + 1) from exc

    def _adapt_to_refusal(self, exc: openai.BadRequestError) -> bool:
        """Whether the 400 refused a parameter we can do without (now remembered as refused)."""
        param = getattr(exc, "param", None)
        if _error_code(exc) not in _REFUSAL_CODES or param not in _ADAPTATIONS:
            return False
        if param in self._refused:
            return False  # already adapted: this refusal is about something else
        self._refused.add(param)
        if param in ("logprobs", "top_logprobs"):
            self._refused |= {"logprobs", "top_logprobs"}
        print(f"note: {self.model!r} refuses {param!r}; {_ADAPTATIONS[param]}", file=sys.stderr)
        return True

    def _final_error(self, exc: Exception, attempts: int) -> Exception:
        where = self.endpoint
        detail = _message(exc)
        if isinstance(exc, openai.AuthenticationError):
            return UserError(f"authentication failed at {where} (check the API key / OPENAI_API_KEY): {detail}")
        if isinstance(exc, openai.PermissionDeniedError):
            return UserError(f"permission denied at {where} for model {self.model!r}: {detail}")
        if isinstance(exc, openai.NotFoundError):
            return UserError(f"unknown model {self.model!r} at {where}: {detail}")
        if isinstance(exc, openai.RateLimitError) and _error_code(exc) == "insufficient_quota":
            return UserError(f"quota exhausted at {where}: {detail}")
        if isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError):
            reason = unreachable_reason(exc)
            tries = f"after {attempts} attempts" if attempts > 1 else "not retried: the server never answered"
            if reason == "resolve":
                host = urlsplit(where).hostname or where
                return UserError(f"cannot resolve the host name {host!r} of {where} ({tries}): check --base-url / the endpoint")
            if reason == "refused":
                return UserError(f"nothing listens at {where}: connection refused ({tries}); is the server running?")
            if reason == "unreachable":
                return UserError(f"cannot reach {where}: {detail} ({tries})")
        return BackendError(f"{self.name} {self.model!r} at {where}: {detail} (after {attempts} attempts)")

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
            headers = {DRAW_HEADER: str(draw)} if draw else None
            return await self._call(lambda: request(prompt, k, temperature, max_tokens, stop, logprobs, headers))

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
                total = _merge(total, part)
            if len(total.completions) == before:
                break
            per_request = 1  # the server gave fewer than asked again: go one by one
        if len(total.completions) < n:
            raise BackendError(
                f"{self.name} {self.model!r}: asked for {n} samples, the server gave {len(total.completions)}"
            )
        total.completions = total.completions[:n]
        for completion in total.completions:
            _cut_at_stop(completion, stop)
        return total

    def _draw_kwargs(self, first_sample: int) -> dict[str, Any]:
        return {"first_sample": first_sample} if first_sample else {}

    def _sampling_args(
        self, n: int, temperature: float, max_tokens: int, stop: list[str] | None, **prompt: Any
    ) -> dict[str, Any]:
        """What chat and completions requests share; ``prompt`` is messages= or prompt=."""
        args: dict[str, Any] = {"model": self.model, **prompt, "n": n, "temperature": temperature,
                                "max_tokens": max_tokens}
        if stop:
            args["stop"] = stop[:_MAX_STOP]
        if "max_tokens" in self._refused:
            args["max_completion_tokens"] = args.pop("max_tokens")
        for name in ("temperature", "stop"):
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
        headers: dict[str, str] | None,
    ) -> GenerationResult:
        args = self._sampling_args(n, temperature, max_tokens, stop, messages=as_messages(prompt))
        if self._wants_logprobs(logprobs):
            args["logprobs"] = True
            args["top_logprobs"] = 1  # llama.cpp's server sends logprobs only when this is set
        response = await self._client().chat.completions.create(**args, extra_headers=headers)
        completions = []
        for choice in _choices(response):
            message = getattr(choice, "message", None)
            if message is None:
                raise MalformedResponse("a chat choice without a message")
            tokens = token_logprobs = None
            content = getattr(getattr(choice, "logprobs", None), "content", None)
            if logprobs and content:
                tokens = [t.token for t in content]
                token_logprobs = [float(t.logprob) for t in content]
            completions.append(
                Completion(message.content or "", choice.finish_reason, token_logprobs=token_logprobs, tokens=tokens)
            )
        return _result(response, completions)

    async def _completions_request(
        self,
        prompt: Prompt,
        n: int,
        temperature: float,
        max_tokens: int,
        stop: list[str] | None,
        logprobs: bool,
        headers: dict[str, str] | None,
    ) -> GenerationResult:
        args = self._sampling_args(n, temperature, max_tokens, stop, prompt=as_text(prompt))
        if self._wants_logprobs(logprobs):
            args["logprobs"] = 1
        response = await self._client().completions.create(**args, extra_headers=headers)
        completions = []
        for choice in _choices(response):
            text = getattr(choice, "text", None)
            if text is None:
                raise MalformedResponse("a completion choice without text")
            tokens = token_logprobs = None
            lp = getattr(choice, "logprobs", None)
            if logprobs and lp is not None and lp.tokens is not None and lp.token_logprobs is not None:
                tokens = list(lp.tokens)
                token_logprobs = [float(x) if x is not None else 0.0 for x in lp.token_logprobs]
            completions.append(Completion(text, choice.finish_reason, token_logprobs=token_logprobs, tokens=tokens))
        return _result(response, completions)

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
        lp = getattr(_choices(response)[0], "logprobs", None)
        tokens, tops = getattr(lp, "tokens", None), getattr(lp, "top_logprobs", None)
        if not tokens or not tops:
            return True  # nothing to check against; an empty answer is caught when scoring
        same = following = 0
        for k, top in enumerate(tops[: len(tokens) - 1]):
            if not top:
                continue
            best = max(top.items(), key=lambda item: item[1])[0]
            same += best == tokens[k]
            following += best == tokens[k + 1]
        return following <= same

    async def _echo(self, text: str) -> Any:
        """A scoring request: the prompt echoed with its token logprobs (wrapped in our retries)."""

        async def request() -> Any:
            # max_tokens=1, not 0: some servers (llama.cpp) read 0 as "no limit".
            return await self._client().completions.create(
                model=self.model, prompt=text, echo=True, logprobs=1, max_tokens=1, temperature=0.0
            )

        try:
            return await self._call(request)
        except (UserError, BackendError) as exc:
            refused = (openai.BadRequestError, openai.NotFoundError, openai.UnprocessableEntityError)
            if isinstance(exc.__cause__, refused):
                raise NotSupported(
                    f"loglik is not supported by {self.endpoint} for {self.model!r}: the completions endpoint "
                    f"refused echo+logprobs ({_message(exc.__cause__)})"
                ) from exc
            raise

    async def _score(self, prefix: str, continuation: str) -> tuple[float, int]:
        """Sum of the echoed prompt logprobs of the tokens that overlap ``continuation``."""
        text = prefix + continuation
        response = await self._echo(text)
        choices = _choices(response)
        lp = getattr(choices[0], "logprobs", None)
        tokens = getattr(lp, "tokens", None)
        values = getattr(lp, "token_logprobs", None)
        if not tokens or values is None:
            raise NotSupported(
                f"loglik is not supported by {self.endpoint} for {self.model!r}: echo+logprobs returned no prompt logprobs"
            )
        offsets = getattr(lp, "text_offset", None) or _offsets(tokens)
        total = 0.0
        for token, offset, value in zip(tokens, offsets, values):
            # Tokens overlapping the continuation, not the one generated token after the prompt.
            if value is not None and offset + len(token) > len(prefix) and offset < len(text):
                total += float(value)
        usage = getattr(response, "usage", None)
        return total, int(getattr(usage, "prompt_tokens", 0) or 0)


# -- helpers -----------------------------------------------------------------------------------
def _choices(response: Any) -> list[Any]:
    choices = getattr(response, "choices", None)
    if not choices:
        raise MalformedResponse("the server answered without choices")
    return sorted(choices, key=lambda c: getattr(c, "index", 0) or 0)


def _result(response: Any, completions: list[Completion]) -> GenerationResult:
    usage = getattr(response, "usage", None)
    return GenerationResult(
        completions=completions,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        calls=1,
    )


def _merge(a: GenerationResult, b: GenerationResult) -> GenerationResult:
    return GenerationResult(
        completions=a.completions + b.completions,
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        calls=a.calls + b.calls,
    )


def _cut_at_stop(completion: Completion, stop: list[str] | None) -> None:
    """Cut at a stop string the server did not honour (e.g. the 5th one); keeps tokens in step."""
    if not stop:
        return
    cuts = [completion.text.find(s) for s in stop if s and s in completion.text]
    if not cuts:
        return
    cut = min(cuts)
    completion.text = completion.text[:cut]
    completion.finish_reason = "stop"
    if completion.tokens is not None and completion.token_logprobs is not None:
        kept, length = 0, 0
        while kept < len(completion.tokens) and length < cut:
            length += len(completion.tokens[kept])
            kept += 1
        completion.tokens = completion.tokens[:kept]
        completion.token_logprobs = completion.token_logprobs[:kept]


def _offsets(tokens: list[str]) -> list[int]:
    offsets, position = [], 0
    for token in tokens:
        offsets.append(position)
        position += len(token)
    return offsets


def _is_transient(exc: BaseException) -> bool:
    """Worth another try: rate limits, server errors, timeouts, dropped connections, garbage."""
    if isinstance(exc, openai.RateLimitError):
        return _error_code(exc) != "insufficient_quota"
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in (408, 409)
    if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError, MalformedResponse)):
        return True
    return isinstance(exc, ValueError)  # a truncated / non-JSON body (json.JSONDecodeError)


def _retry_after_s(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue  # an HTTP date; fall back to our own backoff
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def _error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)  # the SDK lifts it from the error body
    return str(code) if code else None


def _message(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = " ".join(str(exc).split()) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, openai.APIConnectionError) and cause is not None:
        text = f"{text} ({type(cause).__name__}: {' '.join(str(cause).split())[:200]})"
    return text[:400]


def unreachable_reason(exc: BaseException) -> str | None:
    """Why no connection was made: "resolve" (no such host name), "refused" (nobody listens
    on that port), "unreachable" (no route), or None (a connection was made, or it timed out)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).lower()
        if isinstance(current, socket.gaierror) or "name or service not known" in text \
                or "temporary failure in name resolution" in text or "nodename nor servname" in text:
            return "resolve"
        if isinstance(current, ConnectionRefusedError) or getattr(current, "errno", None) == errno.ECONNREFUSED \
                or "connection refused" in text:
            return "refused"
        if getattr(current, "errno", None) in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "unreachable"
        current = current.__cause__ or current.__context__
    return None
