"""Tic-Tac-Toe declared for the driver (``python tictactoe/run.py``): base X against a base or RAFA O,
with training and evaluations.

The loop of the original: evaluate (``--num_eval_epochs`` games, no learning); then per
training epoch play one training game (learning on), save both players' state, and every
``--eval_freq`` epochs evaluate again.  The run directory::

    <out>/config.json  episodes.jsonl  summary.json
    <out>/eval.json                       the evaluation before any training
    <out>/X_memory.json, O_memory.json    each player's state after that evaluation
    <out>/<epoch>/train.json              the training games so far (this epoch's last)
    <out>/<epoch>/X_memory.json, O_memory.json   each player's state after this epoch's
                                          latest game (training game, then each evaluation game)
    <out>/<epoch>/eval.json               the evaluation after it: winners and transcripts

The evaluations and training epochs are batches of the driver's one runner.
``episodes.jsonl`` (one line per game) is the record of what finished; a restarted run
skips those games and reloads the players (the resume hook) as they were after the last finished game
(learned examples, search cache and remembered answers), so it asks no more than an
uninterrupted run.  Games with a RAFA player run one after another: they share its search
cache (as in the original), so running them at once would make each game's calls depend
on timing.  Games between two base players are independent and run ``--concurrency`` at once.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..benchmark import Benchmark, Run
from ..cli import non_negative_int, positive_int
from ..llm.errors import UserError
from ..llm.registry import describe_choice
from ..llm.usage import Usage
from ..runner import RUNTIME_KEYS, Batch, RunResult, write_json_atomic
from .game import Role
from .match import play_game
from .oracle import make_oracle
from .players import IMPROVED_MAX_EXAMPLES, MAX_RETRIES, BasePlayer, LearnedState, Player, RAFAOptions, RAFAPlayer
from .results import evaluations, outcome_rates

ORIGINAL_MODEL = "gpt-4"
INITIAL = -1  # the epoch number of the evaluation before any training


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--X", default=None, help="model of the X player (default gpt-4 with a key, else local)")
    parser.add_argument("--O", default=None, help="model of the O player (default gpt-4 with a key, else local)")
    parser.add_argument("--X_MPC", type=positive_int, default=1, help="moves X proposes per search; 1 = base player")
    parser.add_argument("--O_MPC", type=positive_int, default=1, help="moves O proposes per search; 1 = base player")
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--eval_freq", type=positive_int, default=1, help="evaluate every this many training epochs")
    parser.add_argument("--num_train_epochs", type=non_negative_int, default=1, help="training games")
    parser.add_argument("--num_eval_epochs", type=positive_int, default=1, help="games per evaluation")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="0 quiet, 1 one line per game, 2 every move")
    parser.add_argument("--depth", type=positive_int, default=None,
                        help="RAFA look-ahead in own moves (default: until the imagined game ends)")
    parser.add_argument("--max_move_retries", type=non_negative_int, default=MAX_RETRIES,
                        help="re-asks after an answer without an empty cell, before a random empty cell")
    parser.add_argument("--bd_api", action="store_true", help="accepted for the original's command lines; unused, as there")
    add_improvement_flags(parser)


def add_improvement_flags(parser: argparse.ArgumentParser) -> None:
    """This project's changes to the original's MPC player: each off by default (the original's
    behaviour), each on with its flag, all on with ``--improved`` (README, "Differences")."""
    group = parser.add_argument_group("improvements over the original (default off; --improved turns all on)")
    group.add_argument("--improved", action="store_true", help="turn on every improvement below")
    group.add_argument("--improvement_plan", action=argparse.BooleanOptionalAction, default=None,
                       help="T1: after each training game write an improvement plan and show it to the proposer "
                            "(the original's plan was always empty)")
    group.add_argument("--tie_break", choices=("highest", "first"), default=None,
                       help="T2: among equally valued moves take the highest-numbered cell (the original) "
                            "or the first proposed one")
    group.add_argument("--learn_availability", action=argparse.BooleanOptionalAction, default=None,
                       help="T5: learn the availability model on a miss too (the original never did)")
    group.add_argument("--max_examples", type=examples_cap, default=None,
                       help=f"T7: learned examples per model shown in a prompt, most recent ('all': the original; "
                            f"{IMPROVED_MAX_EXAMPLES} with --improved)")


def examples_cap(text: str) -> int | str:
    return "all" if text.strip().lower() == "all" else non_negative_int(text)


def resolve_improvements(args: argparse.Namespace) -> None:
    """Fill the improvement flags not given: on with ``--improved``, else the original's behaviour."""
    on = args.improved
    if args.improvement_plan is None:
        args.improvement_plan = on
    if args.tie_break is None:
        args.tie_break = "first" if on else "highest"
    if args.learn_availability is None:
        args.learn_availability = on
    if args.max_examples is None:
        args.max_examples = IMPROVED_MAX_EXAMPLES if on else "all"


