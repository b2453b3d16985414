"""Deterministic test doubles: rule-driven and replayed backends. Always labelled simulated.

They report tokens as the model they stand in for would count them (``counts_as``; default
:data:`~rafa_core.llm.tokens.DEFAULT_STAND_IN`), and check prompts against that model's
context window, so a simulated run's usage and context errors are the real model's.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, Union

from .base import (
    BackendError,
    BaseLLM,
    Completion,
    GenerationResult,
    Prompt,
    UserError,
    as_messages,
    as_text,
    request_key,
)
from .context import known_context_window
from .tokens import DEFAULT_STAND_IN, TokenCounter, TokenizerMissing, counter_for_model

if TYPE_CHECKING:
    from .registry import BackendOptions


@dataclass
class ScriptedRequest:
    """What a rule sees besides the prompt text."""

    prompt: Prompt
    n: int
    temperature: float
    max_tokens: int
    stop: list[str] | None
    logprobs: bool
    # Seeded from (seed, prompt, n, temperature): answers do not depend on call order,
    # so concurrent and sequential runs, and resumed runs, see the same answers.
    rng: random.Random


RuleAnswer = Union[str, Completion, Sequence[Union[str, Completion]]]
Rule = Callable[[str, ScriptedRequest], RuleAnswer]
LoglikRule = Callable[[str, str], float]


class StandIn:
    """Token counts and context window of the model a simulated backend stands in for."""

    counts_as: str = DEFAULT_STAND_IN

    def token_counter(self) -> TokenCounter:
        try:
            return counter_for_model(self.counts_as)
        except TokenizerMissing as exc:
            raise UserError(str(exc)) from None

    def context_window(self) -> int | None:
        return self.window_override or known_context_window(self.counts_as)  # type: ignore[attr-defined]

    def describe(self) -> dict:
        return {**super().describe(), "counts_tokens_as": self.token_counter().name}  # type: ignore[misc]

    def _usage_of(self, prompt: Prompt, texts: Sequence[str]) -> tuple[int, int]:
        counter = self.token_counter()
        return counter.prompt(as_messages(prompt)), sum(counter.text(t) for t in texts)


def _cut_at_stop(text: str, stop: list[str] | None) -> tuple[str, str]:
    if stop:
        cuts = [text.find(s) for s in stop if s and text.find(s) >= 0]
        if cuts:
            return text[: min(cuts)], "stop"
    return text, "stop"


class ScriptedLLM(StandIn, BaseLLM):
    """Answers from a rule ``(prompt_text, request) -> answer(s)``; no network, no model."""

    simulated = True

    def __init__(
        self,
        rule: Rule,
        *,
        name: str = "scripted",
        loglik_rule: LoglikRule | None = None,
        seed: int = 0,
        counts_as: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(name, name, **kwargs)
        self.counts_as = counts_as or DEFAULT_STAND_IN
        self.rule = rule
        self.loglik_rule = loglik_rule
        self.supports_loglik = loglik_rule is not None
        self.seed = seed

    def _rng_for(self, text: str, n: int, temperature: float, first_sample: int = 0) -> random.Random:
        draw = f"|{first_sample}" if first_sample else ""  # keeps first draws as they were
        digest = hashlib.sha256(f"{self.seed}|{n}|{temperature}{draw}|{text}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _draw_kwargs(self, first_sample: int) -> dict:
        return {"first_sample": first_sample} if first_sample else {}

    async def _generate(self, prompt, *, n, temperature, max_tokens, stop, logprobs, first_sample=0):
        text = as_text(prompt)
        request = ScriptedRequest(
            prompt=prompt,
            n=n,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            logprobs=logprobs,
            rng=self._rng_for(text, n, temperature, first_sample),
        )
        answer = self.rule(text, request)
        answers = [answer] if isinstance(answer, (str, Completion)) else list(answer)
        if not answers:
            answers = [""]
        while len(answers) < n:  # a rule may give one answer for all samples
            answers.append(answers[len(answers) % len(answers)])
        completions = []
        for a in answers[:n]:
            if isinstance(a, Completion):
                completions.append(a)
                continue
            body, reason = _cut_at_stop(a, stop)
            completions.append(Completion(text=body, finish_reason=reason))
        prompt_tokens, completion_tokens = self._usage_of(prompt, [c.text for c in completions])
        return GenerationResult(completions=completions, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    async def _loglik(self, prefix, continuations):
        assert self.loglik_rule is not None
        tokens = sum(self.token_counter().text(prefix + c) for c in continuations)
        return [self.loglik_rule(prefix, c) for c in continuations], tokens, 1


def oracle_backend(rule: Rule, error_rate: float, options: "BackendOptions", **kwargs) -> ScriptedLLM:
    """A benchmark's ``oracle`` / ``oracle:<rate>`` backend: its rule, named by the error rate,
    built with the shared backend options (seed, usage ledger, cache, concurrency)."""
    name = "oracle" if error_rate == 0 else f"oracle:{error_rate:g}"
    return ScriptedLLM(rule, name=name, seed=options.seed, usage=options.usage, cache=options.cache,
                       concurrency=options.concurrency, counts_as=options.counts_as, **kwargs)


class ReplayLLM(StandIn, BaseLLM):
    """Replays recorded answers from a JSONL file; an unrecorded request is an error.

    Each line: ``{"messages": [...] | "prompt": "...", "completions": ["...", ...]}``;
    the i-th completion answers sample i of that prompt, whatever the sampling settings.
    """

    simulated = True

    def __init__(self, path: str | Path, counts_as: str | None = None, **kwargs) -> None:
        super().__init__(f"replay:{path}", "replay", **kwargs)
        self.counts_as = counts_as or DEFAULT_STAND_IN
        self.answers = self._load(Path(path))

    @staticmethod
    def _prompt_key(prompt: Prompt) -> str:
        return request_key({"messages": as_messages(prompt)}, 0)

    def _load(self, path: Path) -> dict[str, list[str]]:
        if not path.is_file():
            raise UserError(f"replay file not found: {path}")
        answers: dict[str, list[str]] = {}
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                prompt = record["messages"] if "messages" in record else record["prompt"]
                texts = [str(t) for t in record["completions"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise UserError(f"replay file {path}:{lineno}: not a recorded answer ({exc})")
            answers.setdefault(self._prompt_key(prompt), []).extend(texts)
        return answers

    async def _generate(self, prompt, *, n, temperature, max_tokens, stop, logprobs):
        recorded = self.answers.get(self._prompt_key(prompt))
        if not recorded:
            raise BackendError(f"replay: no recorded answer for prompt {as_text(prompt)[:80]!r}")
        texts = [_cut_at_stop(recorded[i % len(recorded)], stop)[0] for i in range(n)]
        prompt_tokens, completion_tokens = self._usage_of(prompt, texts)
        return GenerationResult(
            completions=[Completion(text=t, finish_reason="stop") for t in texts],
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
