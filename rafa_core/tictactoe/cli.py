"""``python tictactoe/run.py`` through the one driver (the declaration: :mod:`.benchmark`)."""

from __future__ import annotations

from typing import Sequence

from .. import driver
from .benchmark import TicTacToe


def main(argv: Sequence[str] | None = None) -> int:
    return driver.main(TicTacToe(), argv)
