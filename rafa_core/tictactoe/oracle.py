"""Simulated Tic-Tac-Toe models for tests and offline runs (labelled simulated everywhere).

``oracle`` answers every prompt of :mod:`.prompts` from the rules: exact dynamics, winner
and availability, and minimax for moves, proposals and the opponent model.
``oracle:<rate>`` is the noisy variant: each answer is wrong with that probability (a
random empty cell, a board with the mark in the wrong place, the wrong verdict, a cell
missing from the list).  Like a real in-context learner, it answers a query that exactly
matches one of the prompt's examples with that example's answer, so corrected examples
fix its mistakes.  Noise is drawn from the request's generator, which is seeded from the
prompt: the same question gets the same (right or wrong) answer until its prompt changes.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from ..llm.registry import BackendOptions
from ..llm.scripted import ScriptedLLM, ScriptedRequest, oracle_backend
from . import prompts as P
from .game import Board, Role, other, parse_board

REFLECTION = "I should take the centre or a corner early and always block a line where the opponent has two marks."
PLAN = (
    "1. Win at once when a move completes a line.\n"
    "2. Otherwise block the opponent's line of two.\n"
    "3. Prefer the centre, then corners.\n"
    "4. Create two threats at once when possible."
)


@dataclass
class Minimax:
    """Perfect play, memoised per instance. Values are from X's side; faster wins score more."""

    memo: dict[Board, int] = field(default_factory=dict)

    def value(self, board: Board) -> int:
        if board in self.memo:
            return self.memo[board]
        win = board.winner()
        if win:
            marks = 9 - len(board.empty_positions())
            result = (10 - marks) * (1 if win == "X" else -1)
        elif board.is_full():
            result = 0
        else:
            mover = board.to_move()
            values = [self.value(board.play(p, mover)) for p in board.empty_positions()]
            result = max(values) if mover == "X" else min(values)
        self.memo[board] = result
        return result

    def ranked_moves(self, board: Board, role: Role | None = None) -> list[int]:
        """Empty cells, best first for ``role`` (default: whoever is to move); ties by number."""
        role = role or board.to_move()
        sign = 1 if role == "X" else -1
        moves = board.empty_positions()
        return sorted(moves, key=lambda p: -sign * self.value(board.play(p, role)))


@dataclass
class OracleErrors:
    """Probability of a wrong answer, per kind of request."""

    move: float = 0.0
    dynamics: float = 0.0
    opponent: float = 0.0
    winner: float = 0.0
    availability: float = 0.0

    @classmethod
    def uniform(cls, rate: float) -> "OracleErrors":
        return cls(rate, rate, rate, rate, rate)


_ROLE = re.compile(r"\bas ([XO])\b")
_COUNT = re.compile(r"Give your (\d+) most promising")
_DYN_MOVE = re.compile(r"Move: ([XO]) marks position ([1-9])")
_OPP_ROLE = re.compile(r"([XO]) to move\.")


