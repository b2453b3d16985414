"""Game of 24 with ToT, Reflexion and RAFA: ``python game24/run.py --planning tot --feedback``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rafa_core.driver import main  # noqa: E402
from rafa_core.game24.benchmark import Game24  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(Game24(), sys.argv[1:]))
