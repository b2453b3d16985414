"""The Tic-Tac-Toe board: rules, text rendering, tolerant parsing, and the ground-truth env.

Positions are 1..9, row by row. A board is rendered as three rows ``a | b | c`` separated
by a line of nine dashes; an empty cell shows its number, a taken one ``X`` or ``O``::

    X | 2 | 3
    ---------
    4 | O | 6
    ---------
    7 | 8 | 9
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Optional

from ..environment import Closing

Role = Literal["X", "O"]
# The eight winning lines, with the names the winner model reasons over line by line.
LINES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("row 1", (1, 2, 3)),
    ("row 2", (4, 5, 6)),
    ("row 3", (7, 8, 9)),
    ("column 1", (1, 4, 7)),
    ("column 2", (2, 5, 8)),
    ("column 3", (3, 6, 9)),
    ("diagonal 1-5-9", (1, 5, 9)),
    ("diagonal 3-5-7", (3, 5, 7)),
)
SEPARATOR = "-" * 9
TIE = "Tie"


class IllegalMove(ValueError):
    """A move to a taken or non-existent cell (the environment refuses it)."""


def other(role: Role) -> Role:
    return "O" if role == "X" else "X"


@dataclass(frozen=True)
class Board:
    """Nine cells, each ``"X"``, ``"O"`` or ``""`` (empty); immutable and hashable."""

    cells: tuple[str, ...] = ("",) * 9

    def __post_init__(self) -> None:
        if len(self.cells) != 9 or any(c not in ("", "X", "O") for c in self.cells):
            raise ValueError(f"not a board: {self.cells!r}")

    @classmethod
    def from_moves(cls, moves: Iterable[tuple[Role, int]]) -> "Board":
        board = cls()
        for role, position in moves:
            board = board.play(position, role)
        return board

    def key(self) -> str:
        """A compact form for logs and saved memory: nine of ``X``, ``O``, ``.``."""
        return "".join(c or "." for c in self.cells)

    @classmethod
    def from_key(cls, key: str) -> "Board":
        if len(key) != 9 or set(key) - set("XO."):
            raise ValueError(f"not a board key: {key!r}")
        return cls(tuple("" if c == "." else c for c in key))

    def cell(self, position: int) -> str:
        return self.cells[position - 1]

    def empty_positions(self) -> list[int]:
        return [i + 1 for i, c in enumerate(self.cells) if not c]

    def is_legal(self, position: int) -> bool:
        return isinstance(position, int) and 1 <= position <= 9 and not self.cells[position - 1]

    def play(self, position: int, role: Role) -> "Board":
        if not self.is_legal(position):
            raise IllegalMove(f"position {position!r} is not an empty cell 1-9")
        cells = list(self.cells)
        cells[position - 1] = role
        return Board(tuple(cells))

    def to_move(self) -> Role:
        """Whose turn it is: X moves first, so X moves when the counts are equal."""
        return "X" if self.cells.count("X") == self.cells.count("O") else "O"

    def winner(self) -> Optional[Role]:
        for _, (a, b, c) in LINES:
            mark = self.cells[a - 1]
            if mark and mark == self.cells[b - 1] == self.cells[c - 1]:
                return mark  # type: ignore[return-value]
        return None

    def is_full(self) -> bool:
        return all(self.cells)

    def is_over(self) -> bool:
        return self.winner() is not None or self.is_full()

    def result(self) -> Optional[str]:
        """``"X"``, ``"O"``, ``"Tie"``, or None while the game goes on."""
        win = self.winner()
        if win:
            return win
        return TIE if self.is_full() else None

    def render(self) -> str:
        shown = [c or str(i + 1) for i, c in enumerate(self.cells)]
        rows = [" | ".join(shown[r * 3 : r * 3 + 3]) for r in range(3)]
        return f"\n{SEPARATOR}\n".join(rows)

    def __str__(self) -> str:
        return self.render()


# Answers are read up to here (a board is a few dozen characters): a runaway answer
# costs milliseconds, whatever its length.
MAX_ANSWER_CHARS = 4000
# A board row: three cells separated by bars; a cell is X, O, a digit, or a blank / dot / dash.
_ROW = re.compile(r"^\s*\|?\s*([XxOo1-9.\-_ ]?)\s*\|\s*([XxOo1-9.\-_ ]?)\s*\|\s*([XxOo1-9.\-_ ]?)\s*\|?\s*$")


def _parse_cell(token: str, position: int) -> str | None:
    token = token.strip().upper()
    if token in ("X", "O"):
        return token
    if token in ("", ".", "-", "_"):
        return ""
    # A digit marks an empty cell; the wrong digit in a cell means a garbled board.
    return "" if token == str(position) else None


def parse_board(text: str) -> Board | None:
    """The first three consecutive board rows in ``text`` (separator lines optional), or None.

    Tolerant of indentation, code fences, lower case, outer bars and blank-ish cells;
    anything else (a wrong number in a cell, a missing row) is "no board".
    """
    if not isinstance(text, str):
        return None
    rows: list[tuple[str, str, str]] = []
    for line in text[:MAX_ANSWER_CHARS].splitlines():
        stripped = line.strip().strip("`")
        if not stripped:
            if rows:
                rows = []  # rows must be consecutive (blank lines break a board)
            continue
        if set(stripped) <= set("-=+|: ") and set(stripped) & set("-="):
            continue  # a separator line (also a markdown table's)
        match = _ROW.match(stripped)
        if match:
            rows.append(match.groups())  # type: ignore[arg-type]
            if len(rows) == 3:
                return _board_from_rows(rows)
        else:
            rows = []
    return None


def _board_from_rows(rows: list[tuple[str, str, str]]) -> Board | None:
    cells: list[str] = []
    for r, row in enumerate(rows):
        for c, token in enumerate(row):
            cell = _parse_cell(token, r * 3 + c + 1)
            if cell is None:
                return None
            cells.append(cell)
    return Board(tuple(cells))


def is_reachable(board: Board) -> bool:
    """Whether ``board`` can arise in a real game (counts, and nobody moved after a win)."""
    xs, os_ = board.cells.count("X"), board.cells.count("O")
    if xs - os_ not in (0, 1):
        return False
    x_wins = _has_line(board, "X")
    o_wins = _has_line(board, "O")
    if x_wins and o_wins:
        return False
    if x_wins and xs != os_ + 1:
        return False
    if o_wins and xs != os_:
        return False
    return True


def _has_line(board: Board, role: Role) -> bool:
    return any(all(board.cell(p) == role for p in line) for _, line in LINES)


def replay(moves: Iterable[tuple[str, int] | list[Any]]) -> str:
    """Play ``[role, position]`` moves from the empty board and return the result.

    Raises :class:`IllegalMove` on a move out of turn, to a taken cell, or after the end.
    """
    board = Board()
    for role, position in moves:
        if board.is_over():
            raise IllegalMove("a move after the game ended")
        if role != board.to_move():
            raise IllegalMove(f"{role} moved out of turn")
        board = board.play(int(position), role)
    result = board.result()
    if result is None:
        raise IllegalMove("the game did not finish")
    return result


class TicTacToeEnv(Closing):
    """Ground truth: ``reset() -> (board, info)``, ``step(position) -> (board, reward, done, info)``.

    The reward is for the player who just moved (+1 win, 0 otherwise); an illegal move
    raises :class:`IllegalMove` (players validate their moves before acting).  ``info``
    says who moved, from which board, and the result (what the players learn from).
    """

    def __init__(self) -> None:
        self.board = Board()

    def reset(self, index: Any = None, start: Board | None = None) -> tuple[Board, dict[str, Any]]:
        self.board = start if start is not None else Board()
        return self.board, {}

    def step(self, position: int) -> tuple[Board, float, bool, dict[str, Any]]:
        if self.board.is_over():
            raise IllegalMove("the game is over")
        before, mover = self.board, self.board.to_move()
        self.board = self.board.play(position, mover)
        result = self.board.result()
        reward = 1.0 if result == mover else 0.0
        return self.board, reward, result is not None, {"mover": mover, "before": before, "result": result}
