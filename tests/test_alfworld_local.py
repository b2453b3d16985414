"""One short episode on the embedded model (SmolLM2-135M) through the real engine."""

from __future__ import annotations

import asyncio
import json

import pytest

from rafa_core.alfworld.env import AlfWorld
from rafa_core.alfworld.make_games import make_games
from rafa_core.alfworld.trials import TrialLoop, TrialSettings
from rafa_core.llm.registry import BackendOptions, make_llm
from rafa_core.llm.usage import Usage
from rafa_core.runner import RunDir


@pytest.mark.slow
def test_one_short_episode_on_the_embedded_model(tmp_path, tmp_path_factory, monkeypatch):
    data = tmp_path_factory.getbasetemp() / "alfworld_games"
    if not (data / "json_2.1.1").is_dir():
        make_games(data, per_type=2, seed=0)
    monkeypatch.setenv("ALFWORLD_DATA", str(data))
    games = AlfWorld()
    usage = Usage()
    llm = make_llm("local", BackendOptions(usage=usage, concurrency=8))
    assert not llm.simulated
    # The smallest tree that still uses every role: critic, proposer (2 samples), world model.
    settings = TrialSettings(num_trials=1, num_envs=1, use_memory=False, max_steps=1, breadth=1, depth=1, samples=2,
                             action_tokens=12, observation_tokens=24, critic_tokens=24, progress=False)
    summary = asyncio.run(TrialLoop(RunDir(tmp_path, {"test": "local"}), games, llm, llm, usage, settings).run())
    assert summary["episodes"] == 1 and summary["simulated"] is False
    # Root critic + proposer, child world model + critic; nothing prefetched at the last step.
    assert summary["llm_calls"] == 4
    record = json.loads((tmp_path / "episodes.jsonl").read_text().splitlines()[0])
    assert record["env_steps"] == 1
    step = record["trace"][0]
    # Whatever the tiny model wrote, the executed command was an admissible one.
    assert step["observation"] != "Nothing happens."
    assert len(step["tree"]["children"]) == 1
    assert record["prompt"].startswith("You play a text game set in a household.")
    assert "STATUS:" in (tmp_path / "trial_0.log").read_text()
