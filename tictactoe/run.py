"""RAFA on Tic-Tac-Toe (see tictactoe/README.md): ``python tictactoe/run.py --O_MPC 3``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rafa_core.driver import main  # noqa: E402
from rafa_core.tictactoe.benchmark import TicTacToe  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(TicTacToe(), sys.argv[1:]))
