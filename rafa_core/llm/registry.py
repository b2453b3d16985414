"""One backend string everywhere: parse it and build the backend.

Forms: an OpenAI model name (``gpt-4o-mini``; with ``base_url`` any OpenAI-compatible
server's model), ``hf:<model id or path>``, ``local`` (the embedded SmolLM2),
``llamacpp:<gguf path>``, ``oracle`` / ``oracle:<error rate>`` (simulated, supplied by the
benchmark), ``replay:<file>``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .base import BaseLLM, UserError
from .cache import ResponseCache
from .usage import Usage

# Builds a benchmark's simulated backend from (error rate, options).
OracleFactory = Callable[[float, "BackendOptions"], BaseLLM]

_OPENAI_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-]*$")  # ft: fine-tunes keep their colons


@dataclass
class BackendOptions:
    base_url: str | None = None
    api_key: str | None = None
    cache: ResponseCache | None = None
    concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 6
    seed: int = 0
    usage: Usage = field(default_factory=Usage)
    # The model simulated backends count tokens as (default tokens.DEFAULT_STAND_IN).
    counts_as: str | None = None
    # --context-window: check prompts against this window; llamacpp opens the model with it.
    context_window: int | None = None


def describe_choice(requested: str | None, original_default: str, base_url: str | None) -> tuple[str, str]:
    """Pick the backend when the user named none; returns (backend, why) for the first line."""
    if requested:
        return requested, "chosen with a flag"
    if base_url:
        return original_default, f"the original's default model, served at {base_url}"
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("AZURE_OPENAI_API_KEY"):
        return original_default, "the original's default model (OPENAI_API_KEY is set)"
    return "local", "embedded SmolLM2-135M-Instruct: no OPENAI_API_KEY and no --base-url"


def make_llm(spec: str, options: BackendOptions, oracle: OracleFactory | None = None) -> BaseLLM:
    llm = _make_llm(spec, options, oracle)
    llm.window_override = options.context_window
    return llm


def _make_llm(spec: str, options: BackendOptions, oracle: OracleFactory | None = None) -> BaseLLM:
    spec = (spec or "").strip()
    if not spec:
        raise UserError("empty backend name")
    kind, _, arg = spec.partition(":")
    common = dict(usage=options.usage, cache=options.cache, concurrency=options.concurrency)
    if spec == "local":
        from .hf import local_llm

        return local_llm(**common)
    if kind == "hf":
        if not arg:
            raise UserError("hf backend needs a model: hf:<model id or path>")
        from .hf import HFLLM

        return HFLLM(arg, **common)
    if kind == "llamacpp":
        if not arg or not Path(arg).is_file():
            raise UserError(f"llamacpp backend needs an existing GGUF file: llamacpp:<path> (got {arg!r})")
        from .llamacpp import LlamaCppLLM

        return LlamaCppLLM(arg, seed=options.seed, n_ctx=options.context_window, **common)
    if kind == "oracle":
        if oracle is None:
            raise UserError("this entry point has no oracle backend")
        try:
            rate = float(arg) if arg else 0.0
        except ValueError:
            raise UserError(f"oracle error rate must be a number in [0, 1]: {spec!r}")
        if not 0.0 <= rate <= 1.0:
            raise UserError(f"oracle error rate must be a number in [0, 1]: {spec!r}")
        return oracle(rate, options)
    if kind == "replay":
        from .scripted import ReplayLLM

        return ReplayLLM(arg, counts_as=options.counts_as, **common)
    if kind == "scripted":
        raise UserError("the scripted backend is for tests; use oracle or replay:<file> on the command line")
    # Servers behind --base-url name models freely (Ollama's "llama3:8b"); OpenAI's do not.
    if not _OPENAI_NAME.match(spec) or (arg and kind != "ft" and not options.base_url):
        raise UserError(f"unknown backend {spec!r}: use an OpenAI model name, hf:<id>, local, llamacpp:<gguf>, oracle[:rate] or replay:<file>")
    from .openai_backend import OpenAILLM

    return OpenAILLM(
        spec,
        base_url=options.base_url,
        api_key=options.api_key,
        timeout=options.timeout,
        max_retries=options.max_retries,
        **common,
    )
