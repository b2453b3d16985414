"""One game between two players on the ground-truth board, with learning in training games."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

from ..llm.request_log import PROPOSER, REFLECTION, labels
from .game import Board, Role, TicTacToeEnv
from .players import Player

# O's score for a result, as the paper plots it.
O_SCORE = {"O": 1.0, "Tie": 0.0, "X": -1.0}


@dataclass
class GameRecord:
    moves: list[tuple[Role, int]]
    result: str  # "X", "O" or "Tie"
    transcript: list[dict[str, Any]] = field(default_factory=list)
    reflections: dict[str, Any] = field(default_factory=dict)
    final: Board | None = None  # the last board (what a player reflects on; not logged)

    @property
    def o_score(self) -> float:
        return O_SCORE[self.result]

    @property
    def fallbacks(self) -> int:
        return sum(1 for t in self.transcript if t.get("fallback"))

    def to_json(self) -> dict[str, Any]:
        return {
            "winner": self.result,
            "O_score": self.o_score,
            "moves": [list(m) for m in self.moves],
            "fallbacks": self.fallbacks,
            "transcript": self.transcript,
            "reflections": self.reflections,
        }


async def play_game(
    players: dict[Role, Player],
    *,
    session: str,
    learn: bool,
    on_move: Callable[[dict[str, Any]], None] | None = None,
    start: Board | None = None,
) -> GameRecord:
    """X and O alternate until the board is won or full (from ``start``, default empty).

    Each player is an agent (:class:`~rafa_core.tictactoe.players.Player`): it acts on its
    turn; with ``learn``, every player observes every real transition (to correct its
    models) and ends the episode with the game's record (it reflects).  ``moves`` lists
    only the moves played here.
    """
    with TicTacToeEnv() as env:
        board, info = env.reset(start=start)
        moves: list[tuple[Role, int]] = []
        transcript: list[dict[str, Any]] = []
        done = board.is_over()
        while not done:
            role = board.to_move()
            player = players[role]
            # The request log tells which move each call served; a base player's move is a proposal.
            with labels(step=len(moves) + 1, role=PROPOSER):
                position = await player.act(board, {**info, "session": session})
            decision = player.decision
            assert decision is not None and decision.position == position
            board, reward, done, info = env.step(position)
            moves.append((role, position))
            entry: dict[str, Any] = {
                "turn": len(moves),
                "role": role,
                "position": position,
                "board": board.render(),
                "fallback": decision.fallback,
                "decision": decision.log,
            }
            if learn:
                with labels(step=len(moves)):
                    learned = await asyncio.gather(
                        *(p.observe(position, board, reward, done, info) for p in players.values())
                    )
                entry["learning"] = {r: obs for r, obs in zip(players, learned) if obs is not None}
            transcript.append(entry)
            if on_move is not None:
                on_move(entry)
    record = GameRecord(moves=moves, result=board.result() or "Tie", transcript=transcript, final=board)
    if learn:
        for role, player in players.items():
            with labels(role=REFLECTION):
                reflection = await player.end_episode(record)
            if reflection is not None:
                record.reflections[role] = reflection
    return record
