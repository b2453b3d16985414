"""The demo's run on the embedded model: plan -> act -> observe -> correct, printed as a trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # the embedded model: a minute or two on a free 2-core machine
def test_the_demo_run_shows_a_correction_by_what_was_observed(tmp_path):
    env = {**os.environ, "RAFA_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    env.pop("OPENAI_API_KEY", None)
    out = tmp_path / "demo"
    run = subprocess.run([sys.executable, str(ROOT / "blocksworld" / "run_rafa_mcts.py"), "--backend", "local",
                          "--single_run", "--rollouts", "1", "--out", str(out)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-2000:]
    trace = subprocess.run([sys.executable, "-m", "rafa_core", "trace", str(out)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert trace.returncode == 0, trace.stderr
    text = trace.stdout
    assert "reason (plan):" in text and "act:" in text and "observed:" in text
    assert "prediction wrong -> the search tree now holds the observed state" in text
    calls = (out / "requests.jsonl").read_text().splitlines()
    assert calls and (out / "summary.json").is_file()
