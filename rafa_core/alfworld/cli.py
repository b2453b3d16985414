"""``python alfworld/run.py`` through the one driver (the declaration: :mod:`.benchmark`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from .. import driver
from .benchmark import AlfWorldBenchmark


async def main(argv: Sequence[str] | None = None, default_config: str | Path | None = None) -> int:
    """The run without the exit-code wrapper (errors raise); 0, or 3 when stopped at --max-cost."""
    return driver.exit_code(await driver.run_benchmark(AlfWorldBenchmark(default_config), argv))


def entry(default_config: str | Path | None = None) -> int:
    return driver.main(AlfWorldBenchmark(default_config), sys.argv[1:])
