"""The RAFA agent on generated games through the real engine: oracle, noisy oracle with
reflections, resume after a kill, unparsable answers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rafa_core.alfworld.cli import main
from rafa_core.alfworld.env import AlfWorld
from rafa_core.alfworld.make_games import make_games
from rafa_core.alfworld.oracle import make_rule
from rafa_core.alfworld.prompts import ACTOR_HEAD, CRITIC_HEAD, WORLD_HEAD
from rafa_core.alfworld.trials import TrialLoop, TrialSettings
from rafa_core.llm.scripted import ScriptedLLM
from rafa_core.llm.usage import Usage
from rafa_core.runner import RunDir

pytestmark = pytest.mark.slow  # the real engine

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.getbasetemp() / "alfworld_games"
    if not (root / "json_2.1.1").is_dir():
        make_games(root, per_type=2, seed=0)
    return root


def run(data: Path, out: Path, *flags: str, monkeypatch) -> int:
    monkeypatch.setenv("ALFWORLD_DATA", str(data))
    argv = ["--data", str(data), "--out", str(out), "--no-cache", "--progress", "false", *flags]
    return asyncio.run(main(argv, default_config=REPO / "alfworld" / "base_config.yaml"))


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def test_oracle_wins_every_game_within_20_steps(data, tmp_path, monkeypatch, capsys):
    assert run(data, tmp_path, "--backend", "oracle", "--num_trials", "1", "--improved", monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("backend: oracle [SIMULATED]")
    assert any(line.startswith("agent: improvements on: critic_terminal, deep_discount") for line in out)
    recs = records(tmp_path)
    assert len(recs) == 12
    assert all(r["success"] and r["env_steps"] <= 20 for r in recs), [(r["name"], r["env_steps"]) for r in recs]
    assert {r["task_type"] for r in recs} == {"put", "examine", "clean", "heat", "cool", "puttwo"}
    # Each real step plans a B=2 x D=2 tree: ~16 calls (fewer when the tree ends early).
    calls = sum(r["usage"]["llm_calls"] for r in recs)
    steps = sum(r["env_steps"] for r in recs)
    assert 12 <= calls / steps <= 17
    tree = recs[0]["trace"][0]["tree"]
    assert len(tree["children"]) == 2 and all(len(c["children"]) == 2 for c in tree["children"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["successes"] == 12 and summary["simulated"] is True
    world = (tmp_path / "world.log").read_text()
    assert "SUCCESS: 12" in world and "ACCURACY: 1.0" in world


NOISY = ["--backend", "oracle:0.5", "--num_trials", "2", "--num_envs", "6", "--concurrency", "2", "--seed", "3", "--improved"]
GAMES = 6


@pytest.fixture(scope="module")
def noisy_run(data, tmp_path_factory) -> Path:
    """One uninterrupted noisy run (2 trials, 6 games), shared by three tests."""
    out = tmp_path_factory.mktemp("noisy")
    mp = pytest.MonkeyPatch()
    try:
        assert run(data, out, *NOISY, monkeypatch=mp) == 0
    finally:
        mp.undo()
    return out


def test_noisy_proposer_fails_some_and_their_reflections_reach_trial_1(noisy_run):
    tmp_path = noisy_run
    recs = records(tmp_path)
    trial0 = {r["game"]: r for r in recs if r["trial"] == 0}
    trial1 = {r["game"]: r for r in recs if r["trial"] == 1}
    failed = {g for g, r in trial0.items() if not r["success"]}
    assert len(trial0) == GAMES and failed and len(failed) < GAMES
    assert set(trial1) == failed  # solved games are not replayed
    reflections = [json.loads(line) for line in (tmp_path / "reflections.jsonl").read_text().splitlines()]
    assert {r["game"] for r in reflections if r["trial"] == 0} == failed
    for r in reflections:
        prompt = trial1[r["game"]]["prompt"]
        assert f"Your memory for the task below:\nTrial 0: {r['text']}" in prompt
        assert trial1[r["game"]]["memory"] == [r["text"]]
    log1 = (tmp_path / "trial_1.log").read_text()
    assert log1.count("[memory trial 0]") == len(failed)
    results = json.loads((tmp_path / "env_results_trial_1.json").read_text())
    assert sum(r["skip"] for r in results) == GAMES - len(failed)
    world = (tmp_path / "world.log").read_text()
    assert f"SUCCESS: {GAMES - len(failed)}\n" in world and "***** Start Trial #1 *****" in world


def test_kill_and_resume_gives_the_uninterrupted_results(data, noisy_run, tmp_path):
    env = {**os.environ, "ALFWORLD_DATA": str(data), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "alfworld" / "run.py"), *NOISY, "--data", str(data), "--no-cache", "--progress", "false"]
    whole, broken = noisy_run, tmp_path / "broken"

    proc = subprocess.Popen(cmd + ["--out", str(broken)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = broken / "episodes.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(log.read_text().splitlines())
    assert 2 <= killed_at < GAMES, "the kill should land in the middle of trial 0"
    subprocess.run(cmd + ["--out", str(broken)], env=env, check=True, capture_output=True, timeout=300)

    def outcome(out: Path) -> dict[str, tuple]:
        return {r["index"]: (r["success"], r["env_steps"], r["memory"]) for r in records(out)}

    indices = [r["index"] for r in records(broken)]
    assert len(indices) == len(set(indices)), "a game was recorded twice"
    assert outcome(broken) == outcome(whole)
    assert (broken / "world.log").read_text() == (whole / "world.log").read_text()


def _unparsable(prompt: str, request) -> str | list[str]:
    if prompt.startswith(ACTOR_HEAD):
        return ["hmm, let me think", "", "fly to the moon", "I am not sure", "???", "maybe"]
    if prompt.startswith(CRITIC_HEAD):
        return "looks fine to me"
    if prompt.startswith(WORLD_HEAD):
        return ""
    return "no idea"


def test_unparsable_answers_fall_back_to_the_best_admissible_command(data, tmp_path, monkeypatch):
    monkeypatch.setenv("ALFWORLD_DATA", str(data))
    games = AlfWorld()
    usage = Usage()
    llm = ScriptedLLM(_unparsable, usage=usage)
    settings = TrialSettings(num_trials=1, num_envs=1, use_memory=True, max_steps=2, progress=False, real_admissible=True)
    run_dir = RunDir(tmp_path, {"test": "fallback"})
    summary = asyncio.run(TrialLoop(run_dir, games, llm, llm, usage, settings).run())
    assert summary["episodes"] == 1 and summary["fallback_steps"] == 2
    record = records(tmp_path)[0]
    assert record["env_steps"] == 2 and record["fallbacks"] == 2
    for step in record["trace"]:
        notes = step["tree"]["state"]["notes"]
        assert any("no admissible command among 6 samples" in n for n in notes)
        assert any("critic: no value" in n for n in notes)
        assert step["observation"] != "Nothing happens."  # the fallback was a real command
    log = (tmp_path / "trial_0.log").read_text()
    assert "falling back to the closest admissible command" in log
    assert "[proposer: fallback " in log


def test_start_trial_num_and_is_resume(data, noisy_run, tmp_path, monkeypatch):
    from rafa_core.llm.base import UserError

    before = (noisy_run / "episodes.jsonl").read_text()
    # Continue the finished run in place: nothing is played again.
    monkeypatch.setenv("ALFWORLD_DATA", str(data))
    argv = ["--data", str(data), "--no-cache", "--progress", "false", *NOISY,
            "--is_resume", "--resume_dir", str(noisy_run), "--start_trial_num", "1"]
    assert asyncio.run(main(argv, default_config=REPO / "alfworld" / "base_config.yaml")) == 0
    assert (noisy_run / "episodes.jsonl").read_text() == before
    # A fresh directory has no trial 0 to start after.
    with pytest.raises(UserError, match="start_trial_num 1: trial 0 is incomplete"):
        run(data, tmp_path / "fresh", *NOISY, "--start_trial_num", "1", monkeypatch=monkeypatch)
    with pytest.raises(UserError, match="--resume_dir"):
        run(data, tmp_path / "x", "--is_resume", monkeypatch=monkeypatch)


def test_speculative_leaves_from_the_config_win_the_same_and_log_their_waste(data, tmp_path, monkeypatch):
    config = tmp_path / "speculative.yaml"
    config.write_text("rafa:\n  speculative_leaves: true\n")
    flags = ["--backend", "oracle", "--num_trials", "1", "--num_envs", "2"]
    assert run(data, tmp_path / "plain", *flags, monkeypatch=monkeypatch) == 0
    assert run(data, tmp_path / "spec", *flags, "--config", str(config), monkeypatch=monkeypatch) == 0
    plain, spec = records(tmp_path / "plain"), records(tmp_path / "spec")
    assert [r["success"] for r in spec] == [r["success"] for r in plain] == [True, True]
    # The same actions: speculation changes when requests are made, not what is decided.
    assert [[s["action"] for s in r["trace"]] for r in spec] == [[s["action"] for s in r["trace"]] for r in plain]
    assert all(r["speculative_calls"] > 0 and r["speculative_wasted"] > 0 for r in spec)
    extra = sum(r["usage"]["llm_calls"] for r in spec) - sum(r["usage"]["llm_calls"] for r in plain)
    assert extra > 0
    assert "[speculative calls wasted:" in (tmp_path / "spec" / "trial_0.log").read_text()


def test_the_original_agent_by_default_wins_every_game_and_logs_as_the_original(data, tmp_path, monkeypatch, capsys):
    assert run(data, tmp_path, "--backend", "oracle", "--num_trials", "1", monkeypatch=monkeypatch) == 0
    assert "agent: as the original code; memory off" in capsys.readouterr().out
    recs = records(tmp_path)
    assert len(recs) == 12 and all(r["success"] for r in recs), [(r["name"], r["env_steps"]) for r in recs]
    # The original's prompts: the critic sees "OK." for every command, the world model is the actor.
    first = recs[0]["trace"][0]["tree"]
    assert len(first["children"]) == 2 and all(len(c["children"]) == 2 for c in first["children"])
    world = (tmp_path / "world.log").read_text()
    assert world.startswith("\n\n***** Start Trial #0 *****\n\nEnvironment #0 Trial #0: SUCCESS\n")
    assert "\n-----\nSUCCESS: 12\nADDITIONAL SUCCESS: 12\nFAIL: 0\nTOTAL: 12\nACCURACY: 1.0\n-----\n" in world
    assert world.endswith("***** End Trial #0 *****\n\n")
    assert not (tmp_path / "reflections.jsonl").exists() or not (tmp_path / "reflections.jsonl").read_text()


def _done_at_once(prompt: str, request):
    """The oracle, except that its critic says the task is done from the start."""
    if prompt.startswith(CRITIC_HEAD):
        return "sub-goals: (1) everything. Met: 1. Value: 1/1"
    return make_rule(0.0)(prompt, request)


@pytest.mark.parametrize("critic_terminal", [False, True])
def test_a_critic_that_says_done_at_the_root_does_not_end_the_episode(data, tmp_path, monkeypatch, critic_terminal):
    monkeypatch.setenv("ALFWORLD_DATA", str(data))
    games = AlfWorld()
    usage = Usage()
    llm = ScriptedLLM(_done_at_once, usage=usage)
    settings = TrialSettings(num_trials=1, num_envs=1, max_steps=20, progress=False, critic_terminal=critic_terminal)
    asyncio.run(TrialLoop(RunDir(tmp_path, {"test": "done"}), games, llm, llm, usage, settings).run())
    record = records(tmp_path)[0]
    if critic_terminal:  # our flag: the root is terminal, nothing is played
        assert record["env_steps"] == 0 and not record["success"]
        assert record["trace"][0]["info"]["error"] == "the planner returned no action"
    else:  # as the original: it acts on until the game is won (or 20 steps)
        assert record["success"] and record["env_steps"] >= 2


def test_the_oracle_wins_when_the_task_object_starts_in_a_target_receptacle(tmp_path, monkeypatch):
    import random

    from rafa_core.alfworld.fewshot import play
    from rafa_core.alfworld.make_games import make_spec, shipped_logic, write_game

    domain, grammar = (path.read_text(encoding="utf-8") for path in shipped_logic())
    rng = random.Random("target")
    spec = make_spec("pick_heat_then_place_in_recep", 491, rng)
    target = next(rid for kind, rid in spec.receptacles if kind == spec.recep)
    kind, oid, _ = spec.objects[0]
    spec.objects[0] = (kind, oid, target)
    root = tmp_path / "games"
    assert write_game(spec, root / "json_2.1.1" / "valid_unseen", "T9999", rng, domain, grammar) is not None
    (root / "logic").mkdir()
    monkeypatch.setenv("ALFWORLD_DATA", str(root))
    for name, path in zip(("alfred.pddl", "alfred.twl2"), shipped_logic()):
        (root / "logic" / name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    games = AlfWorld()
    env = games.make_env()
    try:
        intro, turns = play(env, 0)  # raises when the scripted player does not win
    finally:
        env.close()
    assert any(t.action.startswith("take ") and spec.recep.lower() in t.action for t in turns)
