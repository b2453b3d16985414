"""Costs before spending: the price database, --price, --max-cost refusing an unpriced model,
--estimate on the simulated oracle with no key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rafa_core.game24.cli import main as game24_main
from rafa_core.llm.usage import Usage, price_of

ROOT = Path(__file__).resolve().parents[1]


def test_prices_come_from_the_database_and_price_flags_override_it():
    assert price_of("gpt-4o-mini") == pytest.approx((0.15, 0.6))
    assert price_of("gpt-4o-2024-08-06") == price_of("gpt-4o")
    assert price_of("my-azure-deployment") is None
    usage = Usage()
    usage.set_price("my-azure-deployment", 1.0, 2.0)
    episode = usage.child()
    episode.record("my-azure-deployment", 1_000_000, 500_000)
    assert episode.cost_usd == pytest.approx(2.0) and usage.cost_usd == pytest.approx(2.0)
    assert not usage.unpriced_models


def test_max_cost_refuses_a_model_without_a_price_in_one_line(tmp_path, capsys):
    argv = ["--backend", "my-deployment", "--base-url", "http://127.0.0.1:9", "--max-cost", "0.001",
            "--out", str(tmp_path / "run"), "--no-cache"]
    assert game24_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no price known for model 'my-deployment'" in err and "--price" in err
    assert not (tmp_path / "run" / "episodes.jsonl").exists()  # refused before anything ran


def test_a_price_flag_lets_max_cost_through_and_is_recorded(tmp_path):
    out = tmp_path / "run"
    assert game24_main(["--backend", "oracle", "--max-cost", "1", "--price", "other=1,2", "--task_start_index", "998",
                        "--max_step", "2", "--no-cache", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["price"] == [["other", 1.0, 2.0]] and "genai-prices" in config["versions"]


def test_bad_price_flag_is_an_argparse_error():
    with pytest.raises(SystemExit) as stop:
        game24_main(["--price", "gpt-4o-mini=cheap"])
    assert stop.value.code == 2


@pytest.mark.slow  # two simulated runs of the paper's 100 puzzles (~40 s on a free machine)
def test_estimate_for_the_papers_game24_command_prints_a_cost_with_no_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_BASE_URL")}
    done = subprocess.run([sys.executable, str(ROOT / "game24" / "run.py"), "--backend", "gpt-4o-mini",
                           "--planning", "tot", "--feedback", "--estimate"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    projected = next(line for line in lines if "projected cost:" in line)
    low, high = (float(x.strip().strip("$")) for x in projected.split(":")[1].split(" at ")[0].split(" - "))
    assert 0 < low <= high < 10
    assert any(line.strip().startswith("perfect") and "100 episodes" in line for line in lines)
    assert not (tmp_path / "runs").exists()  # nothing was run for real
