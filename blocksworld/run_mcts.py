"""BlocksWorld with RAP (MCTS planning only): `python blocksworld/run_mcts.py --backend oracle`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rafa_core.blocksworld.benchmark import BlocksWorld  # noqa: E402
from rafa_core.driver import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(BlocksWorld("rap", default_data=Path(__file__).resolve().parent / "data" / "step_4.json"), sys.argv[1:]))
