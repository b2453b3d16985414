"""The adaptive limit on requests in flight: its rules on their own, the openai backend under
a loopback server's quota (429s with Retry-After) at a high in-flight setting, and the
defaults of --concurrency / --max-in-flight."""

from __future__ import annotations

import argparse
import asyncio
import time

import pytest

from rafa_core.cli import API_EPISODES, API_IN_FLIGHT, LOCAL_EPISODES, OTHER_OPEN_FILES, add_shared_flags, build_llm
from rafa_core.llm.limiter import AdaptiveLimiter
from rafa_testkit.loopback import Quota, LoopbackServer, _Bucket
from rafa_core.llm.openai_backend import OpenAILLM
from rafa_core.llm.scripted import ScriptedLLM
from rafa_core.llm.usage import Usage


def rule(text, request):
    return [f"{text[::-1]} #{i} {request.rng.randrange(1000)}" for i in range(request.n)]


# -- the limiter's rules -------------------------------------------------------------------------
def test_never_more_than_the_limit_in_flight_and_first_come_first_served():
    async def main():
        limiter = AdaptiveLimiter(3)
        order, running, most = [], 0, 0

        async def request(i):
            nonlocal running, most
            async with limiter:
                running += 1
                most = max(most, running)
                order.append(i)
                await asyncio.sleep(0.001)
                running -= 1

        await asyncio.gather(*(request(i) for i in range(20)))
        return order, most, limiter

    order, most, limiter = asyncio.run(main())
    assert most == 3 and limiter.stats.most_in_flight == 3
    assert order == list(range(20))
    assert limiter.in_flight == 0


async def hold(limiter, count):
    slots = [limiter.slot() for _ in range(count)]
    for slot in slots:
        await slot.__aenter__()
    return slots


async def leave(slots):
    for slot in slots:
        await slot.__aexit__(None, None, None)


def test_a_burst_of_429s_halves_the_flight_once_and_successes_raise_the_limit_back():
    async def main():
        limiter = AdaptiveLimiter(16)
        slots = await hold(limiter, 16)
        for slot in slots:  # all sent under the same limit: one congestion event
            slot.rate_limited(None)
        await leave(slots)
        after_burst = limiter.limit
        slots = await hold(limiter, 8)
        slots[0].rate_limited(None)  # sent under the lowered limit: lowers it again
        await leave(slots)
        after_second = limiter.limit
        successes = 0
        while limiter.limit < 16:
            async with limiter.slot() as slot:
                slot.succeeded()
            successes += 1
        return after_burst, after_second, successes, limiter

    after_burst, after_second, successes, limiter = asyncio.run(main())
    assert (after_burst, after_second) == (8, 4)
    assert limiter.stats.decreases == 2 and limiter.stats.lowest_limit == 4
    # additive increase: about one more request in flight per limit's worth of successes
    assert sum(range(4, 16)) - 12 <= successes <= sum(range(4, 16)) + 12


def test_a_429_halves_the_requests_in_flight_not_a_limit_never_reached():
    async def main():
        limiter = AdaptiveLimiter(256)
        slots = await hold(limiter, 10)
        slots[0].rate_limited(None)
        await leave(slots)
        return limiter.limit

    assert asyncio.run(main()) == 5


def test_a_retry_waits_at_the_head_of_the_queue():
    async def main():
        limiter = AdaptiveLimiter(1)
        order = []

        async def request(name, retry):
            async with limiter.slot(retry=retry):
                order.append(name)

        await limiter.__aenter__()
        tasks = [asyncio.ensure_future(request(n, r)) for n, r in (("a", False), ("b", False), ("retry", True))]
        await asyncio.sleep(0)
        await limiter.__aexit__(None, None, None)
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(main()) == ["retry", "a", "b"]


def test_the_limit_never_drops_below_its_floor():
    async def main():
        limiter = AdaptiveLimiter(4, floor=2)
        for _ in range(5):
            async with limiter.slot() as slot:
                slot.rate_limited(None)
        return limiter.limit

    assert asyncio.run(main()) == 2


def test_retry_after_holds_every_new_request_back():
    async def main():
        limiter = AdaptiveLimiter(8)
        slots = await hold(limiter, 8)
        slots[0].rate_limited(0.3)  # the limit goes down to 4
        await leave(slots)
        start = time.monotonic()
        await asyncio.gather(*(limiter.__aenter__() for _ in range(3)))
        return time.monotonic() - start, limiter

    waited, limiter = asyncio.run(main())
    assert waited >= 0.25
    assert limiter.in_flight == 3 and limiter.stats.pauses == 1


def test_a_cancelled_waiter_gives_its_place_to_the_next():
    async def main():
        limiter = AdaptiveLimiter(1)
        await limiter.__aenter__()
        first = asyncio.ensure_future(limiter.__aenter__())
        second = asyncio.ensure_future(limiter.__aenter__())
        await asyncio.sleep(0)
        first.cancel()
        await limiter.__aexit__(None, None, None)
        await asyncio.wait_for(second, 1.0)
        return limiter.in_flight

    assert asyncio.run(main()) == 1


