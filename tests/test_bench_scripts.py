"""The benchmark scripts run end to end (their numbers are measured by hand, never asserted:
they depend on the machine). A script that no longer runs is a broken promise in the README."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_script(*argv: str, timeout: float = 300) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / argv[0]), *argv[1:]], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_the_game24_speed_bench_runs_and_reports_every_target():
    out = run_script("bench_game24.py", "--puzzles", "2", "--scale", "4", "--latency", "0.02", "--repeat", "1")
    for line in ("original pattern", "critical path", "speed-up", "same requests and success: yes",
                 "4/2 puzzles wall", "walls of 3 interleaved pairs", "client CPU per request at 0 ms", "naive client (no adaptation)",
                 "ours (AIMD + Retry-After)", "results identical to the clean run: yes"):
        assert line in out, line


@pytest.mark.slow
def test_the_game24_cost_table_covers_the_five_paper_configurations():
    out = run_script("bench_game24.py", "--costs", "--puzzles", "2")
    names = [line[2:14].strip() for line in out.splitlines()[2:] if line.strip()]
    assert names == ["ToT b=1", "ToT b=2", "Reflexion", "RAFA b=1", "RAFA b=2"]
