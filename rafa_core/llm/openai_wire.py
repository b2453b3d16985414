"""Reading the openai backend's answers: decoded JSON in, samples out. Anything shaped
otherwise is a :class:`MalformedResponse`, which the backend retries like a dropped connection."""

from __future__ import annotations

from typing import Any

from .base import Completion, GenerationResult


class MalformedResponse(Exception):
    """The server answered 200 with something that is not a usable completion."""


def chat_result(response: Any, logprobs: bool) -> GenerationResult:
    """A chat completions answer as samples (with token log-probabilities when asked)."""
    completions = []
    for choice in choices(response):
        message = choice.get("message")
        if not isinstance(message, dict):
            raise MalformedResponse("a chat choice without a message")
        tokens = token_logprobs = None
        content = field_of(choice.get("logprobs"), "content")
        if logprobs and content:
            tokens = [as_str(t.get("token")) for t in all_dicts(content)]
            token_logprobs = [as_number(t.get("logprob")) for t in all_dicts(content)]
        text = message.get("content") or ""
        completions.append(
            Completion(as_str(text), choice.get("finish_reason"), token_logprobs=token_logprobs, tokens=tokens)
        )
    return result_of(response, completions)


def completions_result(response: Any, logprobs: bool) -> GenerationResult:
    """A (legacy) completions answer as samples (with token log-probabilities when asked)."""
    completions = []
    for choice in choices(response):
        text = choice.get("text")
        if not isinstance(text, str):
            raise MalformedResponse("a completion choice without text")
        tokens = token_logprobs = None
        lp = choice.get("logprobs")
        lp_tokens, lp_values = field_of(lp, "tokens"), field_of(lp, "token_logprobs")
        if logprobs and isinstance(lp_tokens, list) and isinstance(lp_values, list):
            tokens = [as_str(t) for t in lp_tokens]
            token_logprobs = [as_number(x) if x is not None else 0.0 for x in lp_values]
        completions.append(Completion(text, choice.get("finish_reason"), token_logprobs=token_logprobs, tokens=tokens))
    return result_of(response, completions)


def choices(response: Any) -> list[dict[str, Any]]:
    choices = field_of(response, "choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse("the server answered without choices")
    return sorted(all_dicts(choices), key=lambda c: c.get("index") if isinstance(c.get("index"), int) else 0)


def field_of(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else None


def all_dicts(values: list[Any]) -> list[dict[str, Any]]:
    if not all(isinstance(v, dict) for v in values):
        raise MalformedResponse("a list of objects holds something else")
    return values


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise MalformedResponse(f"expected text, got {type(value).__name__}")
    return value


def as_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedResponse(f"expected a number, got {type(value).__name__}")
    return float(value)


def usage_count(response: Any, name: str) -> int:
    value = field_of(field_of(response, "usage"), name)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def result_of(response: Any, completions: list[Completion]) -> GenerationResult:
    return GenerationResult(
        completions=completions,
        prompt_tokens=usage_count(response, "prompt_tokens"),
        completion_tokens=usage_count(response, "completion_tokens"),
        calls=1,
    )


def merged(a: GenerationResult, b: GenerationResult) -> GenerationResult:
    return GenerationResult(
        completions=a.completions + b.completions,
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        calls=a.calls + b.calls,
    )


def token_offsets(tokens: list[str]) -> list[int]:
    offsets, position = [], 0
    for token in tokens:
        offsets.append(position)
        position += len(token)
    return offsets
