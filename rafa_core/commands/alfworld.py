"""``python -m rafa_core alfworld [flags]``: ALFWorld with the repository's ``alfworld/base_config.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..alfworld.cli import main as alfworld_main
from ..cli import run_main

REPO = Path(__file__).resolve().parents[2]


def main(argv: Sequence[str] | None = None) -> int:
    config = REPO / "alfworld" / "base_config.yaml"
    return run_main(lambda: alfworld_main(list(argv or []), default_config=config if config.exists() else None))
