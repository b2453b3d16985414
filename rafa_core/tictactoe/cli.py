"""``python tictactoe/run.py`` through the one driver (the declaration: :mod:`.benchmark`)."""

from __future__ import annotations

from typing import Sequence

from .. import driver
from .benchmark import TicTacToe


async def main_async(argv: Sequence[str] | None = None) -> int:
    """The run without the exit-code wrapper (errors raise); 0, or 3 when stopped at --max-cost."""
    return driver.exit_code(await driver.run_benchmark(TicTacToe(), argv))


def main(argv: Sequence[str] | None = None) -> int:
    return driver.main(TicTacToe(), argv)