@dataclass
class TicTacToeRules:
    """The answering rule: ``rule(prompt_text, request) -> answer``."""

    errors: OracleErrors = field(default_factory=OracleErrors)
    minimax: Minimax = field(default_factory=Minimax)

    def __call__(self, text: str, request: ScriptedRequest) -> str:
        rng = request.rng
        if P.MOVE_TASK in text:
            return self._move(text, rng)
        if P.PROPOSE_TASK in text:
            return self._propose(text, rng)
        if P.DYNAMICS_TASK in text:
            return self._dynamics(text, rng)
        if P.OPPONENT_TASK in text:
            return self._opponent(text, rng)
        if P.WINNER_TASK in text:
            return self._winner(text, rng)
        if P.AVAILABILITY_TASK in text:
            return self._availability(text, rng)
        if P.REFLECT_TASK in text:
            return REFLECTION
        if P.PLAN_TASK in text:
            return PLAN
        return "I cannot tell."

    # -- decisions ---------------------------------------------------------------------------
    def _decision_board(self, text: str) -> tuple[Board | None, Role | None]:
        role = _ROLE.search(text)
        board = parse_board(text.split("The board:", 1)[-1])
        return board, (role.group(1) if role else None)  # type: ignore[return-value]

    def _move(self, text: str, rng: random.Random) -> str:
        board, role = self._decision_board(text)
        if board is None or role is None or board.is_over():
            return "I cannot tell."
        if rng.random() < self.errors.move:
            return str(rng.choice(board.empty_positions()))
        return str(self.minimax.ranked_moves(board, role)[0])

    def _propose(self, text: str, rng: random.Random) -> str:
        board, role = self._decision_board(text)
        count = _COUNT.search(text)
        if board is None or role is None or board.is_over() or count is None:
            return "I cannot tell."
        ranked = self.minimax.ranked_moves(board, role)[: int(count.group(1))]
        picked = [str(rng.choice(board.empty_positions())) if rng.random() < self.errors.move else str(p) for p in ranked]
        return ", ".join(dict.fromkeys(picked))

    # -- learned models ------------------------------------------------------------------------
    @staticmethod
    def _split(text: str) -> tuple[list[str], str]:
        """(example blocks, query) of a model prompt."""
        head, _, query = text.rpartition(P.QUERY)
        examples = head.split(P.EXAMPLES, 1)[1] if P.EXAMPLES in head else ""
        return [b for b in examples.split("\n\n") if b.strip()], query

    @staticmethod
    def _dynamics_parts(block: str) -> tuple[Board | None, str | None, int | None, Board | None]:
        before_text, _, after_text = block.partition("Board after:")
        move = _DYN_MOVE.search(before_text)
        before = parse_board(before_text.split("Board before:", 1)[-1])
        after = parse_board(after_text) if after_text.strip() else None
        if move is None:
            return before, None, None, after
        return before, move.group(1), int(move.group(2)), after

    def _dynamics(self, text: str, rng: random.Random) -> str:
        blocks, query = self._split(text)
        before, role, move, _ = self._dynamics_parts(query)
        if before is None or role is None or move is None or not before.is_legal(move):
            return "I cannot tell."
        for block in blocks:
            ex_before, ex_role, ex_move, ex_after = self._dynamics_parts(block)
            if (ex_before, ex_role, ex_move) == (before, role, move) and ex_after is not None:
                return ex_after.render()
        if rng.random() < self.errors.dynamics:
            return self._wrong_board(before, role, move, rng).render()  # type: ignore[arg-type]
        return before.play(move, role).render()  # type: ignore[arg-type]

    @staticmethod
    def _wrong_board(before: Board, role: Role, move: int, rng: random.Random) -> Board:
        elsewhere = [p for p in before.empty_positions() if p != move]
        if elsewhere:
            return before.play(rng.choice(elsewhere), role)
        return before.play(move, other(role))

    def _opponent(self, text: str, rng: random.Random) -> str:
        blocks, query = self._split(text)
        board = parse_board(query)
        role = _OPP_ROLE.search(query)
        if board is None or role is None or board.is_over():
            return "I cannot tell."
        copied = _copied_answer(blocks, board, "plays:")
        if copied:
            return copied
        if rng.random() < self.errors.opponent:
            return str(rng.choice(board.empty_positions()))
        return str(self.minimax.ranked_moves(board, role.group(1))[0])  # type: ignore[arg-type]

    def _winner(self, text: str, rng: random.Random) -> str:
        blocks, query = self._split(text)
        board = parse_board(query)
        if board is None:
            return "I cannot tell."
        copied = _copied_answer(blocks, board, "Check, line by line:", last=False)
        if copied:
            return copied
        answer = P.winner_reasoning(board)
        if rng.random() < self.errors.winner:
            truth = board.winner()
            wrong = rng.choice([w for w in ("X", "O", "none") if w != (truth or "none")])
            answer = answer.rsplit("\n", 1)[0] + f"\nWinner: {wrong}"
        return answer

    def _availability(self, text: str, rng: random.Random) -> str:
        blocks, query = self._split(text)
        board = parse_board(query)
        if board is None:
            return "I cannot tell."
        copied = _copied_answer(blocks, board, "Empty positions:")
        if copied:
            return copied
        empties = board.empty_positions()
        if empties and rng.random() < self.errors.availability:
            empties = [p for p in empties if p != rng.choice(empties)]
        return ", ".join(map(str, empties)) if empties else "none"


def _copied_answer(blocks: list[str], board: Board, marker: str, last: bool = True) -> str | None:
    """The answer of an in-context example about the same board, if the prompt holds one:
    a learned correction is copied, which is how a noisy model gets fixed by its examples."""
    for block in blocks:
        head, _, answer = block.rpartition(marker) if last else block.partition(marker)
        if parse_board(head) == board and answer.strip():
            return answer.strip()
    return None


def oracle_llm(errors: float | OracleErrors = 0.0, *, seed: int = 0, name: str | None = None, **kwargs) -> ScriptedLLM:
    """A simulated LLM that answers the Tic-Tac-Toe prompts from the rules."""
    if not isinstance(errors, OracleErrors):
        errors = OracleErrors.uniform(float(errors))
    rate = max(errors.move, errors.dynamics, errors.opponent, errors.winner, errors.availability)
    label = name or ("oracle" if rate == 0 else f"oracle:{rate:g}")
    return ScriptedLLM(TicTacToeRules(errors), name=label, seed=seed, **kwargs)


def make_oracle(error_rate: float, options: BackendOptions) -> ScriptedLLM:
    """The registry's factory for ``oracle`` / ``oracle:<rate>``."""
    return oracle_backend(TicTacToeRules(OracleErrors.uniform(error_rate)), error_rate, options)