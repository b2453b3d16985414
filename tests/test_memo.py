"""The request memo: shared in-flight requests, prefetch, invalidation, waste, failures,
cancellation and saving (rafa_core/llm/memo.py)."""

import asyncio
import json

import pytest

from rafa_core.llm.memo import Memo


class Backend:
    """Counts requests; each one waits until the test releases it (or answers at once)."""

    def __init__(self, *, gated: bool = False) -> None:
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()
        self.fail: set[str] = set()

    def request(self, key: str):
        async def run() -> str:
            self.calls.append(key)
            await self.gate.wait()
            if key in self.fail:
                raise RuntimeError(f"backend down for {key}")
            return f"answer to {key}#{self.calls.count(key)}"

        return run


def test_concurrent_askers_share_one_request_and_later_ones_hit_memory():
    async def run():
        memo, backend = Memo(), Backend(gated=True)
        askers = [asyncio.create_task(memo.get("q", backend.request("q"))) for _ in range(3)]
        await asyncio.sleep(0)
        assert "q" in memo and memo.snapshot() == {}  # running, not answered yet
        backend.gate.set()
        answers = await asyncio.gather(*askers)
        again = await memo.get("q", backend.request("q"))
        return memo, backend, answers, again

    memo, backend, answers, again = asyncio.run(run())
    assert backend.calls == ["q"]
    assert answers == ["answer to q#1"] * 3 and again == "answer to q#1"
    assert memo.hits == 3 and memo.started == 1
    assert memo.snapshot() == {"q": "answer to q#1"}


def test_different_keys_are_different_requests():
    async def run():
        memo, backend = Memo(), Backend()
        return await asyncio.gather(memo.get("a", backend.request("a")), memo.get("b", backend.request("b"))), backend

    answers, backend = asyncio.run(run())
    assert answers == ["answer to a#1", "answer to b#1"] and sorted(backend.calls) == ["a", "b"]


def test_a_prefetched_request_answers_the_later_ask_and_is_not_wasted():
    async def run():
        memo, backend = Memo(), Backend(gated=True)
        assert memo.prefetch("q", backend.request("q")) is True
        assert memo.prefetch("q", backend.request("q")) is False  # started once
        await asyncio.sleep(0)
        assert memo.unclaimed == {"q"}
        backend.gate.set()
        answer = await memo.get("q", backend.request("q"))
        await memo.settle()
        return memo, backend, answer

    memo, backend, answer = asyncio.run(run())
    assert backend.calls == ["q"] and answer == "answer to q#1"
    assert memo.prefetched == 1 and memo.wasted == 0 and memo.hits == 1 and not memo.unclaimed


def test_a_prefetch_of_an_answered_key_starts_nothing():
    async def run():
        memo, backend = Memo(), Backend()
        await memo.get("q", backend.request("q"))
        started = memo.prefetch("q", backend.request("q"))
        await memo.settle()
        return memo, backend, started

    memo, backend, started = asyncio.run(run())
    assert started is False and backend.calls == ["q"] and memo.prefetched == 0 and memo.wasted == 0


def test_settle_waits_for_unasked_prefetches_and_counts_them_wasted():
    async def run():
        memo, backend = Memo(), Backend(gated=True)
        memo.prefetch("used", backend.request("used"))
        memo.prefetch("unused", backend.request("unused"))
        asker = asyncio.create_task(memo.get("used", backend.request("used")))
        await asyncio.sleep(0)
        asyncio.get_running_loop().call_later(0.01, backend.gate.set)
        await memo.settle()
        leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        return memo, backend, await asker, leftovers

    memo, backend, answer, leftovers = asyncio.run(run())
    assert answer == "answer to used#1" and sorted(backend.calls) == ["unused", "used"]
    assert memo.prefetched == 2 and memo.wasted == 1 and not memo.unclaimed
    assert leftovers == []  # settle waited for the unused request to finish
    assert memo.snapshot() == {"used": "answer to used#1", "unused": "answer to unused#1"}


def test_invalidate_all_forgets_answers_and_running_requests():
    async def run():
        memo, backend = Memo(), Backend()
        await memo.get("done", backend.request("done"))
        backend.gate.clear()
        running = asyncio.create_task(memo.get("running", backend.request("running")))
        await asyncio.sleep(0)
        assert memo.invalidate() == 2
        backend.gate.set()
        first = await running  # its waiter still gets the answer ...
        remembered = memo.snapshot()  # ... but it is not remembered
        again = await memo.get("done", backend.request("done"))
        return memo, backend, first, remembered, again

    memo, backend, first, remembered, again = asyncio.run(run())
    assert first == "answer to running#1" and remembered == {}
    assert again == "answer to done#2" and backend.calls == ["done", "running", "done"]
    assert memo.hits == 0


def test_invalidate_where_forgets_only_the_matching_keys():
    async def run():
        memo, backend = Memo(), Backend()
        for key in ("critic:a", "critic:b", "proposer:a"):
            await memo.get(key, backend.request(key))
        dropped = memo.invalidate(lambda k: k.startswith("critic:"))
        return memo, dropped

    memo, dropped = asyncio.run(run())
    assert dropped == 2 and list(memo.snapshot()) == ["proposer:a"]


