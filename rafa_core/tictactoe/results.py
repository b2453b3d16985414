"""Reading a Tic-Tac-Toe run directory: O's score per training game and per evaluation.

The paper plots O's score (+1 win, 0 tie, -1 loss) against the number of training games;
:func:`score_curve` gives those points for ``scripts/plot_results.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from .match import O_SCORE


def load_games(run_dir: str | Path) -> list[dict[str, Any]]:
    """The finished games of a run (``episodes.jsonl``); a torn last line is ignored."""
    path = Path(run_dir) / "episodes.jsonl"
    if not path.is_file():
        return []
    games = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("winner") in O_SCORE:
            games.append(record)
    return games


def outcome_rates(games: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """O's win / tie / loss rates and mean score over ``games``."""
    winners = [g["winner"] for g in games]
    n = len(winners)
    return {
        "games": n,
        "O_win_rate": winners.count("O") / n if n else 0.0,
        "tie_rate": winners.count("Tie") / n if n else 0.0,
        "O_loss_rate": winners.count("X") / n if n else 0.0,
        "O_score": sum(O_SCORE[w] for w in winners) / n if n else 0.0,
    }


def evaluations(games: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per evaluation, in order: training games played before it, and O's rates."""
    by_epoch: dict[int, list[dict[str, Any]]] = {}
    for g in games:
        if g.get("phase") == "eval":
            by_epoch.setdefault(int(g["epoch"]), []).append(g)
    return [
        {"after_training_games": epoch + 1, **outcome_rates(sorted(gs, key=lambda g: g["game"]))}
        for epoch, gs in sorted(by_epoch.items())
    ]


def score_curve(run_dir: str | Path, phase: str = "eval") -> list[tuple[int, float]]:
    """O's score against training games played.

    ``phase="eval"``: (training games before the evaluation, mean score of its games);
    ``phase="train"``: (training game number from 1, that game's score).
    """
    games = load_games(run_dir)
    if phase == "eval":
        return [(e["after_training_games"], e["O_score"]) for e in evaluations(games)]
    if phase == "train":
        train = sorted((g for g in games if g.get("phase") == "train"), key=lambda g: int(g["epoch"]))
        return [(int(g["epoch"]) + 1, O_SCORE[g["winner"]]) for g in train]
    raise ValueError(f"phase must be 'eval' or 'train', not {phase!r}")
