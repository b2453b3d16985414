"""``python -m rafa_core blocksworld [--method rap] [flags]``: the two BlocksWorld entry points in one."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..blocksworld.benchmark import BlocksWorld
from ..driver import main as run

REPO = Path(__file__).resolve().parents[2]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(argv or [])
    method = "rafa"
    if "--method" in argv:
        i = argv.index("--method")
        method = argv[i + 1] if i + 1 < len(argv) else ""
        del argv[i:i + 2]
    if method not in {"rafa", "rap"}:
        import sys

        print(f"error: --method must be rafa or rap, not {method!r}", file=sys.stderr)
        return 2
    return run(BlocksWorld(method, default_data=REPO / "blocksworld" / "data" / "step_4.json"), argv)
