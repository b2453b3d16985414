"""Model-predictive search for a two-player, alternating-move game.

From a state where it is our turn: the model proposes our candidate moves; for each, the
model imagines the state after it, checks whether the game ended, imagines the opponent's
reply, checks again, and recurses.  Values are from our side: +1 win, -1 loss, 0 tie or
unknown (a model that gave no prediction, or the look-ahead horizon).  The first winning
candidate ends the search at its node; among equally valued candidates ``prefer`` decides
(the highest ``prefer(action)`` wins; None keeps the proposer's order).  Every model here
may be an LLM and may be wrong: the search only believes the model, and a ``None`` from it
is "no prediction".

A :class:`StateCache` keeps (value, best move) per searched state across searches; the
owner marks it stale whenever a model changes (new in-context examples, a new plan), so a
stale entry is searched again instead of trusted.  Its fresh entries can be saved and
restored (:meth:`StateCache.to_json`), so a resumed run trusts what it had searched.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Hashable, Protocol, Sequence, TypeVar

from .base import Plan

S = TypeVar("S", bound=Hashable)
A = TypeVar("A")

WIN, LOSS, DRAW = 1.0, -1.0, 0.0


class TwoPlayerModel(Protocol[S, A]):
    """What the search needs from a game model; any part may be LLM-backed."""

    async def propose(self, state: S) -> Sequence[A]:
        """Our candidate moves at ``state`` (our turn), best first; may be empty."""
        ...

    async def predict_own(self, state: S, action: A) -> S | None:
        """The imagined state after our ``action``, or None (no prediction)."""
        ...

    async def predict_reply(self, state: S) -> tuple[A, S] | None:
        """The opponent's imagined reply at ``state`` and the state after it, or None."""
        ...

    async def outcome(self, state: S) -> float | None:
        """+1 we have won, -1 we have lost, 0 tie; None while the game goes on (or unknown)."""
        ...


@dataclass
class CacheEntry(Generic[A]):
    value: float
    action: A | None
    # How many of our moves ahead this value looked (None: to the end of the game).
    horizon: int | None
    version: int


@dataclass
class StateCache(Generic[S, A]):
    """state -> (value, best move); entries from before the last :meth:`mark_stale` are ignored."""

    entries: dict[S, CacheEntry[A]] = field(default_factory=dict)
    version: int = 0
    hits: int = 0
    stale_skips: int = 0

    def get(self, state: S, horizon: int | None) -> CacheEntry[A] | None:
        entry = self.entries.get(state)
        if entry is None:
            return None
        if entry.version != self.version:
            self.stale_skips += 1
            return None
        deep_enough = entry.horizon is None or (horizon is not None and entry.horizon >= horizon)
        if not deep_enough:
            return None
        self.hits += 1
        return entry

    def put(self, state: S, value: float, action: A | None, horizon: int | None) -> None:
        self.entries[state] = CacheEntry(value, action, horizon, self.version)

    def mark_stale(self) -> None:
        """A model changed: every value computed so far may be wrong now."""
        self.version += 1

    def fresh_count(self) -> int:
        return sum(1 for e in self.entries.values() if e.version == self.version)

    def to_json(self, encode: Callable[[S], str]) -> list[dict[str, Any]]:
        """The fresh entries (stale ones are never trusted again, so they are not kept)."""
        return [
            {"state": encode(state), "value": e.value, "action": e.action, "horizon": e.horizon}
            for state, e in self.entries.items()
            if e.version == self.version
        ]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]], decode: Callable[[str], S]) -> "StateCache[S, A]":
        cache: StateCache[S, A] = cls()
        for item in data:
            cache.put(decode(item["state"]), float(item["value"]), item["action"], item.get("horizon"))
        return cache


@dataclass
class _Candidate(Generic[S, A]):
    action: A
    predicted: S | None = None
    outcome: float | None = None
    reply: A | None = None
    value: float = DRAW
    note: str = ""