def test_the_quota_bucket_lets_a_burst_through_then_says_when_to_come_back():
    bucket = _Bucket(Quota(per_s=10.0, burst=3))
    assert [bucket.take() for _ in range(3)] == [None, None, None]
    wait = bucket.take()
    assert wait is not None and 0.05 < wait <= 0.1
    with pytest.raises(ValueError):
        Quota(per_s=0)


# -- the openai backend under a quota ------------------------------------------------------------
def test_a_high_in_flight_setting_under_a_quota_backs_off_and_finishes_identically():
    prompts = [f"question {i}" for i in range(120)]

    async def ask(llm):
        return await asyncio.gather(*(llm.generate(p, n=2, temperature=0.7) for p in prompts))

    quota = Quota(per_s=400.0, burst=4)
    with LoopbackServer(rule, seed=5, latency_s=0.02, quota=quota) as server:
        llm = OpenAILLM("m", base_url=server.base_url, seed=5, timeout=5.0, max_retries=8, concurrency=128,
                        backoff_base_s=0.001, backoff_max_s=0.01)
        remote = asyncio.run(ask(llm))
        stats = server.stats.snapshot()
    local = asyncio.run(ask(ScriptedLLM(rule, seed=5)))
    assert [[c.text for c in r] for r in remote] == [[c.text for c in r] for r in local]
    assert stats["rejected"] > 0  # the quota did bite
    assert stats["ok"] == len(prompts)
    assert llm.stats.retries == stats["rejected"]
    assert llm.stats.max_retries_one_request <= 8  # bounded: no request ran out of retries
    limiter = llm._shared.limiter
    assert limiter is not None and limiter.stats.decreases >= 1 and limiter.stats.lowest_limit < 128


# -- the shared flags' defaults ------------------------------------------------------------------
def parse(argv):
    parser = argparse.ArgumentParser()
    add_shared_flags(parser)
    return parser.parse_args(argv)


def oracle(rate, options):
    return ScriptedLLM(rule, usage=options.usage, concurrency=options.concurrency)


def test_api_backends_run_many_episodes_and_keep_many_requests_in_flight():
    args = parse(["--base-url", "http://127.0.0.1:9/v1", "--no-cache"])
    llm = build_llm("gpt-4o-mini", args, Usage())
    assert (args.concurrency, llm.concurrency) == (API_EPISODES, API_IN_FLIGHT)


def fake_open_files_limit(monkeypatch, soft: int, hard: int) -> list:
    """This process's open-files limit as ``(soft, hard)``; the soft limits set are recorded."""
    import resource

    limits = [soft, hard]
    raised: list[int] = []

    def setrlimit(kind, value):
        if value[0] > limits[1]:
            raise ValueError("not allowed to raise the soft limit above the hard one")
        limits[0] = value[0]
        raised.append(value[0])

    monkeypatch.setattr(resource, "getrlimit", lambda kind: tuple(limits))
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    return raised


def test_the_open_files_limit_is_raised_for_the_requests_connections(monkeypatch):
    raised = fake_open_files_limit(monkeypatch, soft=1024, hard=4096)
    args = parse(["--base-url", "http://127.0.0.1:9/v1", "--no-cache"])
    assert build_llm("gpt-4o-mini", args, Usage()).concurrency == API_IN_FLIGHT
    assert raised == [API_IN_FLIGHT + OTHER_OPEN_FILES]


def test_a_hard_open_files_limit_lowers_the_requests_in_flight(monkeypatch, capsys):
    fake_open_files_limit(monkeypatch, soft=600, hard=600)
    args = parse(["--base-url", "http://127.0.0.1:9/v1", "--no-cache"])
    assert build_llm("gpt-4o-mini", args, Usage()).concurrency == 600 - OTHER_OPEN_FILES
    assert capsys.readouterr().err == ""  # the default adapts silently
    args = parse(["--base-url", "http://127.0.0.1:9/v1", "--no-cache", "--max-in-flight", "500"])
    assert build_llm("gpt-4o-mini", args, Usage()).concurrency == 600 - OTHER_OPEN_FILES
    assert "--max-in-flight 500 needs more open files" in capsys.readouterr().err
    fake_open_files_limit(monkeypatch, soft=256, hard=256)  # half is kept for the rest
    assert build_llm("gpt-4o-mini", parse(["--base-url", "http://127.0.0.1:9/v1", "--no-cache"]), Usage()).concurrency == 128


def test_models_on_this_machine_keep_the_small_defaults():
    args = parse(["--no-cache"])
    llm = build_llm("oracle", args, Usage(), oracle=oracle)
    assert (args.concurrency, llm.concurrency) == (LOCAL_EPISODES, 4 * LOCAL_EPISODES)


def test_explicit_settings_win_over_the_defaults():
    args = parse(["--base-url", "http://127.0.0.1:9/v1", "--concurrency", "3", "--max-in-flight", "7"])
    llm = build_llm("gpt-4o-mini", args, Usage())
    assert (args.concurrency, llm.concurrency) == (3, 7)
    args = parse(["--concurrency", "2"])
    assert build_llm("oracle", args, Usage(), oracle=oracle).concurrency == 8
