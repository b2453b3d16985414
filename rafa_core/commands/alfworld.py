"""``python -m rafa_core alfworld [flags]``: ALFWorld with the repository's ``alfworld/base_config.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..alfworld.benchmark import AlfWorldBenchmark
from ..driver import main as run

REPO = Path(__file__).resolve().parents[2]


def main(argv: Sequence[str] | None = None) -> int:
    config = REPO / "alfworld" / "base_config.yaml"
    return run(AlfWorldBenchmark(config if config.exists() else None), list(argv or []))
