"""The real ALFWorld engine (``AlfredTWEnv``, TextWorld + PDDL), one game per reset, batch size 1.

Games are addressed by their index in the order the engine plays them: ``AlfredTWEnv``
collects the games of the split, TextWorld's batch env shuffles them with its fixed seed
(1234) and cycles through them. We sort the collected paths first (``os.walk`` order
differs between file systems), so game ``i`` is the same game on every machine, and jump
to a game by re-seeding and skipping — the games are still loaded and played by the
original code.

Observations are cleaned the way the agent's prompts expect: the welcome banner is dropped
from the first observation and a leading "You arrive at loc N." (older game files) is cut.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..environment import Closing
from ..llm.errors import UserError
from .world import task_kind_of_folder

SPLIT = "eval_out_of_distribution"
GYM_SEED = 1234  # TextWorld's batch env seeds its game order with this

DOWNLOAD_HINT = (
    "ALFWORLD_DATA is not set: download the official games with `alfworld-download` "
    "(then export ALFWORLD_DATA=~/.cache/alfworld), or generate offline games with "
    "`python -m rafa_core.alfworld.make_games --out DIR` and pass --data DIR"
)

DEFAULT_CONFIG: dict[str, Any] = {
    "dataset": {
        "data_path": "$ALFWORLD_DATA/json_2.1.1/train",
        "eval_id_data_path": "$ALFWORLD_DATA/json_2.1.1/valid_seen",
        "eval_ood_data_path": "$ALFWORLD_DATA/json_2.1.1/valid_unseen",
        "num_train_games": -1,
        "num_eval_games": -1,
    },
    "logic": {
        "domain": "$ALFWORLD_DATA/logic/alfred.pddl",
        "grammar": "$ALFWORLD_DATA/logic/alfred.twl2",
    },
    "env": {
        "type": "AlfredTWEnv",
        "domain_randomization": False,
        "task_types": [1, 2, 3, 4, 5, 6],
        "expert_type": "handcoded",
        "goal_desc_human_anns_prob": 0.0,
    },
    "general": {"training_method": "dagger"},
    "dagger": {"training": {"max_nb_steps_per_episode": 50}},
}

_BANNER = re.compile(r"^\s*-= Welcome to TextWorld, ALFRED! =-\s*", re.MULTILINE)
_ARRIVE_LOC = re.compile(r"^You arrive at loc \d+\.\s*")


def require_data_dir() -> Path:
    """``$ALFWORLD_DATA`` as a path; a clear UserError when it is unset or empty.

    Checked before importing ``alfworld``: its ``info`` module would silently fall back to
    (and create) ``~/.cache/alfworld``.
    """
    value = os.environ.get("ALFWORLD_DATA", "").strip()
    if not value:
        raise UserError(DOWNLOAD_HINT)
    path = Path(value).expanduser()
    if not path.is_dir():
        raise UserError(f"ALFWORLD_DATA={value} is not a directory; {DOWNLOAD_HINT.split(': ', 1)[1]}")
    return path


def clean_intro(obs: str) -> str:
    return _BANNER.sub("", obs).strip()


def clean_observation(obs: str) -> str:
    return _ARRIVE_LOC.sub("", obs.strip())


def game_name(gamefile: str) -> str:
    """``<task folder>/<trial folder>`` of a game file (what the original logs as the env name)."""
    parts = Path(gamefile).parts
    return "/".join(parts[-3:-1])


def task_kind(gamefile: str) -> str:
    return task_kind_of_folder(Path(gamefile).parts[-3])


@contextlib.contextmanager
def keep_data_env():
    """Importing ``alfworld`` sets ``$ALFWORLD_DATA`` to a default when it is unset; undo that
    so an unset variable stays unset (and stays an error for the entry point)."""
    before = os.environ.get("ALFWORLD_DATA")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("ALFWORLD_DATA", None)
        else:
            os.environ["ALFWORLD_DATA"] = before


@contextlib.contextmanager
def _quiet():
    """AlfredTWEnv prints banners and a progress bar; keep our output to our own lines."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


@dataclass
class GameInfo:
    index: int
    gamefile: str
    name: str
    kind: str


class AlfWorld:
    """The split's games; makes one :class:`AlfWorldEnv` per concurrently played game."""

    def __init__(self, config: dict[str, Any] | None = None, split: str = SPLIT) -> None:
        require_data_dir()
        self.config = config or DEFAULT_CONFIG
        self.split = split
        try:
            with keep_data_env():
                from alfworld.agents.environment.alfred_tw_env import AlfredTWEnv
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise UserError(f"the alfworld package is missing ({exc}); pip install 'rafa_core[alfworld]'")
        with _quiet():
            try:
                self._alfred = AlfredTWEnv(self.config, train_eval=split)
            except (KeyError, TypeError) as exc:
                raise UserError(f"bad ALFWorld config: missing or wrong key {exc}")
        self._alfred.game_files = sorted(self._alfred.game_files)
        if not self._alfred.game_files:
            path = os.path.expandvars(self.config["dataset"]["eval_ood_data_path"])
            raise UserError(f"no solvable games under {path}; {DOWNLOAD_HINT.split(': ', 1)[1]}")
        self.games = self._play_order(self._alfred.game_files)

    @staticmethod
    def _play_order(files: list[str]) -> list[GameInfo]:
        import numpy as np

        order = list(files)
        np.random.RandomState(GYM_SEED).shuffle(order)  # what TextWorld's batch env does
        return [GameInfo(i, f, game_name(f), task_kind(f)) for i, f in enumerate(order)]

    def __len__(self) -> int:
        return len(self.games)

    def make_env(self) -> "AlfWorldEnv":
        with _quiet():
            gym_env = self._alfred.init_env(batch_size=1)
        return AlfWorldEnv(gym_env, self.games)


class AlfWorldEnv(Closing):
    """``reset(index) -> (intro, info)``; ``step(command) -> (obs, reward, done, info)``;
    ``close()`` closes the TextWorld environment.  ``info`` holds the admissible commands
    (and, from ``reset``, the game's task type)."""

    def __init__(self, gym_env: Any, games: list[GameInfo]) -> None:
        self._env = gym_env
        self.games = games
        self.game: GameInfo | None = None

    def reset(self, index: int) -> tuple[str, dict[str, Any]]:
        self._env.seed(GYM_SEED)
        self._env.skip(index)
        obs, infos = self._env.reset()
        gamefile = infos["extra.gamefile"][0]
        self.game = self.games[index]
        if gamefile != self.game.gamefile:  # the engine's order is not what we computed
            raise RuntimeError(f"game {index}: expected {self.game.gamefile}, engine loaded {gamefile}")
        won = bool(infos["won"][0])
        info = {"admissible_commands": list(infos["admissible_commands"][0]), "won": won, "task_type": self.game.kind}
        return clean_intro(obs[0]), info

    def step(self, command: str) -> tuple[str, float, bool, dict[str, Any]]:
        obs, scores, dones, infos = self._env.step([command])
        won = bool(infos["won"][0])
        info = {"success": won, "won": won, "admissible_commands": list(infos["admissible_commands"][0])}
        return clean_observation(obs[0]), float(scores[0]), bool(dones[0]), info

    def close(self) -> None:
        self._env.close()
