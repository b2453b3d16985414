"""The offline games: ALFWorld's layout, loaded by the real AlfredTWEnv, walkthroughs win."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rafa_core.alfworld.env import AlfWorld, AlfWorldEnv, clean_intro, clean_observation, game_name, task_kind
from rafa_core.alfworld.make_games import TASK_TYPES, make_games

pytestmark = pytest.mark.slow  # the real engine


def shared_games(tmp_path_factory) -> Path:
    """12 games (2 per task type), generated once per test session."""
    root = tmp_path_factory.getbasetemp() / "alfworld_games"
    if not (root / "json_2.1.1").is_dir():
        make_games(root, per_type=2, seed=0)
    return root


@pytest.fixture(scope="module")
def games(tmp_path_factory, monkeypatch_module) -> AlfWorld:
    root = shared_games(tmp_path_factory)
    monkeypatch_module.setenv("ALFWORLD_DATA", str(root))
    return AlfWorld()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_layout_is_alfworlds(tmp_path_factory):
    root = shared_games(tmp_path_factory)
    assert (root / "logic" / "alfred.pddl").is_file() and (root / "logic" / "alfred.twl2").is_file()
    trials = sorted((root / "json_2.1.1" / "valid_unseen").glob("*/trial_*"))
    assert len(trials) == 12
    seen_types = set()
    for trial in trials:
        folder = trial.parent.name
        task_type, obj, movable, recep, scene = folder.split("-")
        assert movable == "None" and scene.isdigit() and obj and recep
        traj = json.loads((trial / "traj_data.json").read_text())
        assert traj["task_type"] == task_type
        seen_types.add(task_type)
        game = json.loads((trial / "game.tw-pddl").read_text())
        assert set(game) >= {"pddl_domain", "grammar", "pddl_problem", "solvable", "walkthrough"}
        assert game["solvable"] is True and game["walkthrough"]
        assert "UNKNOWN GOAL" not in game["grammar"]
        assert "(:goal" in (trial / "initial_state.pddl").read_text()
    assert seen_types == set(TASK_TYPES.values())


def test_every_game_loads_walkthrough_wins_and_nonsense_does_nothing(games):
    assert len(games) == 12
    with games.make_env() as env:
        for game in games.games:
            intro, info = env.reset(game.index)
            assert "Welcome to TextWorld" not in intro
            assert "Your task is to:" in intro and "you see" in intro
            assert info["admissible_commands"] and not info["won"] and info["task_type"] == game.kind
            obs, _, done, info = env.step("fly to the moon")
            assert obs == "Nothing happens." and not done and not info["won"]
            walkthrough = json.loads(Path(game.gamefile).read_text())["walkthrough"]
            for command in walkthrough:
                assert command in info["admissible_commands"], (game.name, command)
                obs, _, done, info = env.step(command)
                assert obs != "Nothing happens."
            assert info["won"] and done, game.name


def test_leaving_the_environment_closes_the_engine():
    class Engine:
        closed = 0

        def close(self):
            self.closed += 1

    engine = Engine()
    with AlfWorldEnv(engine, []) as env:
        assert env.game is None
    assert engine.closed == 1


def test_game_order_is_the_engines_and_kind_comes_from_the_folder(games):
    kinds = {g.kind for g in games.games}
    assert kinds == {"put", "examine", "clean", "heat", "cool", "puttwo"}
    for game in games.games:
        assert game.name == game_name(game.gamefile)
        assert game.kind == task_kind(game.gamefile)
        assert game.name.split("/")[0].startswith(
            {"put": "pick_and_place", "examine": "look_at_obj", "clean": "pick_clean", "heat": "pick_heat",
             "cool": "pick_cool", "puttwo": "pick_two"}[game.kind])
    # The engine itself plays the games in this order from a fresh env.
    env = games.make_env()
    try:
        obs, infos = env._env.reset()
        assert infos["extra.gamefile"][0] == games.games[0].gamefile
    finally:
        env.close()


def test_observation_cleanup():
    assert clean_intro("-= Welcome to TextWorld, ALFRED! =-\n\nYou are in a room.\n\nYour task is to: x.") == (
        "You are in a room.\n\nYour task is to: x."
    )
    assert clean_observation("You arrive at loc 12. On the desk 1, you see a pen 1.") == "On the desk 1, you see a pen 1."
    assert clean_observation("You arrive at desk 1. On the desk 1, you see nothing.").startswith("You arrive at desk 1.")