def test_an_invalidated_unclaimed_prefetch_is_wasted_and_its_answer_dropped():
    async def run():
        memo, backend = Memo(), Backend(gated=True)
        memo.prefetch("q", backend.request("q"))
        await asyncio.sleep(0)
        memo.invalidate()
        wasted = memo.wasted  # counted when forgotten, not only at settle
        backend.gate.set()
        await memo.settle()
        return memo, backend, wasted

    memo, backend, wasted = asyncio.run(run())
    assert wasted == memo.wasted == 1 and memo.snapshot() == {} and "q" not in memo and backend.calls == ["q"]


def test_a_failed_request_is_not_remembered_and_the_next_ask_retries():
    async def run():
        memo, backend = Memo(), Backend(gated=True)
        backend.fail.add("q")
        askers = [asyncio.create_task(memo.get("q", backend.request("q"))) for _ in range(2)]
        await asyncio.sleep(0)
        backend.gate.set()
        errors = await asyncio.gather(*askers, return_exceptions=True)
        forgotten = "q" not in memo
        backend.fail.clear()
        retried = await memo.get("q", backend.request("q"))
        return memo, backend, errors, forgotten, retried

    memo, backend, errors, forgotten, retried = asyncio.run(run())
    assert all(isinstance(e, RuntimeError) for e in errors) and len(errors) == 2  # both waiters see it
    assert forgotten and retried == "answer to q#2" and backend.calls == ["q", "q"]
    assert memo.snapshot() == {"q": "answer to q#2"}


def test_a_failed_prefetch_is_wasted_silently_and_asked_again(recwarn):
    async def run():
        memo, backend = Memo(), Backend()
        backend.fail.add("q")
        memo.prefetch("q", backend.request("q"))
        for _ in range(3):
            await asyncio.sleep(0)
        wasted = memo.wasted  # counted when it failed, before any settle
        await memo.settle()
        assert memo.wasted == wasted and not memo.unclaimed
        backend.fail.clear()
        return wasted, await memo.get("q", backend.request("q")), backend

    wasted, answer, backend = asyncio.run(run())
    assert wasted == 1 and answer == "answer to q#2" and backend.calls == ["q", "q"]
    assert not [w for w in recwarn if "never retrieved" in str(w.message)]


def test_cancelling_one_waiter_does_not_cancel_the_request_for_the_others():
    async def run():
        memo, backend = Memo(), Backend(gated=True)
        first = asyncio.create_task(memo.get("q", backend.request("q")))
        second = asyncio.create_task(memo.get("q", backend.request("q")))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        backend.gate.set()
        answer = await second
        with pytest.raises(asyncio.CancelledError):
            await first
        return memo, backend, answer

    memo, backend, answer = asyncio.run(run())
    assert answer == "answer to q#1" and backend.calls == ["q"]
    assert memo.snapshot() == {"q": "answer to q#1"}  # remembered despite the cancelled asker


def test_a_lone_cancelled_waiter_leaves_the_request_running_and_remembered():
    async def run():
        memo, backend = Memo(), Backend(gated=True)
        asker = asyncio.create_task(memo.get("q", backend.request("q")))
        await asyncio.sleep(0)
        asker.cancel()
        await asyncio.sleep(0)
        backend.gate.set()
        await memo.settle()
        return memo, backend, await memo.get("q", backend.request("q"))

    memo, backend, answer = asyncio.run(run())
    assert answer == "answer to q#1" and backend.calls == ["q"] and memo.hits == 1


def test_cancelling_settle_cancels_no_request():
    async def run():
        memo, backend = Memo(), Backend(gated=True)
        memo.prefetch("q", backend.request("q"))
        settling = asyncio.create_task(memo.settle())
        await asyncio.sleep(0)
        settling.cancel()
        await asyncio.sleep(0)
        backend.gate.set()
        return await memo.get("q", backend.request("q")), backend

    answer, backend = asyncio.run(run())
    assert answer == "answer to q#1" and backend.calls == ["q"]


def test_saved_answers_restore_through_json_and_answer_without_requests():
    async def fill():
        memo, backend = Memo(), Backend()
        for key in ("b", "a", "c"):
            await memo.get(key, backend.request(key))
        return memo

    memo = asyncio.run(fill())
    restored = Memo(json.loads(json.dumps(memo.snapshot())))
    assert restored.snapshot() == memo.snapshot() and list(restored.snapshot()) == ["b", "a", "c"]

    async def refuse():
        raise AssertionError("asked again")

    assert asyncio.run(restored.get("a", refuse)) == "answer to a#1"
    assert restored.hits == 1 and restored.started == 0
    # The snapshot is a copy: changing it changes nothing in the memo.
    snap = restored.snapshot()
    snap["a"] = "edited"
    assert restored.snapshot()["a"] == "answer to a#1"
