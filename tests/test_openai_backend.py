"""The openai backend: configuration and errors, sampling logic against the loopback server,
and chat / n / stop / logprobs / usage / loglik against a real llama.cpp server (slow)."""

from __future__ import annotations

import asyncio

import pytest

from rafa_core.llm.errors import BackendError, NotSupported, UserError
from rafa_core.llm.cache import ResponseCache
from rafa_core.llm.draws import sampler_seed
from rafa_testkit.loopback import LoopbackServer
from rafa_core.llm.openai_backend import OpenAILLM
from rafa_core.llm.registry import BackendOptions, make_llm
from rafa_core.llm.scripted import ScriptedLLM
from tests.llama_server import free_port, running_llama_server

FAST = dict(timeout=2.0, max_retries=2, backoff_base_s=0.001, backoff_max_s=0.01)


def numbered_rule(text, request):
    """Distinct answers per sample, drawn from the request's seeded rng."""
    return [f"answer {i} to {text[:12]} r{request.rng.randrange(1000)}" for i in range(request.n)]


def length_loglik(prefix: str, continuation: str) -> float:
    return -0.5 if continuation.strip() == "Paris" else -float(len(continuation))


@pytest.fixture
def no_keys(monkeypatch):
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT"):
        monkeypatch.delenv(name, raising=False)


# -- configuration and errors (no network) ------------------------------------------------------
def test_missing_key_is_one_line_user_error(no_keys):
    with pytest.raises(UserError) as info:
        make_llm("gpt-4o-mini", BackendOptions())
    message = str(info.value)
    assert "OPENAI_API_KEY" in message and "\n" not in message


def test_base_url_needs_no_key(no_keys):
    llm = OpenAILLM("whatever", base_url="http://127.0.0.1:9/v1")
    assert llm.endpoint == "http://127.0.0.1:9/v1"
    assert llm._client_args["api_key"] == "not-needed"


