"""How the openai backend tells failures apart: what is worth another attempt, how long to wait,
which refused parameters it can do without, and the one-line error a request ends with."""

from __future__ import annotations

import errno
import math
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import openai

from .errors import BackendError, UserError
from .openai_wire import MalformedResponse

MAX_RETRY_AFTER_S = 60.0
# What a refused parameter becomes (OpenAI's reasoning models refuse these with a 400).
_NO_LOGPROBS = "leaving it out: samples carry no log-probabilities (ranked by frequency instead)"
ADAPTATIONS = {
    "max_tokens": "sending max_completion_tokens instead (hidden reasoning tokens count against it, "
                  "so an answer may come back empty: a failed step in the log)",
    "temperature": "leaving it out: the model samples at its own temperature, so greedy calls are not greedy",
    "stop": "leaving it out: answers are cut at the stop strings here",
    "logprobs": _NO_LOGPROBS,
    "top_logprobs": _NO_LOGPROBS,
    "seed": "leaving it out: the server samples without --seed (the cache still replays a run)",
}
REFUSAL_CODES = ("unsupported_parameter", "unsupported_value")


@dataclass
class RetryStats:
    """Shared by every view of one backend (``with_usage`` copies share this object)."""

    requests: int = 0  # HTTP requests attempted, retries included
    retries: int = 0  # attempts after the first, over all requests
    failures: int = 0  # requests that failed after all their retries
    max_retries_one_request: int = 0  # the most retries any single request needed


def final_error(exc: Exception, attempts: int, *, name: str, model: str, where: str) -> Exception:
    """The error a request that failed for good raises: a one-line UserError for what the user can
    fix (key, model name, quota, an unreachable server), else a BackendError."""
    detail = message_of(exc)
    if isinstance(exc, openai.AuthenticationError):
        return UserError(f"authentication failed at {where} (check the API key / OPENAI_API_KEY): {detail}")
    if isinstance(exc, openai.PermissionDeniedError):
        return UserError(f"permission denied at {where} for model {model!r}: {detail}")
    if isinstance(exc, openai.NotFoundError):
        return UserError(f"unknown model {model!r} at {where}: {detail}")
    if isinstance(exc, openai.RateLimitError) and error_code(exc) == "insufficient_quota":
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
    return BackendError(f"{name} {model!r} at {where}: {detail} (after {attempts} attempts)")


def is_transient(exc: BaseException) -> bool:
    """Worth another try: rate limits, server errors, timeouts, dropped connections, garbage."""
    if isinstance(exc, openai.RateLimitError):
        return error_code(exc) != "insufficient_quota"
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in (408, 409)
    if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError, MalformedResponse)):
        return True
    return isinstance(exc, ValueError)  # a truncated / non-JSON body (json.JSONDecodeError)


def retry_after_s(exc: BaseException | None) -> float | None:
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


def error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)  # the SDK lifts it from the error body
    return str(code) if code else None


def message_of(exc: BaseException | None) -> str:
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
