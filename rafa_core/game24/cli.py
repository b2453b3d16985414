"""``game24/run.py``: Game of 24 through the one driver (the declaration: :mod:`.benchmark`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from .. import driver
from .benchmark import Game24


def build_parser() -> argparse.ArgumentParser:
    return driver.build_parser(Game24())


async def amain(argv: Sequence[str] | None = None, *, concurrent_candidates: bool = True,
                progress: bool = True) -> dict[str, Any]:
    """Run every puzzle of the range into the run directory; the summary."""
    summary = await driver.run_benchmark(Game24(concurrent_candidates), argv, progress=progress)
    assert summary is not None
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    return driver.main(Game24(), argv)


if __name__ == "__main__":
    sys.exit(main())
