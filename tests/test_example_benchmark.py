"""The example benchmark (examples/numberwalk): a fifth benchmark declared in one file and run
by the same driver as the four of the paper — with the simulated oracle, resumed, on bad
input, and (slow) on the embedded model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.entry_points import read_run, run_script

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "examples" / "numberwalk" / "run.py"


def run_entry(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_script(RUN, *args, cwd=cwd)


def test_the_oracle_solves_every_puzzle_through_the_driver(tmp_path):
    out = tmp_path / "run"
    result = run_entry("--backend", "oracle", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[0] == "backend: oracle [SIMULATED] (chosen with a flag)"
    assert "Number walk: 10/10 solved (100.0%)  [SIMULATED backend]" in result.stdout
    assert {p.name for p in out.iterdir()} >= {"config.json", "episodes.jsonl", "summary.json", "requests.jsonl"}
    episodes, summary = read_run(out)
    assert sorted(e["index"] for e in episodes) == list(range(10))
    assert all(e["success"] and 1 <= e["env_steps"] <= 6 and e["usage"]["llm_calls"] > 0 for e in episodes)
    # The agent acted on its plans: each real move is the first move of that step's plan.
    assert all(s["action"] == s["plan"][0] for e in episodes for s in e["trace"])
    assert summary["episodes"] == 10 and summary["success_rate"] == 1.0 and summary["simulated"] is True
    assert json.loads((out / "config.json").read_text())["backend"] == "oracle"


def test_a_noisy_oracle_fails_some_puzzles_and_a_grown_range_resumes(tmp_path):
    out = tmp_path / "run"
    first = run_entry("--backend", "oracle:0.3", "--end", "4", "--out", str(out), "--no-cache", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    before = (out / "episodes.jsonl").read_text()
    second = run_entry("--backend", "oracle:0.3", "--out", str(out), "--no-cache", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "4 finished episodes found and skipped, 6 to run" in second.stderr
    assert (out / "episodes.jsonl").read_text().startswith(before)  # nothing played twice
    episodes, summary = read_run(out)
    assert sorted(e["index"] for e in episodes) == list(range(10))
    assert 0 < summary["successes"] < 10  # wrong answers cost puzzles
    # The same run from scratch gives the same results (the oracle's draws are seeded).
    whole = tmp_path / "whole"
    assert run_entry("--backend", "oracle:0.3", "--out", str(whole), "--no-cache", cwd=tmp_path).returncode == 0
    assert {e["index"]: e["success"] for e in read_run(whole)[0]} == {e["index"]: e["success"] for e in episodes}
    # Other flags in the same directory are refused.
    other = run_entry("--backend", "oracle:0.3", "--depth", "3", "--out", str(out), "--no-cache", cwd=tmp_path)
    assert other.returncode == 2 and "different config" in other.stderr


@pytest.mark.parametrize("flags", [["--backend", "oracle:2"], ["--depth", "0"]])
def test_bad_input_is_one_line_and_exit_2(tmp_path, flags):
    result = run_entry(*flags, "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.slow
def test_the_embedded_model_plays_a_short_episode(tmp_path):
    out = tmp_path / "local"
    result = run_entry("--backend", "local", "--end", "1", "--max_steps", "1", "--breadth", "1", "--depth", "1",
                       "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("backend: local")
    episodes, summary = read_run(out)
    assert len(episodes) == 1 and episodes[0]["env_steps"] == 1
    assert episodes[0]["trace"][0]["action"] in {"+1", "+3", "x2"}  # a bad answer falls back to a real move
    assert summary["llm_calls"] > 0 and summary["completion_tokens"] > 0 and summary["simulated"] is False
