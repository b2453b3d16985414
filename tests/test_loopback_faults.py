"""Fault injection: the openai backend survives 429s, 500s, resets, hangs and truncated JSON
from the loopback server, within its retry bound, and gives up cleanly when faults persist."""

from __future__ import annotations

import asyncio
import time

import pytest

from rafa_core.llm.errors import BackendError
from rafa_testkit.loopback import FAULT_KINDS, FaultPlan, LoopbackServer
from rafa_core.llm.openai_backend import OpenAILLM
from rafa_core.llm.scripted import ScriptedLLM


def rule(text, request):
    return [f"{text[::-1]} #{i} {request.rng.randrange(100)}" for i in range(request.n)]


def backend(server: LoopbackServer, **kwargs) -> OpenAILLM:
    # Seeded as the server: it then answers as ScriptedLLM(rule, seed=server.seed) would.
    options = dict(timeout=0.5, max_retries=4, backoff_base_s=0.001, backoff_max_s=0.01, seed=server.seed)
    return OpenAILLM("loopback", base_url=server.base_url, **{**options, **kwargs})


def seed_failing_only_first(plan: FaultPlan) -> int:
    """A seed whose plan faults request 0 and spares request 1."""
    return next(s for s in range(10_000) if plan.fault_for(s, 0) and not plan.fault_for(s, 1))


def test_fault_plan_is_deterministic_and_near_its_rate():
    plan = FaultPlan(rate=0.2)
    draws = [plan.fault_for(3, n) for n in range(2000)]
    assert draws == [plan.fault_for(3, n) for n in range(2000)]
    share = sum(d is not None for d in draws) / len(draws)
    assert 0.17 < share < 0.23
    assert {d for d in draws if d} == set(FAULT_KINDS)


def test_fault_plan_rejects_unknown_kinds():
    with pytest.raises(ValueError):
        FaultPlan(kinds=("teapot",))


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_one_fault_is_retried_and_the_call_succeeds(kind):
    plan = FaultPlan(rate=0.5, kinds=(kind,), hang_s=3.0)
    seed = seed_failing_only_first(plan)
    with LoopbackServer(rule, faults=plan, seed=seed) as server:
        llm = backend(server)
        [completion] = asyncio.run(llm.generate("hello"))
        assert completion.text.startswith("olleh")
        assert server.stats.faults[kind] == 1
        assert server.stats.requests == 2
        assert server.stats.ok == 1
    assert llm.retries == 1


def test_retry_after_is_honoured():
    plan = FaultPlan(rate=0.5, kinds=("429",), retry_after_s=0.4)
    with LoopbackServer(rule, faults=plan, seed=seed_failing_only_first(plan)) as server:
        llm = backend(server)  # its own backoff would wait at most 0.01 s
        started = time.monotonic()
        asyncio.run(llm.generate("hello"))
        assert time.monotonic() - started >= 0.4
        assert server.stats.faults["429"] == 1


@pytest.mark.parametrize("kind", ["500", "429", "truncated", "reset"])
def test_persistent_failure_gives_up_after_max_retries_plus_one(kind):
    with LoopbackServer(rule, faults=FaultPlan(rate=1.0, kinds=(kind,), retry_after_s=0.001)) as server:
        llm = backend(server, max_retries=3)
        with pytest.raises(BackendError):
            asyncio.run(llm.generate("hello"))
        assert server.stats.requests == 4
        assert server.stats.faults[kind] == 4
    assert llm.retries == 3
    assert llm.stats.failures == 1


def test_hangs_past_the_timeout_are_bounded_too():
    with LoopbackServer(rule, faults=FaultPlan(rate=1.0, kinds=("hang",), hang_s=2.0)) as server:
        llm = backend(server, timeout=0.2, max_retries=2)
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out"):
            asyncio.run(llm.generate("hello"))
        assert time.monotonic() - started < 3.0  # three 0.2 s timeouts, not three 2 s hangs
        assert server.stats.requests == 3


def test_twenty_percent_faults_change_nothing_but_the_retry_count():
    """Many concurrent requests under 20% faults of every kind give exactly the fault-free answers."""
    prompts = [f"puzzle {i}" for i in range(40)]
    max_retries = 8

    async def answers(llm):
        results = await asyncio.gather(*(llm.generate(p, n=2, temperature=0.7) for p in prompts))
        scores = await asyncio.gather(*(llm.loglik(p, [" a", " bb"]) for p in prompts[:5]))
        return [[c.text for c in r] for r in results], scores

    loglik_rule = lambda prefix, continuation: -float(len(continuation))  # noqa: E731
    expected = asyncio.run(answers(ScriptedLLM(rule, seed=5, loglik_rule=loglik_rule)))
    plan = FaultPlan(rate=0.2, hang_s=2.0, retry_after_s=0.01)
    with LoopbackServer(rule, faults=plan, seed=5, loglik_rule=loglik_rule) as server:
        llm = backend(server, timeout=1.0, max_retries=max_retries, concurrency=16)
        got = asyncio.run(answers(llm))
        injected = server.stats.faults_total
    assert got == expected
    assert injected > 0
    assert llm.retries == injected  # every fault cost exactly one retry
    assert llm.stats.max_retries_one_request <= max_retries
    assert llm.stats.failures == 0


def test_latency_overlaps_across_concurrent_requests():
    with LoopbackServer(rule, latency_s=0.2) as server:
        llm = backend(server, concurrency=8)

        async def eight():
            return await asyncio.gather(*(llm.generate(f"q{i}") for i in range(8)))

        asyncio.run(eight())
        assert server.stats.requests == 8
        assert server.stats.max_in_flight > 1  # the latencies overlapped


def test_a_reasoning_model_refusing_parameters_is_adapted_to_once(capsys):
    seen = []

    def reasoning_rule(text, request):
        seen.append((request.max_tokens, request.temperature, request.stop, request.logprobs))
        return "the answer\nand more"

    refused = ("max_tokens", "temperature", "stop", "logprobs")
    with LoopbackServer(reasoning_rule, refuses=refused) as server:
        llm = backend(server)

        async def two_calls():
            first = await llm.generate("q1", n=1, temperature=0.0, max_tokens=7, stop=["\n"], logprobs=True)
            second = await llm.generate("q2", n=1, temperature=0.0, max_tokens=7, stop=["\n"], logprobs=True)
            return first, second

        first, second = asyncio.run(two_calls())
        stats = server.stats.snapshot()
    # Each refusal costs one 400, once; then requests go through as the model wants them.
    assert stats["errors"] == 4 and stats["ok"] == 2
    assert seen == [(7, 1.0, None, False)] * 2  # max_completion_tokens=7; the rest left out
    assert first[0].text == second[0].text == "the answer"  # still cut at the stop string here
    assert first[0].token_logprobs is None
    notes = capsys.readouterr().err
    assert all(notes.count(f"refuses {p!r}") == 1 for p in refused)
    assert "max_completion_tokens" in notes


def test_a_refusal_we_cannot_adapt_to_is_one_clear_error():
    with LoopbackServer(rule, refuses=("n",)) as server:
        with pytest.raises(BackendError, match="'n' is not supported"):
            asyncio.run(backend(server).generate("q", n=2))
        assert server.stats.snapshot()["errors"] == 1  # a 400 is not retried
