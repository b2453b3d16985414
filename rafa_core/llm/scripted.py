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

from .base import BaseLLM, Completion, GenerationResult, Prompt, as_messages, as_text, cut_at_stop, request_key
from .context import known_context_window
from .draws import draw_of
from .errors import BackendError, UserError
from .tokens import DEFAULT_STAND_IN, TokenCounter, TokenizerMissing, counter_for_model

if TYPE_CHECKING:
    from .options import BackendOptions


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
        super().__init__(name, name, seed=seed, **kwargs)
        self.counts_as = counts_as or DEFAULT_STAND_IN
        self.rule = rule
        self.loglik_rule = loglik_rule
        self.supports_loglik = loglik_rule is not None

    def _rng_for(self, text: str, n: int, temperature: float, first_sample: int = 0) -> random.Random:
        draw = f"|{first_sample}" if first_sample else ""  # keeps first draws as they were
        digest = hashlib.sha256(f"{self.seed}|{n}|{temperature}{draw}|{text}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _draw_kwargs(self, first_sample: int) -> dict:
        return {"first_sample": first_sample} if first_sample else {}

    async def _generate(self, prompt, *, n, temperature, max_tokens, stop, logprobs, first_sample=0):
        return self.answer(prompt, n=n, temperature=temperature, max_tokens=max_tokens, stop=stop,
                           logprobs=logprobs, first_sample=first_sample)

    def draw_sampled_with(self, sampler_seed: int | None) -> int:
        """Which draw of this backend's ``seed`` a sampler seed names (0 for no seed); see
        :func:`~rafa_core.llm.draws.sampler_seed`. A server standing in for this backend reads
        the draw of a request from its ``seed`` this way."""
        return 0 if sampler_seed is None else draw_of(self.seed, sampler_seed)

    def answer(self, prompt: Prompt, *, n: int, temperature: float, max_tokens: int, stop: list[str] | None,
               logprobs: bool, first_sample: int = 0) -> GenerationResult:
        """Samples ``first_sample ..`` of a request as the rule gives them, cut at the stop strings;
        no cache, no ledger (what ``generate`` asks on a cache miss, and what a server answers)."""
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
            completions.append(cut_at_stop(Completion(text=a, finish_reason="stop"), stop))
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
    A run's request log (``requests.jsonl``, or the run directory itself) replays exactly:
    its lines also carry the sampling parameters and which samples they were, so a rerun
    of the same configuration gets the same answers (fresh draws included) and the same
    log-likelihood scores.
    """

    simulated = True

    def __init__(self, path: str | Path, counts_as: str | None = None, **kwargs) -> None:
        super().__init__(f"replay:{path}", "replay", **kwargs)
        self.counts_as = counts_as or DEFAULT_STAND_IN
        source = Path(path)
        if source.is_dir():
            source = source / "requests.jsonl"
        self.answers: dict[str, list[str]] = {}
        self.samples: dict[str, dict[int, Completion]] = {}  # exact request -> sample index -> answer
        self.scores: dict[str, float] = {}  # (prefix, continuation) -> log-likelihood
        self._load(source)
        self.supports_loglik = bool(self.scores)

    @staticmethod
    def _prompt_key(prompt: Prompt) -> str:
        return request_key({"messages": as_messages(prompt)}, 0)

    @staticmethod
    def _exact_key(prompt: Prompt, temperature: float, max_tokens: int, stop: list[str] | None, logprobs: bool) -> str:
        return request_key({"messages": as_messages(prompt), "temperature": temperature, "max_tokens": max_tokens,
                            "stop": list(stop) if stop else None, "logprobs": bool(logprobs)}, 0)

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise UserError(f"replay file not found: {path}")
        for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):  # U+2028 is text
            if not line.strip():
                continue
            try:
                self._add(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise UserError(f"replay file {path}:{lineno}: not a recorded answer ({exc})")

    def _add(self, record: dict) -> None:
        if record.get("op") == "loglik":
            for continuation, score in zip(record["continuations"], record["scores"]):
                self.scores[request_key({"prefix": record["prefix"], "continuation": continuation}, 0)] = float(score)
            return
        prompt = record["messages"] if "messages" in record else record["prompt"]
        completions = [c if isinstance(c, dict) else {"text": str(c)} for c in record["completions"]]
        self.answers.setdefault(self._prompt_key(prompt), []).extend(str(c["text"]) for c in completions)
        params = record.get("params")
        if params:
            exact = self.samples.setdefault(self._exact_key(prompt, params["temperature"], params["max_tokens"],
                                                            params.get("stop"), params.get("logprobs", False)), {})
            for i, completion in enumerate(completions):
                exact.setdefault(int(params.get("first_sample", 0)) + i, Completion.from_json(completion))

    def _draw_kwargs(self, first_sample: int) -> dict:
        return {"first_sample": first_sample} if first_sample else {}

    async def _generate(self, prompt, *, n, temperature, max_tokens, stop, logprobs, first_sample=0):
        exact = self.samples.get(self._exact_key(prompt, temperature, max_tokens, stop, logprobs), {})
        wanted = range(first_sample, first_sample + n)
        if all(i in exact for i in wanted):
            completions = [Completion.from_json(exact[i].to_json()) for i in wanted]
        else:
            recorded = self.answers.get(self._prompt_key(prompt))
            if not recorded:
                raise BackendError(f"replay: no recorded answer for prompt {as_text(prompt)[:80]!r}")
            completions = [cut_at_stop(Completion(text=recorded[i % len(recorded)], finish_reason="stop"), stop)
                           for i in range(n)]
        prompt_tokens, completion_tokens = self._usage_of(prompt, [c.text for c in completions])
        return GenerationResult(
            completions=completions,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    async def _loglik(self, prefix, continuations):
        keys = [request_key({"prefix": prefix, "continuation": c}, 0) for c in continuations]
        missing = [c for c, k in zip(continuations, keys) if k not in self.scores]
        if missing:
            raise BackendError(f"replay: no recorded score for {missing[0][:60]!r} after {prefix[-60:]!r}")
        return [self.scores[k] for k in keys], self.token_counter().text(prefix), 1
