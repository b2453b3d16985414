"""``python tictactoe/run.py``: base X against a base or RAFA O, with training and evaluations.

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

``episodes.jsonl`` (one line per game) is the record of what finished; a restarted run
skips those games and reloads the players as they were after the last finished game
(learned examples, search cache and remembered answers), so it asks no more than an
uninterrupted run.  Games with a RAFA player run one after another: they share its search
cache (as in the original), so running them at once would make each game's calls depend
on timing.  Games between two base players are independent and run ``--concurrency`` at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cli import (
    ArgumentParser,
    add_shared_flags,
    announce_backend,
    build_llm,
    config_from_args,
    non_negative_int,
    open_cache,
    positive_int,
    run_main,
    seed_everything,
)
from ..llm.base import BackendError, BaseLLM, BudgetExceeded, UserError
from ..llm.request_log import labels
from ..llm.usage import Usage
from ..runner import RUNTIME_KEYS, JsonlLog, RunDir, announce_job, announce_resume, summarize, write_json_atomic
from .game import Role
from .match import GameRecord, play_game
from .oracle import make_oracle
from .players import IMPROVED_MAX_EXAMPLES, MAX_RETRIES, BasePlayer, LearnedState, Player, RAFAOptions, RAFAPlayer
from .results import evaluations, outcome_rates

ORIGINAL_MODEL = "gpt-4"
INITIAL = -1  # the epoch number of the evaluation before any training


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="tictactoe/run.py",
        description="RAFA on Tic-Tac-Toe: a base X against a base or RAFA (model-predictive) O.",
    )
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
    add_shared_flags(parser)
    return parser


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


class TicTacToeRun:
    """The schedule of games over a run directory, with resume."""

    def __init__(self, args: argparse.Namespace, llms: dict[Role, BaseLLM], run_dir: RunDir, usage: Usage) -> None:
        self.args = args
        self.llms = llms
        self.run_dir = run_dir
        self.usage = usage
        self.log = JsonlLog(run_dir.file("episodes.jsonl"))
        usage.request_log = run_dir.request_log()
        for record in self.log.records:  # what finished before counts toward totals and the cap
            usage.add_json(record.get("usage", {}))
        self.learned: dict[Role, LearnedState] = {"X": LearnedState(), "O": LearnedState()}
        self.started = time.monotonic()
        self.bar = None

    # -- the schedule -------------------------------------------------------------------------------
    def evaluation(self, epoch: int) -> list[Game]:
        return [Game("eval", epoch, g) for g in range(self.args.num_eval_epochs)]

    def schedule(self) -> list[list[Game]]:
        """Batches run in order; the games of one evaluation may run concurrently."""
        batches = [self.evaluation(INITIAL)]
        for epoch in range(self.args.num_train_epochs):
            batches.append([Game("train", epoch)])
            if (epoch + 1) % self.args.eval_freq == 0:
                batches.append(self.evaluation(epoch))
        return batches

    def finished(self) -> dict[str, dict[str, Any]]:
        return {str(r["index"]): r for r in self.log.records}

    def epoch_dir(self, epoch: int) -> Path:
        path = self.run_dir.path if epoch == INITIAL else self.run_dir.path / str(epoch)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- players -----------------------------------------------------------------------------------
    def player(self, role: Role, usage: Usage) -> Player:
        mpc = self.args.X_MPC if role == "X" else self.args.O_MPC
        llm = self.llms[role].with_usage(usage)
        if mpc == 1:
            return BasePlayer(llm, role, self.args.temperature, self.args.max_move_retries, self.args.seed)
        return RAFAPlayer(
            llm, role, mpc, self.learned[role], self.args.temperature, self.args.depth,
            rafa_options(self.args), self.args.max_move_retries, self.args.seed,
        )

    def has_rafa_player(self) -> bool:
        return self.args.X_MPC > 1 or self.args.O_MPC > 1

    def restore_players(self, done: dict[str, dict[str, Any]]) -> None:
        """Reload both players as they were after the last finished game of the schedule."""
        trained = [e for e in range(self.args.num_train_epochs) if Game("train", e).index in done]
        if trained and trained != list(range(max(trained) + 1)):
            raise UserError(f"{self.run_dir.path}: training games are missing before epoch {max(trained)}; use a new --out")
        finished = [g for batch in self.schedule() for g in batch if g.index in done]
        if not finished:
            return
        folder = self.epoch_dir(finished[-1].epoch)
        for role in ("X", "O"):
            path = folder / f"{role}_memory.json"
            if not trained and not path.exists():
                continue  # nothing learned yet (a run from before the state was saved per game)
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise UserError(f"cannot resume: {path} is missing or broken ({exc}); use a new --out")
            if data.get("kind") == "rafa":
                self.learned[role] = LearnedState.from_json(data)

    # -- running -----------------------------------------------------------------------------------
    async def play(self, game: Game) -> dict[str, Any]:
        ledger = self.usage.child()
        players: dict[Role, Player] = {"X": self.player("X", ledger), "O": self.player("O", ledger)}
        session = f"{game.index}-s{self.args.seed}"
        t0 = time.monotonic()
        with labels(episode=game.index):
            record = await play_game(players, session=session, learn=game.phase == "train", on_move=self.show_move)
        entry = {
            "index": game.index,
            "phase": game.phase,
            "epoch": game.epoch,
            "game": game.number,
            "success": record.result == "O",
            "env_steps": len(record.moves),
            "reward": record.o_score,
            **record.to_json(),
        }
        self.save_players(game, players)
        entry.update(usage=ledger.to_json(), wall_s=round(time.monotonic() - t0, 3))
        self.log.append(entry)  # the commit point: written after the players' state
        self.show_game(entry, record)
        return entry

    def save_players(self, game: Game, players: dict[Role, Player]) -> None:
        """Both players' state after ``game``, in its epoch's folder (the original saved after
        each training game; saving after every game lets a resumed run ask no more)."""
        folder = self.epoch_dir(game.epoch)
        for role, player in players.items():
            write_json_atomic(folder / f"{role}_memory.json", {**player.state_json(), "after_game": game.index})

    async def play_batch(self, games: list[Game], done: dict[str, dict[str, Any]]) -> None:
        todo = [g for g in games if g.index not in done]
        # A RAFA player's games share its search cache and answers: one at a time, so each
        # game's calls are the same at any --concurrency.
        limit = asyncio.Semaphore(1 if self.has_rafa_player() else self.args.concurrency)

        async def one(game: Game) -> None:
            async with limit:
                await self.play(game)
                self.advance_bar()

        tasks = [asyncio.create_task(one(g)) for g in todo]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # One game failed (budget, backend): stop the others before the summary is written.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        self.write_epoch_files(games[0])

    def write_epoch_files(self, game: Game) -> None:
        games = self.log.records
        folder = self.epoch_dir(game.epoch)
        if game.phase == "train":
            train = sorted((g for g in games if g.get("phase") == "train"), key=lambda g: g["epoch"])
            write_json_atomic(folder / "train.json", [g for g in train if g["epoch"] <= game.epoch])
            return
        this_eval = sorted((g for g in games if g.get("phase") == "eval" and g["epoch"] == game.epoch), key=lambda g: g["game"])
        write_json_atomic(
            folder / "eval.json",
            {
                "after_training_games": game.epoch + 1,
                "winners": [g["winner"] for g in this_eval],
                **outcome_rates(this_eval),
                "games": [{k: g[k] for k in ("game", "winner", "moves", "transcript")} for g in this_eval],
            },
        )
        if self.args.verbose >= 1:
            rates = outcome_rates(this_eval)
            self.say(
                f"evaluation after {game.epoch + 1} training games: O wins {rates['O_win_rate']:.0%}, "
                f"ties {rates['tie_rate']:.0%}, loses {rates['O_loss_rate']:.0%} (score {rates['O_score']:+.2f})"
            )

    async def run(self) -> dict[str, Any]:
        done = self.finished()
        self.restore_players(done)
        batches = self.schedule()
        total = sum(len(b) for b in batches)
        found = sum(1 for b in batches for g in b if g.index in done)
        announce_resume(self.run_dir.path, found=found, todo=total - found)
        announce_job(self.run_dir.config, episodes=total - found, max_steps=9,
                     simulated=all(llm.simulated for llm in self.llms.values()))
        self.bar = self.progress_bar(total, found)
        stopped = None
        try:
            for batch in batches:
                await self.play_batch(batch, done)
        except BudgetExceeded:
            stopped = "budget"
            raise
        finally:
            if self.bar is not None:
                self.bar.close()
            summary = self.write_summary(batches, stopped)
        return summary

    def write_summary(self, batches: list[list[Game]], stopped: str | None) -> dict[str, Any]:
        wanted = {g.index for b in batches for g in b}
        games = [r for r in self.log.records if r["index"] in wanted]
        training = sorted((g for g in games if g["phase"] == "train"), key=lambda g: g["epoch"])
        summary = summarize(
            games,
            self.usage,
            wall_s=time.monotonic() - self.started,
            max_steps=9,
            stopped=stopped,
            simulated=any(llm.simulated for llm in self.llms.values()),
            extra={
                "players": {"X": self.describe("X"), "O": self.describe("O")},
                "evaluations": evaluations(games),
                "training": [{"game": g["epoch"] + 1, "winner": g["winner"], "O_score": g["O_score"]} for g in training],
                "fallback_moves": sum(g.get("fallbacks", 0) for g in games),
            },
        )
        write_json_atomic(self.run_dir.file("summary.json"), summary)
        return summary

    def describe(self, role: Role) -> dict[str, Any]:
        mpc = self.args.X_MPC if role == "X" else self.args.O_MPC
        return {**self.llms[role].describe(), "player": "base" if mpc == 1 else f"RAFA (B={mpc})"}

    # -- output ------------------------------------------------------------------------------------
    def progress_bar(self, total: int, initial: int):
        if self.args.verbose == 0 and not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc="games", unit="game", dynamic_ncols=True, file=sys.stderr)

    def advance_bar(self) -> None:
        if self.bar is None:
            return
        evals = evaluations(self.log.records)
        score = f"O score={evals[-1]['O_score']:+.2f} " if evals else ""
        self.bar.set_postfix_str(f"{score}cost=${self.usage.cost_usd:.4f}", refresh=False)
        self.bar.update(1)

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def show_move(self, entry: dict[str, Any]) -> None:
        if self.args.verbose >= 2:
            note = " (random fallback)" if entry["fallback"] else ""
            self.say(f"{entry['role']} plays {entry['position']}{note}\n{entry['board']}")

    def show_game(self, entry: dict[str, Any], record: GameRecord) -> None:
        if self.args.verbose >= 1:
            moves = " ".join(f"{r}{p}" for r, p in record.moves)
            fallbacks = f", {record.fallbacks} random fallbacks" if record.fallbacks else ""
            self.say(f"{entry['index']}: winner {record.result} ({moves}{fallbacks})")


async def main_async(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    resolve_improvements(args)
    args.X = announce_backend(args.X, ORIGINAL_MODEL, args, label="X")
    args.O = announce_backend(args.O, ORIGINAL_MODEL, args, label="O")
    seed_everything(args.seed)
    out = Path(args.out) if args.out else Path("runs") / "tictactoe" / run_name(args)
    # More training epochs extend the same experiment, so a finished run can be continued.
    run_dir = RunDir(out, config_from_args(args, benchmark="tictactoe", out=str(out)), RUNTIME_KEYS | {"num_train_epochs"})
    usage = Usage(max_cost=args.max_cost)
    simulated_only = all(spec.split(":", 1)[0] in {"oracle", "replay"} for spec in (args.X, args.O))
    cache = None if simulated_only and not args.cache else open_cache(args)
    built: dict[str, BaseLLM] = {}
    for spec in {args.X, args.O}:  # one backend (one loaded model) per distinct name
        built[spec] = build_llm(spec, args, usage, oracle=make_oracle, cache=cache)
    llms: dict[Role, BaseLLM] = {"X": built[args.X], "O": built[args.O]}
    run = TicTacToeRun(args, llms, run_dir, usage)
    try:
        summary = await run.run()
    except BackendError as exc:
        raise UserError(f"the model backend failed: {exc} (finished games are kept; rerun to resume)")
    finally:
        for llm in built.values():
            await llm.aclose()
    evals = summary["evaluations"]
    if evals:
        scores = " ".join(f"{e['O_score']:+.2f}" for e in evals)
        print(f"O score by evaluation: {scores}; run directory: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(lambda: main_async(argv))