def test_azure_is_chosen_from_its_env_vars(no_keys, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key")
    llm = OpenAILLM("gpt-4o")
    assert llm._client_args["kind"] == "azure"
    assert llm._client_args["azure_deployment"] == "gpt-4o"
    assert llm.endpoint == "https://example.openai.azure.com"


def test_completion_models_use_the_completions_api(no_keys):
    assert OpenAILLM("gpt-3.5-turbo-instruct", api_key="k").use_completions
    assert OpenAILLM("davinci-002", api_key="k").use_completions
    assert not OpenAILLM("gpt-4o-mini", api_key="k").use_completions
    assert OpenAILLM("gpt-4o-mini", api_key="k", mode="completions").use_completions


def test_loglik_on_an_openai_chat_model_is_not_supported_without_a_request(no_keys):
    llm = OpenAILLM("gpt-4o-mini", api_key="sk-test")
    with pytest.raises(NotSupported, match="chat model"):
        asyncio.run(llm.loglik("The capital of France is", [" Paris"]))
    assert llm.stats.requests == 0


def test_unreachable_base_url_is_a_user_error():
    llm = OpenAILLM("m", base_url=f"http://127.0.0.1:{free_port()}/v1", **FAST)
    with pytest.raises(UserError, match="connection refused"):
        asyncio.run(llm.generate("hi"))
    assert llm.stats.requests == 1  # nothing ever answered there: no retries (tests/test_connection_errors.py)


def test_unknown_model_is_a_user_error():
    with LoopbackServer(numbered_rule, known_models=("served",)) as server:
        llm = OpenAILLM("missing-model", base_url=server.base_url, **FAST)
        with pytest.raises(UserError, match="unknown model 'missing-model'"):
            asyncio.run(llm.generate("hi"))
        assert server.stats.requests == 1  # a 404 is not retried


def test_a_wrong_key_is_a_user_error():
    with LoopbackServer(numbered_rule, api_key="right") as server:
        llm = OpenAILLM("m", base_url=server.base_url, api_key="wrong", **FAST)
        with pytest.raises(UserError, match="authentication failed"):
            asyncio.run(llm.generate("hi"))
        assert server.stats.requests == 1  # a 401 is not retried
        good = OpenAILLM("m", base_url=server.base_url, api_key="right", **FAST)
        assert asyncio.run(good.generate("hi"))[0].text.startswith("answer 0")


def test_the_registry_sends_model_names_with_a_base_url_to_the_server(no_keys):
    with LoopbackServer(numbered_rule) as server:
        llm = make_llm("gpt-4o-mini", BackendOptions(base_url=server.base_url, max_retries=0))
        assert isinstance(llm, OpenAILLM)
        [completion] = asyncio.run(llm.generate("hi", max_tokens=5))
    assert completion.text.startswith("answer 0 to hi")
    assert llm.usage.cost_usd > 0  # priced as gpt-4o-mini


# -- sampling logic against the loopback server -------------------------------------------------
@pytest.mark.parametrize("api", ["chat", "completions"])
def test_answers_match_scripted_llm_with_the_same_seed(api):
    prompts = [f"question {i}" for i in range(5)]

    async def run(llm):
        first = await asyncio.gather(*(llm.generate(p, n=3, temperature=0.7) for p in prompts))
        later = await asyncio.gather(*(llm.generate(p, n=2, temperature=0.7, first_sample=3) for p in prompts))
        return first + later

    with LoopbackServer(numbered_rule, seed=7) as server:
        remote = asyncio.run(run(OpenAILLM("m", base_url=server.base_url, mode=api, seed=7, **FAST)))
    local = asyncio.run(run(ScriptedLLM(numbered_rule, seed=7)))
    assert [[c.text for c in r] for r in remote] == [[c.text for c in r] for r in local]
    assert remote[0][0].text != remote[len(prompts)][0].text  # a later draw is a fresh sample


@pytest.mark.parametrize("http", ["lean", "sdk"])
def test_the_run_seed_reaches_the_server_on_both_http_paths(http):
    async def ask(llm):
        return [c.text for c in await llm.generate("q", n=3, temperature=0.7)]

    with LoopbackServer(numbered_rule, seed=4) as server:
        same = asyncio.run(ask(OpenAILLM("m", base_url=server.base_url, http=http, seed=4, **FAST)))
        other = asyncio.run(ask(OpenAILLM("m", base_url=server.base_url, http=http, seed=5, **FAST)))
    assert same == asyncio.run(ask(ScriptedLLM(numbered_rule, seed=4)))
    assert other != same  # another seed, other samples


def test_each_request_carries_the_sampler_seed_of_its_first_draw(monkeypatch):
    sent = []

    class Capture:
        async def post(self, path, body, headers=None):
            sent.append(body["seed"])
            return {"choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": "stop"}]}

    llm = OpenAILLM("m", base_url="http://127.0.0.1:9/v1", seed=11, **FAST)
    monkeypatch.setattr(llm, "_client", lambda: Capture())
    asyncio.run(llm.generate("q", n=2, temperature=0.7))  # one choice per answer: a top-up for draw 1
    asyncio.run(llm.generate("q", n=1, temperature=0.7, first_sample=5))
    assert sent == [11, sampler_seed(11, 1), sampler_seed(11, 5)]


@pytest.mark.parametrize("cap, n, expected_requests", [(1, 3, 3), (2, 5, 3), (None, 4, 1)])
def test_fewer_choices_than_n_are_topped_up(cap, n, expected_requests):
    with LoopbackServer(numbered_rule, max_choices=cap) as server:
        llm = OpenAILLM("m", base_url=server.base_url, **FAST)
        completions = asyncio.run(llm.generate("q", n=n))
        assert len(completions) == n
        assert len({c.text for c in completions}) == n  # top-ups are later draws, not repeats
        assert server.stats.requests == expected_requests
        assert llm.usage.calls == expected_requests


def test_a_server_that_gives_nothing_more_is_a_backend_error():
    # max_choices=0 answers with no choices at all: malformed, retried, then given up.
    with LoopbackServer(numbered_rule, max_choices=0) as server:
        llm = OpenAILLM("m", base_url=server.base_url, **FAST)
        with pytest.raises(BackendError):
            asyncio.run(llm.generate("q", n=2))
        assert server.stats.requests == FAST["max_retries"] + 1


def test_cache_hit_makes_no_request(tmp_path):
    with LoopbackServer(numbered_rule) as server:
        cache = ResponseCache(tmp_path / "cache.sqlite")
        llm = OpenAILLM("m", base_url=server.base_url, cache=cache, **FAST)
        first = asyncio.run(llm.generate("q", n=2))
        assert server.stats.requests == 1
        again = asyncio.run(llm.generate("q", n=2))
        assert server.stats.requests == 1
        assert [c.text for c in again] == [c.text for c in first]
        assert all(c.cached for c in again)
        assert llm.usage.cache_hits == 2