@dataclass
class GameSearch(Generic[S, A]):
    """Alternating-move look-ahead over a :class:`TwoPlayerModel`.

    ``max_depth`` is how many of our own moves to look ahead (None: until the model says
    the game is over).  ``label`` turns a state into something short for the logged tree.
    """

    max_depth: int | None = None
    cache: StateCache[S, A] = field(default_factory=StateCache)
    label: Callable[[Any], Any] = repr
    # Among equally valued moves the one with the highest prefer(move); None: the first proposed.
    prefer: Callable[[A], Any] | None = None

    async def plan(self, model: TwoPlayerModel[S, A], state: S) -> Plan[A]:
        stats = {"nodes": 0, "cache_hits_before": self.cache.hits}
        value, action, candidates = await self._node(model, state, depth=1, stats=stats, root=True)
        tree = {
            "state": self.label(state),
            "candidates": [self._candidate_json(c) for c in candidates],
            "nodes_searched": stats["nodes"],
            "cache_hits": self.cache.hits - stats["cache_hits_before"],
        }
        return Plan(actions=[action] if action is not None else [], value=value, tree=tree)

    def _candidate_json(self, c: _Candidate[S, A]) -> dict[str, Any]:
        return {
            "action": c.action,
            "predicted": self.label(c.predicted) if c.predicted is not None else None,
            "outcome": c.outcome,
            "reply": c.reply,
            "value": c.value,
            "note": c.note,
        }

    def _remaining(self, depth: int) -> int | None:
        return None if self.max_depth is None else self.max_depth - depth + 1

    async def _node(
        self, model: TwoPlayerModel[S, A], state: S, depth: int, stats: dict[str, int], root: bool = False
    ) -> tuple[float, A | None, list[_Candidate[S, A]]]:
        cached = self.cache.get(state, self._remaining(depth))
        if cached is not None:
            note = _Candidate(action=cached.action, value=cached.value, note="cached")  # type: ignore[arg-type]
            return cached.value, cached.action, [note] if root else []
        stats["nodes"] += 1
        actions = list(await model.propose(state))
        # Our own moves' imagined results are independent: ask for them all at once, so a
        # winning move anywhere among them is found before any deeper search.
        candidates = await asyncio.gather(*(self._imagine(model, state, a) for a in actions))
        best: _Candidate[S, A] | None = next((c for c in candidates if c.outcome == WIN), None)
        if best is None:
            searched = []
            for c in candidates:
                if c.predicted is not None and c.outcome is None:
                    await self._look_ahead(model, c, depth, stats)
                searched.append(c)
                if c.value >= WIN:
                    break  # the first winning move is good enough
            best = self._best(searched)
        value = best.value if best is not None else DRAW
        action = best.action if best is not None else None
        if action is not None:
            self.cache.put(state, value, action, self._remaining(depth))
        return value, action, list(candidates)

    def _best(self, searched: list[_Candidate[S, A]]) -> _Candidate[S, A] | None:
        if not searched:
            return None
        top = max(c.value for c in searched)
        tied = [c for c in searched if c.value == top]
        if self.prefer is None:
            return tied[0]
        prefer = self.prefer
        return max(tied, key=lambda c: prefer(c.action))  # max keeps the first of equals

    async def _imagine(self, model: TwoPlayerModel[S, A], state: S, action: A) -> _Candidate[S, A]:
        candidate = _Candidate[S, A](action=action)
        candidate.predicted = await model.predict_own(state, action)
        if candidate.predicted is None:
            candidate.note = "no prediction of our move"
            return candidate
        candidate.outcome = await model.outcome(candidate.predicted)
        if candidate.outcome is not None:
            candidate.value = candidate.outcome
            candidate.note = "ends the game"
        return candidate

    async def _look_ahead(
        self, model: TwoPlayerModel[S, A], candidate: _Candidate[S, A], depth: int, stats: dict[str, int]
    ) -> None:
        assert candidate.predicted is not None
        reply = await model.predict_reply(candidate.predicted)
        if reply is None:
            candidate.note = "no prediction of the reply"
            return
        candidate.reply, after_reply = reply
        ended = await model.outcome(after_reply)
        if ended is not None:
            candidate.value = ended
            candidate.note = "the reply ends the game"
            return
        if self.max_depth is not None and depth >= self.max_depth:
            candidate.note = "horizon"
            return
        candidate.value, _, _ = await self._node(model, after_reply, depth + 1, stats)
        candidate.note = "searched"
