"""Token counts as each model counts them (rafa_core/llm/tokens.py), with no network."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json

import pytest
import tiktoken
import tiktoken.load
from tiktoken_ext import openai_public

from rafa_core.llm.registry import BackendOptions, make_llm
from rafa_core.llm.scripted import ReplayLLM, ScriptedLLM
from rafa_core.llm.tokens import (
    DEFAULT_STAND_IN,
    _ENCODINGS,
    _quicktok_data,
    counter_for_model,
    ranks_from_quicktok,
    tiktoken_encoding,
    tiktoken_file_sha256,
)

TEXTS = [
    "",
    "Input: 4 5 6 10\nPossible next steps:\n4 + 5 = 9 (left: 6 9 10)\n10 - 4 = 6 (left: 5 6 6)",
    "Evaluate if given numbers can reach 24 (sure/likely/impossible)\n10 14\n10 + 14 = 24\nsure",
    " X | O | . \n---+---+---\n . | X | O \nWinner: none. Empty cells: 3, 7, 9.",
    "naïve café, 日本語のテキスト, emoji 🚀🎲, tabs\tand   spaces, <|endoftext|> said literally",
    "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}  # code\r\n",
]
URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}


def no_network(url: str) -> bytes:
    raise AssertionError(f"tiktoken tried to download {url}")


@pytest.fixture(scope="module")
def tiktokens(tmp_path_factory):
    """tiktoken's own encodings, by tiktoken's own code: the installed data written as the
    .tiktoken files tiktoken would download, placed in its cache, where tiktoken checks
    them against its published SHA-256; any download attempt fails the test."""
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    for name, url in URLS.items():
        ranks = ranks_from_quicktok(_quicktok_data(_ENCODINGS[name].data_file))
        text = b"".join(base64.b64encode(t) + b" %d\n" % r for t, r in sorted(ranks.items(), key=lambda x: x[1]))
        (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
        patch.setattr(tiktoken.load, "read_file", no_network)
        yield {name: tiktoken.Encoding(**openai_public.ENCODING_CONSTRUCTORS[name]()) for name in URLS}


@pytest.mark.parametrize("model, encoding", [("gpt-4", "cl100k_base"), ("gpt-3.5-turbo", "cl100k_base"),
                                             ("gpt-4o", "o200k_base"), ("gpt-4o-mini", "o200k_base"),
                                             ("gpt-4o-2024-08-06", "o200k_base"), ("gpt-4.1-mini", "o200k_base")])
def test_openai_counts_equal_tiktokens(tiktokens, model, encoding):
    counter = counter_for_model(model)
    assert counter.exact and encoding in counter.name
    reference = tiktokens[encoding]
    assert reference.name == tiktoken.encoding_name_for_model(model)
    for text in TEXTS:
        assert counter.text(text) == len(reference.encode_ordinary(text))
        assert counter.encoding.encode_ordinary(text) == reference.encode_ordinary(text)


def test_our_encodings_have_tiktokens_parameters_and_published_files(tiktokens):
    for name, reference in tiktokens.items():
        ours = tiktoken_encoding(name)
        assert ours._pat_str == reference._pat_str
        assert ours._special_tokens == reference._special_tokens
        assert ours.n_vocab == reference.n_vocab
        ranks = ranks_from_quicktok(_quicktok_data(_ENCODINGS[name].data_file))
        assert tiktoken_file_sha256(ranks) == _ENCODINGS[name].sha256


def test_chat_prompts_count_openais_message_formatting(tiktokens):
    messages = [{"role": "system", "content": TEXTS[1]}, {"role": "user", "content": TEXTS[4]}]
    enc = tiktokens["o200k_base"]
    # 3 tokens around each message, its role and content, and 3 to start the reply.
    expected = sum(3 + len(enc.encode(m["role"])) + len(enc.encode_ordinary(m["content"])) for m in messages) + 3
    assert counter_for_model("gpt-4o").prompt(messages) == expected
    # Completion models take the text as it is.
    instruct = counter_for_model("gpt-3.5-turbo-instruct")
    assert instruct.prompt([{"role": "user", "content": TEXTS[2]}]) == len(tiktokens["cl100k_base"].encode(TEXTS[2]))


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-3.5-turbo-instruct"])
def test_the_quick_bound_is_never_below_the_count(tiktokens, model):
    # The context check skips tokenizing when this bound fits; ASCII and non-ASCII texts alike.
    counter = counter_for_model(model)
    for text in TEXTS + ["caf\u00e9 \u00fcber \u4e2d\u6587 \U0001f600 " * 20]:
        for messages in ([{"role": "user", "content": text}],
                         [{"role": "system", "content": text}, {"role": "user", "content": text[::-1]}]):
            bound = counter.at_most(messages)
            assert bound >= counter.prompt(messages)
            if counter.completions_api:  # every byte of the text a token at most
                assert bound == len("\n\n".join(m["content"] for m in messages).encode())
            else:  # and of each message's role and content, plus the chat format's tokens
                assert bound == sum(3 + len(m["role"].encode()) + 1 + len(m["content"].encode()) + 1
                                    for m in messages) + 3


def test_a_model_tiktoken_does_not_know_is_an_estimate():
    counter = counter_for_model("llama3:8b")
    assert not counter.exact and "estimate" in counter.name and "cl100k_base" in counter.name


def _as(model: str | None, text: str = "4 + 5 = 9 (left: 6 9 10)") -> ScriptedLLM:
    return ScriptedLLM(lambda prompt, request: text, counts_as=model)


@pytest.mark.parametrize("model, encoding", [("gpt-4", "cl100k_base"), ("gpt-4o", "o200k_base"), (None, "o200k_base")])
def test_a_simulated_backend_reports_tokens_as_the_model_it_stands_in_for(tiktokens, model, encoding):
    llm = _as(model)
    prompt = [{"role": "user", "content": TEXTS[4]}]
    asyncio.run(llm.generate(prompt, n=2, temperature=0.7))
    enc = tiktokens[encoding]
    assert llm.usage.prompt_tokens == 3 + 1 + len(enc.encode_ordinary(TEXTS[4])) + 3
    assert llm.usage.completion_tokens == 2 * len(enc.encode_ordinary("4 + 5 = 9 (left: 6 9 10)"))
    assert llm.describe()["counts_tokens_as"] == counter_for_model(model or DEFAULT_STAND_IN).name


def test_the_stand_in_changes_the_counts(tiktokens):
    counts = {}
    for model in ("gpt-4", "gpt-4o"):
        llm = _as(model)
        asyncio.run(llm.generate(TEXTS[4]))
        counts[model] = llm.usage.prompt_tokens
    assert counts["gpt-4"] != counts["gpt-4o"]  # cl100k_base and o200k_base cut this text differently


def test_replayed_answers_count_as_the_named_model(tmp_path, tiktokens):
    record = tmp_path / "answers.jsonl"
    record.write_text(json.dumps({"prompt": "How many?", "completions": ["twenty-four"]}) + "\n")
    llm = make_llm(f"replay:{record}", BackendOptions(counts_as="gpt-4"))
    assert isinstance(llm, ReplayLLM)
    asyncio.run(llm.generate("How many?"))
    enc = tiktokens["cl100k_base"]
    assert llm.usage.prompt_tokens == 7 + len(enc.encode("How many?"))
    assert llm.usage.completion_tokens == len(enc.encode("twenty-four"))
