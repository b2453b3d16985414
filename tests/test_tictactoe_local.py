"""The RAFA player on the embedded model (slow): a short training game from a late position."""

from __future__ import annotations

import asyncio

import pytest

from rafa_core.llm.registry import BackendOptions, make_llm
from rafa_core.tictactoe.game import Board, replay
from rafa_core.tictactoe.match import play_game
from rafa_core.tictactoe.players import BasePlayer, RAFAPlayer

# X O X / O O X / 7 X 9: O to move, two empty cells, X threatens 9.
START = [("X", 1), ("O", 2), ("X", 3), ("O", 5), ("X", 8), ("O", 4), ("X", 6)]


@pytest.mark.slow
def test_embedded_model_plays_and_learns_without_breaking():
    llm = make_llm("local", BackendOptions(concurrency=8))
    x = BasePlayer(llm, "X", max_retries=1)
    o = RAFAPlayer(llm, "O", breadth=2, max_depth=1, max_retries=1)

    async def game():
        try:
            return await play_game({"X": x, "O": o}, session="slow", learn=True, start=Board.from_moves(START))
        finally:
            await llm.aclose()

    record = asyncio.run(game())
    assert replay(START + record.moves) == record.result
    assert record.moves[0][0] == "O" and record.transcript[0]["decision"]["search"]["candidates"] is not None
    assert all("O" in t["learning"] for t in record.transcript)
    # A 135M model mispredicts: the real transitions must have become examples.
    assert sum(len(v) for v in o.learned.memory.examples.values()) >= 1
    assert len(o.learned.memory.trials) == 1
    assert llm.usage.calls > 0
