"""Draws: a repeated request can ask for a fresh sample, and a rerun still replays from the cache."""

from __future__ import annotations

import asyncio

from rafa_core.llm.cache import ResponseCache
from rafa_core.llm.draws import STREAM_SPAN, Draws, draw_of, sampler_seed
from rafa_core.llm.scripted import ScriptedLLM
from rafa_core.llm.usage import Usage

PARAMS = dict(temperature=0.3, max_tokens=50, stop=None)


def coin(text, request):
    return [f"draw {request.rng.randrange(10**9)}" for _ in range(request.n)]


async def ask_three_times(llm, draws: Draws) -> list[list[str]]:
    answers = []
    for _ in range(3):
        first = draws.first_sample("same question", 2, **PARAMS)
        completions = await llm.generate("same question", n=2, first_sample=first, **PARAMS)
        answers.append([c.text for c in completions])
    return answers


def test_repeats_are_fresh_draws_and_a_rerun_replays_them_from_the_cache(tmp_path):
    cache = ResponseCache(tmp_path / "responses.sqlite")
    first_usage = Usage()
    run1 = asyncio.run(ask_three_times(ScriptedLLM(coin, usage=first_usage, cache=cache), Draws("seed=0|ep=1")))
    assert len({tuple(a) for a in run1}) == 3  # each asking drew anew
    assert first_usage.calls == 3
    replay_usage = Usage()
    run2 = asyncio.run(ask_three_times(ScriptedLLM(coin, usage=replay_usage, cache=cache), Draws("seed=0|ep=1")))
    assert run2 == run1 and replay_usage.calls == 0  # same stream: all from the cache
    other = asyncio.run(ask_three_times(ScriptedLLM(coin, cache=cache), Draws("seed=0|ep=2")))
    assert not {t for a in other for t in a} & {t for a in run1 for t in a}  # another episode: other samples


def test_samples_are_counted_per_request_and_settings():
    draws = Draws("s")
    assert draws.first_sample("a", 3, **PARAMS) == draws.base
    assert draws.first_sample("a", 1, **PARAMS) == draws.base + 3  # no sample is used twice
    assert draws.first_sample("b", 1, **PARAMS) == draws.base
    assert draws.first_sample("a", 1, **{**PARAMS, "temperature": 0.7}) == draws.base
    assert Draws("t").base != draws.base and draws.base % STREAM_SPAN == 0


def test_the_run_seed_keys_the_cache_and_fresh_draws_replay_under_it(tmp_path):
    """Same stream, another --seed: other samples (not the other seed's cache entries);
    the same seed again: every draw, fresh ones included, from the cache."""
    cache = ResponseCache(tmp_path / "responses.sqlite")
    seed0 = asyncio.run(ask_three_times(ScriptedLLM(coin, seed=0, cache=cache), Draws("ep=1")))
    seed1_usage = Usage()
    seed1 = asyncio.run(ask_three_times(ScriptedLLM(coin, seed=1, usage=seed1_usage, cache=cache), Draws("ep=1")))
    assert seed1_usage.calls == 3 and seed1_usage.cache_hits == 0
    assert not {t for a in seed1 for t in a} & {t for a in seed0 for t in a}
    replay_usage = Usage()
    again = asyncio.run(ask_three_times(ScriptedLLM(coin, seed=1, usage=replay_usage, cache=cache), Draws("ep=1")))
    assert again == seed1 and replay_usage.calls == 0 and replay_usage.cache_hits == 6


def test_sampler_seeds_are_one_to_one_per_run_seed_and_draw_zero_is_the_seed_itself():
    for seed in (0, 1, 7, 2**40):
        assert sampler_seed(seed, 0) == seed
        draws = [0, 1, 2, 3, STREAM_SPAN, Draws("x").base + 5]
        seeds = [sampler_seed(seed, k) for k in draws]
        assert len(set(seeds)) == len(draws) and all(0 <= s < 2**63 for s in seeds)
        assert [draw_of(seed, s) for s in seeds] == draws
    assert sampler_seed(0, 1) != sampler_seed(1, 0)