def test_usage_comes_from_the_response():
    with LoopbackServer(lambda text, r: "one two three") as server:
        llm = OpenAILLM("m", base_url=server.base_url, **FAST)
        asyncio.run(llm.generate("a b c d", n=2))
    assert llm.usage.calls == 1
    # The loopback counts as tiktoken would ("m": cl100k_base): 4 tokens + 7 of chat formatting.
    assert llm.usage.prompt_tokens == 11
    assert llm.usage.completion_tokens == 6


def test_more_than_four_stop_strings_are_cut_locally():
    with LoopbackServer(lambda text, r: "alpha beta gamma delta") as server:
        llm = OpenAILLM("m", base_url=server.base_url, **FAST)
        [completion] = asyncio.run(llm.generate("q", stop=["x1", "x2", "x3", "x4", "gamma"]))
    assert completion.text == "alpha beta "


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_logprobs_are_parsed(api):
    with LoopbackServer(lambda text, r: "the cat sat") as server:
        llm = OpenAILLM("m", base_url=server.base_url, mode=api, **FAST)
        [completion] = asyncio.run(llm.generate("q", logprobs=True))
    assert "".join(completion.tokens) == "the cat sat"
    assert len(completion.token_logprobs) == len(completion.tokens)
    assert all(lp < 0 for lp in completion.token_logprobs)


def test_loglik_through_echo_matches_the_rule():
    continuations = [" Paris", " banana", " the moon"]
    with LoopbackServer(numbered_rule, loglik_rule=length_loglik) as server:
        llm = OpenAILLM("m", base_url=server.base_url, **FAST)
        remote = asyncio.run(llm.loglik("The capital of France is", continuations))
    local = asyncio.run(ScriptedLLM(numbered_rule, loglik_rule=length_loglik).loglik("The capital of France is", continuations))
    assert remote == pytest.approx(local)
    assert remote[0] > remote[1]


def test_loglik_without_echo_support_is_not_supported():
    with LoopbackServer(numbered_rule) as server:  # no loglik_rule: echo is refused with a 400
        llm = OpenAILLM("m", base_url=server.base_url, **FAST)
        with pytest.raises(NotSupported, match="echo"):
            asyncio.run(llm.loglik("The capital of France is", [" Paris"]))


# -- a real llama.cpp server (slow) ------------------------------------------------------------
@pytest.fixture(scope="module")
def llama_url():
    with running_llama_server() as url:
        yield url


def real(url: str, **kwargs) -> OpenAILLM:
    return OpenAILLM("smollm2", base_url=url, timeout=120.0, max_retries=2, **kwargs)


@pytest.mark.slow
def test_real_server_chat_n_samples_and_usage(llama_url):
    llm = real(llama_url)
    completions = asyncio.run(llm.generate("Name a colour.", n=3, max_tokens=6, temperature=0.9))
    assert len(completions) == 3
    assert any(c.text.strip() for c in completions)
    # llama.cpp answers one choice per request: the backend asked twice more.
    assert llm.stats.requests == 3
    assert llm.usage.calls == 3
    assert llm.usage.prompt_tokens > 0
    assert 0 < llm.usage.completion_tokens <= 3 * 6


@pytest.mark.slow
def test_real_server_respects_stop_strings(llama_url):
    llm = real(llama_url)
    prompt = "Count from 1 to 10, separated by commas."
    [free] = asyncio.run(llm.generate(prompt, max_tokens=20, temperature=0.0))
    [stopped] = asyncio.run(llm.generate(prompt, max_tokens=20, temperature=0.0, stop=["4"]))
    assert "4" in free.text  # so the stop below had something to stop
    assert "4" not in stopped.text
    assert free.text.startswith(stopped.text)


@pytest.mark.slow
@pytest.mark.parametrize("api", ["chat", "completions"])
def test_real_server_logprobs(llama_url, api):
    llm = real(llama_url, mode=api)
    [completion] = asyncio.run(llm.generate("The capital of France is", max_tokens=4, temperature=0.0, logprobs=True))
    assert completion.tokens and len(completion.tokens) == len(completion.token_logprobs)
    assert all(lp <= 0.0 for lp in completion.token_logprobs)
    assert "".join(completion.tokens).strip() == completion.text.strip()


@pytest.mark.slow
def test_real_server_loglik_is_refused_because_its_echo_is_shifted(llama_url):
    # llama-cpp-python's server reports each echoed prompt logprob one token late;
    # the backend notices and refuses instead of returning wrong scores.
    llm = real(llama_url)
    with pytest.raises(NotSupported, match="shifted by one"):
        asyncio.run(llm.loglik("The capital of France is", [" Paris", " banana"]))
