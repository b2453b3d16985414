"""The backend-independent LLM machinery: usage ledger, prices, cost cap, cache, views."""

import asyncio
import sqlite3

import pytest

from rafa_core.llm import (
    BudgetExceeded,
    NotSupported,
    ResponseCache,
    ScriptedLLM,
    Usage,
    price_of,
)
from rafa_core.llm.base import Completion, cut_at_stop, request_key


def counting_rule(counter):
    def rule(text, request):
        counter.append(request.n)
        return [f"{text} #{request.rng.randint(0, 10**6)}" for _ in range(request.n)]

    return rule


def test_price_table_covers_the_models_users_name():
    for model in ["gpt-4", "gpt-4-0613", "gpt-3.5-turbo", "gpt-3.5-turbo-16k", "gpt-3.5-turbo-instruct",
                  "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"]:
        assert price_of(model) is not None, model
    assert price_of("gpt-4o-mini-2024-07-18") == price_of("gpt-4o-mini")
    assert price_of("my-local-model") is None


def test_usage_cost_and_unpriced_models():
    usage = Usage()
    usage.record("gpt-4o-mini", 1_000_000, 1_000_000)
    usage.record("vicuna", 500, 20)
    assert usage.cost_usd == pytest.approx(0.15 + 0.6)
    assert usage.unpriced_models == ["vicuna"]
    assert usage.calls == 2
    assert usage.to_json()["per_model"]["vicuna"]["priced"] is False


def test_child_ledgers_roll_up_and_the_cap_sees_the_whole_run():
    run = Usage(max_cost=1.0)
    episode = run.child()
    episode.record("gpt-4", 20_000, 0)  # $0.60
    assert run.cost_usd == pytest.approx(0.6)
    episode.check_budget()
    run.child().record("gpt-4", 20_000, 0)  # run total $1.20
    with pytest.raises(BudgetExceeded):
        episode.check_budget()


def test_budget_stops_before_the_next_call():
    usage = Usage(max_cost=0.0)
    usage.record("gpt-4", 1, 0)
    llm = ScriptedLLM(lambda t, r: "x", usage=usage)
    with pytest.raises(BudgetExceeded):
        asyncio.run(llm.generate("p"))


def test_cache_serves_each_sample_index_and_tops_up_the_rest(tmp_path):
    calls = []
    cache = ResponseCache(tmp_path / "c.sqlite")
    llm = ScriptedLLM(counting_rule(calls), cache=cache)
    first = asyncio.run(llm.generate("p", n=2, temperature=0.7))
    again = asyncio.run(llm.generate("p", n=5, temperature=0.7))
    assert [c.text for c in again[:2]] == [c.text for c in first]
    assert [c.cached for c in again] == [True, True, False, False, False]
    assert calls == [2, 3]  # only the three missing samples were requested
    assert llm.usage.cache_hits == 2
    other = asyncio.run(llm.generate("p", n=1, temperature=0.3))  # other params: other key
    assert not other[0].cached


def test_cache_persists_across_processes_of_the_same_file(tmp_path):
    path = tmp_path / "c.sqlite"
    asyncio.run(ScriptedLLM(lambda t, r: "kept", cache=ResponseCache(path)).generate("p"))
    calls = []
    llm = ScriptedLLM(counting_rule(calls), cache=ResponseCache(path))
    assert asyncio.run(llm.generate("p"))[0].text == "kept"
    assert calls == [] and llm.usage.calls == 0


def test_corrupt_cache_is_reported_and_rebuilt(tmp_path, capsys):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = ResponseCache(path)
    cache.put("k", {"v": 1})
    assert cache.get("k") == {"v": 1}
    assert "corrupt" in capsys.readouterr().err
    assert (tmp_path / "c.sqlite.corrupt").exists()


def test_two_writers_share_one_cache(tmp_path):
    path = tmp_path / "c.sqlite"
    a, b = ResponseCache(path), ResponseCache(path)
    for i in range(50):
        a.put(f"a{i}", i)
        b.put(f"b{i}", i)
    assert len(ResponseCache(path)) == 100
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_request_key_covers_the_sample_index_and_every_parameter():
    base = {"messages": [{"role": "user", "content": "x"}], "temperature": 0.7}
    assert request_key(base, 0) != request_key(base, 1)
    assert request_key(base, 0) != request_key({**base, "temperature": 0.2}, 0)
    assert request_key(base, 0) == request_key(dict(reversed(list(base.items()))), 0)


