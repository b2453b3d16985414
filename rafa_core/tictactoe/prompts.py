"""Prompts of the Tic-Tac-Toe players and models (our own wording), and their answer parsers.

Every prompt is a short chat: a system message with the rules and the task, then one user
message.  The learned models (dynamics, opponent, winner, availability) carry their
in-context examples in the user message, before the query; every example has exactly the
query's shape, so the model answers by continuing the pattern.  Parsers never raise: an
answer they cannot read is ``None`` ("no prediction").
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from ..llm.base import Messages
from .game import LINES, MAX_ANSWER_CHARS, Board, Role, other

RULES = (
    "Tic-Tac-Toe is played on a 3x3 board whose cells are numbered 1 to 9, row by row. "
    "X moves first, then the two players alternate, each marking one empty cell. "
    "Three marks of one player in a row, a column or a diagonal win; "
    "a full board without such a line is a tie. "
    "On the board, an empty cell shows its number and a taken cell shows X or O."
)

# The first sentence of each task; the simulated oracle recognises a request by it.
MOVE_TASK = "You are playing Tic-Tac-Toe"
PROPOSE_TASK = "You are choosing candidate moves in Tic-Tac-Toe"
DYNAMICS_TASK = "You predict how a Tic-Tac-Toe board changes after one move."
OPPONENT_TASK = "You predict which move a Tic-Tac-Toe player makes next."
WINNER_TASK = "You judge whether a player has won on a Tic-Tac-Toe board."
AVAILABILITY_TASK = "You list the empty cells of a Tic-Tac-Toe board."
REFLECT_TASK = "You look back on a Tic-Tac-Toe game you played"
PLAN_TASK = "You write an improvement plan for playing Tic-Tac-Toe"

# Markers between the examples and the query (the oracle reads what follows the last one).
QUERY = "Now your turn."
EXAMPLES = "Examples:"


def _chat(system: str, user: str) -> Messages:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _session_line(session: str | None) -> str:
    # Distinct per game, so cached answers and seeded doubles do not replay one game.
    return f" (Game {session}.)" if session else ""


# -- decisions -----------------------------------------------------------------------------------
def move_prompt(board: Board, role: Role, session: str | None = None) -> Messages:
    system = f"{MOVE_TASK} as {role}.{_session_line(session)} {RULES}"
    user = (
        f"The board:\n{board.render()}\n\n"
        f"You are {role} and it is your move. Which empty position is your best move? "
        "Write its number alone on the first line."
    )
    return _chat(system, user)


def propose_prompt(
    board: Board, role: Role, count: int, plan: str = "", session: str | None = None
) -> Messages:
    system = f"{PROPOSE_TASK} as {role}.{_session_line(session)} {RULES}"
    advice = f"Your improvement plan from earlier games:\n{plan.strip()}\n\n" if plan.strip() else ""
    user = (
        f"{advice}The board:\n{board.render()}\n\n"
        f"You are {role} and it is your move. Give your {count} most promising moves, best first: "
        f"on the first line, {count} different empty positions separated by commas."
    )
    return _chat(system, user)


def correction(board: Board, answered: Sequence[int]) -> str:
    """The follow-up when an answer named no empty cell."""
    empties = ", ".join(str(p) for p in board.empty_positions())
    if answered:
        taken = ", ".join(str(p) for p in answered)
        problem = f"Position {taken} is not empty." if len(answered) == 1 else f"Positions {taken} are not empty."
    else:
        problem = "Your answer named no position from 1 to 9."
    return f"{problem} The empty positions are: {empties}. Answer again with empty positions only, on the first line."


# -- learned models --------------------------------------------------------------------------------
def _with_examples(blocks: list[str], query: str) -> str:
    head = f"{EXAMPLES}\n\n" + "\n\n".join(blocks) + "\n\n" if blocks else ""
    return f"{head}{QUERY}\n\n{query}"


def dynamics_block(before: Board, role: Role, move: int, after: Board | None = None) -> str:
    text = f"Board before:\n{before.render()}\nMove: {role} marks position {move}.\nBoard after:"
    return f"{text}\n{after.render()}" if after is not None else text


def dynamics_prompt(before: Board, role: Role, move: int, examples: Iterable[dict[str, Any]]) -> Messages:
    system = (
        f"{DYNAMICS_TASK} {RULES} Copy the board, write the mover's mark in the chosen cell, "
        "and change nothing else. Answer with the three rows of the new board only."
    )
    blocks = [
        dynamics_block(Board.from_key(e["before"]), e["role"], int(e["move"]), Board.from_key(e["after"]))
        for e in examples
    ]
    return _chat(system, _with_examples(blocks, dynamics_block(before, role, move)))


def opponent_block(board: Board, role: Role, move: int | None = None) -> str:
    text = f"Board:\n{board.render()}\n{role} to move. {role} plays:"
    return f"{text} {move}" if move is not None else text


def opponent_prompt(board: Board, role: Role, examples: Iterable[dict[str, Any]]) -> Messages:
    system = (
        f"{OPPONENT_TASK} {RULES} Learn the player's habits from the examples of its real moves. "
        "Answer with the number of the empty position it will mark, alone on the first line."
    )
    blocks = [opponent_block(Board.from_key(e["board"]), e["role"], int(e["move"])) for e in examples]
    return _chat(system, _with_examples(blocks, opponent_block(board, role)))


def winner_reasoning(board: Board) -> str:
    """The line-by-line check of the eight lines, ending with the verdict (for examples)."""
    out = []
    for name, line in LINES:
        marks = [board.cell(p) or str(p) for p in line]
        same = marks[0] if marks[0] in ("X", "O") and marks[0] == marks[1] == marks[2] else None
        verdict = f"three {same}" if same else "no"
        out.append(f"{name} ({', '.join(map(str, line))}): {' '.join(marks)} -> {verdict}")
    win = board.winner()
    out.append(f"Winner: {win or 'none'}")
    return "\n".join(out)


def winner_block(board: Board, reasoning: str | None = None) -> str:
    text = f"Board:\n{board.render()}\nCheck, line by line:"
    return f"{text}\n{reasoning}" if reasoning is not None else text


def winner_prompt(board: Board, examples: Iterable[dict[str, Any]]) -> Messages:
    system = (
        f"{WINNER_TASK} {RULES} Check the eight lines one at a time, one per line of your answer "
        "(row 1, row 2, row 3, column 1, column 2, column 3, diagonal 1-5-9, diagonal 3-5-7), "
        "then end with exactly one last line: 'Winner: X', 'Winner: O' or 'Winner: none'."
    )
    blocks = [winner_block(Board.from_key(e["board"]), e["reasoning"]) for e in examples]
    return _chat(system, _with_examples(blocks, winner_block(board)))


def availability_block(board: Board, empties: Sequence[int] | None = None, *, answered: bool = False) -> str:
    text = f"Board:\n{board.render()}\nEmpty positions:"
    if not answered:
        return text
    return f"{text} {', '.join(map(str, empties)) if empties else 'none'}"


def availability_prompt(board: Board, examples: Iterable[dict[str, Any]]) -> Messages:
    system = (
        f"{AVAILABILITY_TASK} {RULES} The empty cells are the ones still showing their number. "
        "Answer on one line with their numbers separated by commas, or 'none' if the board is full."
    )
    blocks = [
        availability_block(Board.from_key(e["board"]), e["empties"], answered=True) for e in examples
    ]
    return _chat(system, _with_examples(blocks, availability_block(board)))


# -- reflection and plan ---------------------------------------------------------------------------
def game_record_text(moves: Sequence[tuple[str, int]], final: Board, result: str, role: Role) -> str:
    listed = ", ".join(f"{r} {p}" for r, p in moves)
    if result == role:
        outcome = f"{role} won."
    elif result == other(role):
        outcome = f"{role} lost ({other(role)} won)."
    else:
        outcome = "The game was a tie."
    return f"Moves in order: {listed}\nFinal board:\n{final.render()}\nResult: {outcome}"


def reflection_prompt(record: str, role: Role) -> Messages:
    system = f"{REFLECT_TASK} as {role}, to learn from it. {RULES}"
    user = (
        f"{record}\n\nIn two or three sentences: which of your moves decided the result, and what "
        "should you do differently (or keep doing) next time?"
    )
    return _chat(system, user)


def plan_prompt(games: Sequence[dict[str, Any]], role: Role) -> Messages:
    system = f"{PLAN_TASK} as {role}, from the games you played so far. {RULES}"
    parts = [
        f"Game {i}:\n{g['record']}\nLessons: {g.get('lessons') or '(none)'}" for i, g in enumerate(games, 1)
    ]
    user = (
        "\n\n".join(parts)
        + "\n\nWrite a short improvement plan for your next games as "
        + f"{role}: at most five numbered points, each one concrete rule for choosing a move."
    )
    return _chat(system, user)


# -- answer parsers (never raise) -------------------------------------------------------------------
_DIGIT = re.compile(r"[1-9]")


def first_position(text: str) -> int | None:
    """The first digit 1-9 anywhere in the answer (the base player's move)."""
    match = _DIGIT.search(text or "")
    return int(match.group()) if match else None


def position_list(text: str) -> list[int]:
    """The distinct digits 1-9 on the first non-empty line, in order (the proposer's moves)."""
    for line in (text or "")[:MAX_ANSWER_CHARS].splitlines():
        if line.strip():
            seen: list[int] = []
            for d in _DIGIT.findall(line):
                if int(d) not in seen:
                    seen.append(int(d))
            return seen
    return []


_SIDE = re.compile(r"\b([XO])\b")
_NOBODY = re.compile(r"\b(none|nobody|no one|no-one|no winner|neither)\b", re.IGNORECASE)


def parse_winner(text: str) -> str | None:
    """``"X"``, ``"O"``, ``"none"`` (nobody has won), or None when the answer is unreadable.

    The verdict is the last line that mentions a winner (else the last line); naming both
    sides, or no side and no "none", is no prediction.
    """
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    if not lines:
        return None
    verdicts = [ln for ln in lines if "winner" in ln.lower()]
    line = verdicts[-1] if verdicts else lines[-1]
    if ":" in line:
        line = line.split(":", 1)[1]
    sides = set(_SIDE.findall(line.upper()))
    nobody = bool(_NOBODY.search(line))
    if len(sides) == 1 and not nobody:
        return sides.pop()
    if not sides and nobody:
        return "none"
    return None


def parse_empty_positions(text: str) -> frozenset[int] | None:
    """The empty cells listed on the first non-empty line; ``frozenset()`` for "none"."""
    for line in (text or "")[:MAX_ANSWER_CHARS].splitlines():
        line = line.strip()
        if not line:
            continue
        if ":" in line and not _DIGIT.search(line.split(":", 1)[0]):
            line = line.split(":", 1)[1]
        digits = _DIGIT.findall(line)
        if digits:
            return frozenset(int(d) for d in digits)
        if _NOBODY.search(line) or "full" in line.lower():
            return frozenset()
        return None
    return None
