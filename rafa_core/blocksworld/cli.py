"""BlocksWorld through the one driver (the declaration: :mod:`.benchmark`), ``--method`` picking RAP or RAFA."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .. import driver
from .benchmark import BlocksWorld


async def amain(method: str, argv: Sequence[str] | None = None, *, default_data: Path | None = None,
                progress: bool = True) -> dict[str, Any] | None:
    """Run every selected instance; the summary (None on a rank with nothing to do)."""
    return await driver.run_benchmark(BlocksWorld(method, default_data), argv, progress=progress)


def main(method: str, argv: Sequence[str] | None = None, *, default_data: Path | None = None) -> int:
    return driver.main(BlocksWorld(method, default_data), argv)
