"""Running an entry point as a user would (a fresh process, its own cache and home) and reading its run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_script(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "RAFA_CACHE_DIR": str(cwd / "cache"), "HOME": str(cwd), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(script), *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=600)


def read_run(out: Path) -> tuple[list[dict], dict]:
    """The episodes and the summary of a run directory."""
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    return episodes, json.loads((out / "summary.json").read_text())
