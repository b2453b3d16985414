"""One backend string everywhere: parse it and build the backend.

Forms: an OpenAI model name (``gpt-4o-mini``; with ``base_url`` any OpenAI-compatible
server's model), ``hf:<model id or path>``, ``local`` (the embedded SmolLM2),
``llamacpp:<gguf path>``, ``oracle`` / ``oracle:<error rate>`` (simulated, supplied by the
benchmark), ``replay:<file>``.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from .base import BaseLLM
from .errors import UserError
from .options import BackendOptions, OracleFactory  # noqa: F401  (re-exported)

# Model names users commonly mean, for "did you mean" (any other name is still passed on as is).
KNOWN_MODELS = ("gpt-4", "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-3.5-turbo",
                "gpt-3.5-turbo-instruct", "gpt-5", "gpt-5-mini", "o1", "o3", "o3-mini", "o4-mini")

_OPENAI_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-]*$")  # ft: fine-tunes keep their colons
# Names OpenAI itself serves start like this; anything else is more likely a typo of ours.
_OPENAI_FAMILY = re.compile(r"^(gpt-|chatgpt-|o\d|text-|davinci|babbage|codex|computer-use|ft:)", re.IGNORECASE)
_KINDS = ("local", "oracle", "replay", "hf", "llamacpp")
_FORMS = "an OpenAI model name, hf:<id>, local, llamacpp:<gguf>, oracle[:rate] or replay:<file>"


def describe_choice(requested: str | None, original_default: str, base_url: str | None) -> tuple[str, str]:
    """Pick the backend when the user named none; returns (backend, why) for the first line."""
    if requested:
        return requested, "chosen with a flag"
    if base_url:
        return original_default, f"the original's default model, served at {base_url}"
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("AZURE_OPENAI_API_KEY"):
        return original_default, "the original's default model (OPENAI_API_KEY is set)"
    return "local", "embedded SmolLM2-135M-Instruct: no OPENAI_API_KEY and no --base-url"


# Backends that run here (weights on this machine, or simulated): their calls cost nothing.
FREE_KINDS = frozenset({"local", "hf", "llamacpp", "oracle", "replay", "scripted"})


def did_you_mean(name: str) -> str:
    """`` (did you mean local?)`` for a name close to a known backend or priced model, else ""."""
    known = list(_KINDS) + [m for m in KNOWN_MODELS if m != name]
    close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.75)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def _names_are_free(options: BackendOptions) -> bool:
    """A --base-url server or an Azure resource names its models (deployments) as it likes."""
    return bool(options.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT"))


def make_llm(spec: str, options: BackendOptions, oracle: OracleFactory | None = None) -> BaseLLM:
    llm = _make_llm(spec, options, oracle)
    if (spec or "").strip().partition(":")[0] in FREE_KINDS:
        options.usage.mark_free(llm.model)
    llm.window_override = options.context_window
    return llm


def _make_llm(spec: str, options: BackendOptions, oracle: OracleFactory | None = None) -> BaseLLM:
    spec = (spec or "").strip()
    if not spec:
        raise UserError("empty backend name")
    kind, _, arg = spec.partition(":")
    # --seed reaches every backend: its samplers and its cache keys (see base.py, draws.py).
    common = dict(usage=options.usage, cache=options.cache, concurrency=options.concurrency, seed=options.seed)
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

        return LlamaCppLLM(arg, n_ctx=options.context_window, **common)
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
        raise UserError(f"unknown backend {spec!r}{did_you_mean(kind) or ': use ' + _FORMS}")
    hint = "" if _names_are_free(options) or _OPENAI_FAMILY.match(spec) else did_you_mean(spec)
    if hint:
        raise UserError(f"unknown backend {spec!r}{hint}; the forms are {_FORMS}")
    from .openai_backend import OpenAILLM

    return OpenAILLM(
        spec,
        base_url=options.base_url,
        api_key=options.api_key,
        timeout=options.timeout,
        max_retries=options.max_retries,
        **common,
    )
