"""The generic alternating-move search, on a tiny exact game (take 1 or 2; last stone wins)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from rafa_core.search.game import LOSS, WIN, GameSearch, StateCache

# A state is (stones left, whose turn: "us" / "them"); the searcher always moves at "us".
State = tuple[int, str]


@dataclass
class Nim:
    """An exact model whose opponent plays perfectly; it counts every call."""

    proposals: tuple[int, ...] = (1, 2)
    broken_dynamics: bool = False
    calls: list[tuple[str, State]] = field(default_factory=list)

    async def propose(self, state: State) -> list[int]:
        self.calls.append(("propose", state))
        return [a for a in self.proposals if a <= state[0]]

    async def predict_own(self, state: State, action: int) -> State | None:
        self.calls.append(("own", state))
        return None if self.broken_dynamics else (state[0] - action, "them")

    async def predict_reply(self, state: State) -> tuple[int, State] | None:
        self.calls.append(("reply", state))
        take = state[0] % 3 or 1
        return take, (state[0] - take, "us")

    async def outcome(self, state: State) -> float | None:
        if state[0] > 0:
            return None
        return WIN if state[1] == "them" else LOSS  # whoever took the last stone won


def plan(search: GameSearch, model: Nim, stones: int):
    return asyncio.run(search.plan(model, (stones, "us")))


def test_finds_the_winning_move_and_its_value():
    for stones, winning_take in ((4, 1), (5, 2), (7, 1), (8, 2)):
        result = plan(GameSearch(), Nim(), stones)
        assert result.actions == [winning_take] and result.value == WIN, stones


def test_a_lost_position_is_valued_minus_one():
    result = plan(GameSearch(), Nim(), 6)
    assert result.value == LOSS and result.actions == [1]  # ties keep the proposer's order


def test_an_immediate_win_needs_no_look_ahead():
    model = Nim(proposals=(1, 2))
    result = plan(GameSearch(), model, 2)
    assert result.actions == [2] and result.value == WIN
    assert not [c for c in model.calls if c[0] == "reply"]


def test_stops_at_the_first_winning_move():
    model = Nim(proposals=(1, 2))
    result = plan(GameSearch(), model, 7)  # take 1 wins; take 2 is never searched deeper
    assert result.actions == [1] and result.value == WIN
    assert ("reply", (5, "them")) not in model.calls
    assert result.tree["candidates"][1]["note"] == ""


def test_cache_answers_a_searched_state_until_marked_stale():
    cache: StateCache = StateCache()
    search = GameSearch(cache=cache)
    first = plan(search, Nim(), 8)
    again = Nim()
    second = plan(search, again, 8)
    assert second.actions == first.actions and second.value == first.value
    assert again.calls == [] and cache.hits >= 1
    cache.mark_stale()  # a model changed: the old values are not trusted any more
    after = Nim()
    third = plan(search, after, 8)
    assert after.calls and third.actions == first.actions
    assert cache.stale_skips >= 1


def test_cached_deeper_states_are_reused_inside_a_search():
    search = GameSearch()
    plan(search, Nim(), 8)
    assert search.cache.fresh_count() >= 2  # the root and the states searched under it


def test_no_prediction_is_an_unknown_value_not_an_error():
    result = plan(GameSearch(), Nim(broken_dynamics=True), 5)
    assert result.value == 0.0 and result.actions == [1]
    assert all(c["note"] == "no prediction of our move" for c in result.tree["candidates"])


def test_horizon_limits_the_look_ahead():
    result = plan(GameSearch(max_depth=1), Nim(), 7)
    assert result.value == 0.0
    assert {c["note"] for c in result.tree["candidates"]} == {"horizon"}


def test_a_shallow_cached_value_is_not_used_for_a_deeper_search():
    cache: StateCache = StateCache()
    plan(GameSearch(max_depth=1, cache=cache), Nim(), 7)
    deeper = plan(GameSearch(cache=cache), Nim(), 7)
    assert deeper.value == WIN


def test_no_proposals_give_an_empty_plan():
    result = plan(GameSearch(), Nim(proposals=()), 5)
    assert not result and result.value == 0.0


def test_prefer_breaks_ties_between_equal_values():
    result = plan(GameSearch(prefer=lambda take: take), Nim(), 6)  # both takes lose
    assert result.value == LOSS and result.actions == [2]
    winning = plan(GameSearch(prefer=lambda take: -take), Nim(), 7)  # a win is not a tie
    assert winning.actions == [1] and winning.value == WIN


def test_the_fresh_cache_entries_are_saved_and_restored():
    cache: StateCache = StateCache()
    plan(GameSearch(cache=cache), Nim(), 8)
    saved = cache.to_json(lambda s: f"{s[0]}/{s[1]}")
    cache.mark_stale()
    assert cache.to_json(str) == []  # stale entries are not worth keeping
    restored = StateCache.from_json(saved, lambda text: (int(text.split("/")[0]), text.split("/")[1]))
    assert restored.fresh_count() == len(saved) > 0
    model = Nim()
    again = plan(GameSearch(cache=restored), model, 8)
    assert model.calls == [] and again.actions == [2] and again.value == WIN