def rafa_options(args: argparse.Namespace) -> RAFAOptions:
    return RAFAOptions(
        improvement_plan=args.improvement_plan,
        prefer_first=args.tie_break == "first",
        learn_availability=args.learn_availability,
        max_examples=None if args.max_examples == "all" else int(args.max_examples),
    )


def player_label(mpc: int, model: str) -> str:
    kind = "Base" if mpc == 1 else f"MPC{mpc}"
    return f"{kind}_{re.sub(r'[^A-Za-z0-9._-]+', '-', model)}"


def run_name(args: argparse.Namespace) -> str:
    """The original's directory name, e.g. ``Base_gpt-4_vs_MPC3_gpt-4_temp0.2``."""
    return f"{player_label(args.X_MPC, args.X)}_vs_{player_label(args.O_MPC, args.O)}_temp{args.temperature:g}"


@dataclass
class Game:
    """One game of the schedule: its log index, phase and epoch (-1: before training)."""

    phase: str  # "train" or "eval"
    epoch: int
    number: int = 0

    @property
    def index(self) -> str:
        where = "init" if self.epoch == INITIAL else str(self.epoch)
        return f"train-{where}" if self.phase == "train" else f"eval-{where}-g{self.number}"


@dataclass
class Players:
    """One run's learned state of each player (what the resume hook restores)."""

    games: dict[str, Game] = field(default_factory=dict)  # index -> game of the schedule
    learned: dict[Role, LearnedState] = field(default_factory=lambda: {"X": LearnedState(), "O": LearnedState()})


@dataclass(frozen=True)
class TicTacToe(Benchmark):
    name = "tictactoe"
    prog = "tictactoe/run.py"
    description = "RAFA on Tic-Tac-Toe: a base X against a base or RAFA (model-predictive) O."
    original_model = ORIGINAL_MODEL
    # More training epochs extend the same experiment, so a finished run can be continued.
    runtime_keys = RUNTIME_KEYS | {"num_train_epochs"}
    progress_desc = "games"
    progress_unit = "game"

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        add_flags(parser)

    def check(self, run: Run) -> bool:
        resolve_improvements(run.args)
        run.state = Players()
        return True

    def choose_backends(self, run: Run) -> dict[str, tuple[str, str]]:
        args = run.args
        chosen = {role: describe_choice(getattr(args, role), ORIGINAL_MODEL, args.base_url) for role in ("X", "O")}
        args.X, args.O = chosen["X"][0], chosen["O"][0]
        return chosen

    def oracle(self, run: Run):
        return make_oracle

    def run_name(self, run: Run) -> str:
        return run_name(run.args)

    def config(self, run: Run) -> dict[str, Any]:
        return {"benchmark": "tictactoe", "out": str(run.out)}

    def max_steps(self, run: Run) -> int:
        return 9

    def progress(self, run: Run) -> bool:
        return not (run.args.verbose == 0 and not sys.stderr.isatty())

    def postfix(self, run: Run, records: list[dict[str, Any]]) -> str:
        evals = evaluations(records)
        score = f"O score={evals[-1]['O_score']:+.2f} " if evals else ""
        return f"{score}cost=${run.usage.cost_usd:.4f}"

    # -- the schedule ----------------------------------------------------------------------------
    def games(self, run: Run) -> list[list[Game]]:
        """The original's loop: evaluate; per training epoch one game, every --eval_freq an evaluation."""
        args = run.args

        def evaluation(epoch: int) -> list[Game]:
            return [Game("eval", epoch, g) for g in range(args.num_eval_epochs)]

        batches = [evaluation(INITIAL)]
        for epoch in range(args.num_train_epochs):
            batches.append([Game("train", epoch)])
            if (epoch + 1) % args.eval_freq == 0:
                batches.append(evaluation(epoch))
        return batches

    def schedule(self, run: Run) -> list[Batch]:
        # A RAFA player's games share its search cache and answers: one at a time, so each
        # game's calls are the same at any --concurrency.
        rafa = run.args.X_MPC > 1 or run.args.O_MPC > 1
        batches = []
        for games in self.games(run):
            run.state.games.update((g.index, g) for g in games)
            batches.append(Batch([g.index for g in games], concurrency=1 if rafa else None, tag=games[0]))
        return batches

    def on_resume(self, run: Run, records: list[dict[str, Any]]) -> None:
        """Reload both players as they were after the last finished game of the schedule."""
        done = {str(r["index"]) for r in records}
        args = run.args
        trained = [e for e in range(args.num_train_epochs) if Game("train", e).index in done]
        if trained and trained != list(range(max(trained) + 1)):
            raise UserError(f"{run.out}: training games are missing before epoch {max(trained)}; use a new --out")
        finished = [g for batch in self.games(run) for g in batch if g.index in done]
        if not finished:
            return
        folder = epoch_dir(run, finished[-1].epoch)
        for role in ("X", "O"):
            path = folder / f"{role}_memory.json"
            if not trained and not path.exists():
                continue  # nothing learned yet (a run from before the state was saved per game)
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise UserError(f"cannot resume: {path} is missing or broken ({exc}); use a new --out")
            if data.get("kind") == "rafa":
                run.state.learned[role] = LearnedState.from_json(data)

    # -- one game --------------------------------------------------------------------------------
    def player(self, run: Run, role: Role, usage: Usage) -> Player:
        args = run.args
        mpc = args.X_MPC if role == "X" else args.O_MPC
        llm = run.llms[role].with_usage(usage)
        if mpc == 1:
            return BasePlayer(llm, role, args.temperature, args.max_move_retries, args.seed)
        return RAFAPlayer(llm, role, mpc, run.state.learned[role], args.temperature, args.depth,
                          rafa_options(args), args.max_move_retries, args.seed)

    async def episode(self, run: Run, index: Any, ledger: Usage) -> dict[str, Any]:
        game = run.state.games[index]
        players: dict[Role, Player] = {"X": self.player(run, "X", ledger), "O": self.player(run, "O", ledger)}

        def show_move(entry: dict[str, Any]) -> None:
            if run.args.verbose >= 2:
                note = " (random fallback)" if entry["fallback"] else ""
                run.say(f"{entry['role']} plays {entry['position']}{note}\n{entry['board']}")

        record = await play_game(players, session=f"{game.index}-s{run.args.seed}", learn=game.phase == "train",
                                 on_move=show_move)
        save_players(run, game, players)  # before the runner's log line, the commit point
        if run.args.verbose >= 1:
            moves = " ".join(f"{r}{p}" for r, p in record.moves)
            fallbacks = f", {record.fallbacks} random fallbacks" if record.fallbacks else ""
            run.say(f"{game.index}: winner {record.result} ({moves}{fallbacks})")
        return {
            "index": game.index,
            "phase": game.phase,
            "epoch": game.epoch,
            "game": game.number,
            "success": record.result == "O",
            "env_steps": len(record.moves),
            "reward": record.o_score,
            **record.to_json(),
        }

    async def after_batch(self, run: Run, batch: Batch) -> None:
        write_epoch_files(run, batch.tag)

    # -- the end ---------------------------------------------------------------------------------
    def summary(self, run: Run, result: RunResult) -> dict[str, Any]:
        games = result.records
        training = sorted((g for g in games if g["phase"] == "train"), key=lambda g: g["epoch"])
        return {
            **result.summary,
            "players": {"X": describe(run, "X"), "O": describe(run, "O")},
            "evaluations": evaluations(games),
            "training": [{"game": g["epoch"] + 1, "winner": g["winner"], "O_score": g["O_score"]} for g in training],
            "fallback_moves": sum(g.get("fallbacks", 0) for g in games),
        }

    def report(self, run: Run, summary: dict[str, Any]) -> None:
        evals = summary["evaluations"]
        if evals:
            scores = " ".join(f"{e['O_score']:+.2f}" for e in evals)
            print(f"O score by evaluation: {scores}; run directory: {run.out}")