def test_views_record_into_their_own_ledger_and_the_parent():
    run = Usage()
    llm = ScriptedLLM(lambda t, r: "a b c", usage=run)
    episode = run.child()
    asyncio.run(llm.with_usage(episode).generate("one two"))
    assert episode.calls == 1 and run.calls == 1
    # As the stand-in gpt-4o-mini counts: "a b c" is 3 tokens; "one two" is 2, plus 7 of chat formatting.
    assert episode.completion_tokens == 3 and run.prompt_tokens == 9


def test_concurrency_limit_is_shared_by_views():
    active, peak = [0], [0]

    class Slow(ScriptedLLM):
        async def _generate(self, prompt, **kw):
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            await asyncio.sleep(0.01)
            active[0] -= 1
            return await super()._generate(prompt, **kw)

    llm = Slow(lambda t, r: "x", concurrency=3)

    async def go():
        views = [llm.with_usage(Usage()) for _ in range(4)]
        await asyncio.gather(*(v.generate(f"p{i}") for i, v in enumerate(views * 3)))

    asyncio.run(go())
    assert peak[0] == 3


def test_loglik_is_cached_and_unsupported_backends_say_so(tmp_path):
    llm = ScriptedLLM(lambda t, r: "x", loglik_rule=lambda p, c: -float(len(c)), cache=ResponseCache(tmp_path / "c"))
    assert asyncio.run(llm.loglik("p", ["a", "abc"])) == [-1.0, -3.0]
    assert asyncio.run(llm.loglik("p", ["abc", "zz"])) == [-3.0, -2.0]
    assert llm.usage.cache_hits == 1
    with pytest.raises(NotSupported, match="loglik not supported"):
        asyncio.run(ScriptedLLM(lambda t, r: "x").loglik("p", ["a"]))


def test_scripted_answers_do_not_depend_on_call_order():
    def rule(t, r):
        return str(r.rng.random())

    a, b = ScriptedLLM(rule, seed=1), ScriptedLLM(rule, seed=1)
    first = asyncio.run(a.generate("x"))[0].text, asyncio.run(a.generate("y"))[0].text
    second = asyncio.run(b.generate("y"))[0].text, asyncio.run(b.generate("x"))[0].text
    assert first == second[::-1]
    assert asyncio.run(ScriptedLLM(rule, seed=2).generate("x"))[0].text != first[0]


def test_stop_strings_cut_scripted_answers():
    llm = ScriptedLLM(lambda t, r: "line one\nline two")
    assert asyncio.run(llm.generate("p", stop=["\n"]))[0].text == "line one"


def test_one_backend_serves_several_event_loops_under_contention():
    async def burst(llm):
        return await asyncio.gather(*(llm.generate(f"p{i}") for i in range(12)))

    class Slow(ScriptedLLM):
        async def _generate(self, prompt, **kw):
            await asyncio.sleep(0.001)
            return await super()._generate(prompt, **kw)

    llm = Slow(lambda t, r: "x", concurrency=2)
    assert len(asyncio.run(burst(llm))) == 12
    assert len(asyncio.run(burst(llm))) == 12  # a new loop: the old semaphore is not reused


def test_a_cache_locked_for_a_moment_is_waited_for_not_moved_aside(tmp_path, monkeypatch, capsys):
    path = tmp_path / "c.sqlite"
    ResponseCache(path).put("k", {"v": 1})
    real_connect, failures = ResponseCache._connect, [2]

    def busy_then_free(self):
        if failures[0]:
            failures[0] -= 1
            raise sqlite3.OperationalError("database is locked")
        return real_connect(self)

    monkeypatch.setattr(ResponseCache, "_connect", busy_then_free)
    assert ResponseCache(path).get("k") == {"v": 1}
    assert not (tmp_path / "c.sqlite.corrupt").exists()
    assert "warning" not in capsys.readouterr().err


def test_cut_at_stop_cuts_before_the_earliest_stop_string_with_the_tokens_in_step():
    c = Completion("ab|cd#ef", "length", token_logprobs=[-1.0, -2.0, -3.0, -4.0], tokens=["ab", "|c", "d#", "ef"])
    assert cut_at_stop(c, ["#", "|", ""]) is c
    assert (c.text, c.finish_reason, c.tokens, c.token_logprobs) == ("ab", "stop", ["ab"], [-1.0])
    untouched = Completion("no stop here", "length")
    assert cut_at_stop(untouched, ["#"]).text == "no stop here" and untouched.finish_reason == "length"
    assert cut_at_stop(Completion("x#", "length"), None).text == "x#"