def epoch_dir(run: Run, epoch: int) -> Path:
    path = run.out if epoch == INITIAL else run.out / str(epoch)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_players(run: Run, game: Game, players: dict[Role, Player]) -> None:
    """Both players' state after ``game``, in its epoch's folder (the original saved after
    each training game; saving after every game lets a resumed run ask no more)."""
    folder = epoch_dir(run, game.epoch)
    for role, player in players.items():
        write_json_atomic(folder / f"{role}_memory.json", {**player.state_json(), "after_game": game.index})


def write_epoch_files(run: Run, game: Game) -> None:
    """After a batch: the training games so far, or this evaluation's results."""
    assert run.runner is not None
    games = run.runner.log.records
    folder = epoch_dir(run, game.epoch)
    if game.phase == "train":
        train = sorted((g for g in games if g.get("phase") == "train"), key=lambda g: g["epoch"])
        write_json_atomic(folder / "train.json", [g for g in train if g["epoch"] <= game.epoch])
        return
    this_eval = sorted((g for g in games if g.get("phase") == "eval" and g["epoch"] == game.epoch), key=lambda g: g["game"])
    rates = outcome_rates(this_eval)
    write_json_atomic(
        folder / "eval.json",
        {
            "after_training_games": game.epoch + 1,
            "winners": [g["winner"] for g in this_eval],
            **rates,
            "games": [{k: g[k] for k in ("game", "winner", "moves", "transcript")} for g in this_eval],
        },
    )
    if run.args.verbose >= 1:
        run.say(f"evaluation after {game.epoch + 1} training games: O wins {rates['O_win_rate']:.0%}, "
                f"ties {rates['tie_rate']:.0%}, loses {rates['O_loss_rate']:.0%} (score {rates['O_score']:+.2f})")


def describe(run: Run, role: Role) -> dict[str, Any]:
    mpc = run.args.X_MPC if role == "X" else run.args.O_MPC
    return {**run.llms[role].describe(), "player": "base" if mpc == 1 else f"RAFA (B={mpc})"}
