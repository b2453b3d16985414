"""The paper's Tic-Tac-Toe figure: O's score per episode, ours beside the original's runs.

The original's figure (its ``plot/get_data.py`` and ``plot/plot_results.py``) plots, for each
training epoch e = 0..11, the mean of O's score (+1 win, 0 tie, -1 loss) over the
evaluation games played after training game e+1, smoothed by a causal running mean of 5
(the first points average what exists so far), against x = e ("Episode"), titled
"Tic-Tac-Toe (Player O)", y from -0.6 to 1.1.  The evaluation before training is not drawn.

The original's four shipped runs (10 evaluation games each, ``output/`` of the original
repository, tabulated in the project's faithfulness audit) are drawn beside ours, dashed and
labelled "original"; the figure shows GPT-4 B=3 and B=4, the GPT-3.5 runs were shipped too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..runinfo import read_json_object

from .results import evaluations, load_games

SMOOTHING = 5  # the original's running-mean window
PAPER_EPOCHS = 12  # the original's plot reads epochs 0..11
TITLE = "Tic-Tac-Toe (Player O)"
Y_RANGE = (-0.6, 1.1)
X_RANGE = (0, 20)
OUR_COLORS = ("tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "black")

# O's raw score per epoch 0..11 in the original's shipped logs (10 evaluation games each).
ORIGINAL_RUNS: dict[str, tuple[float, ...]] = {
    "GPT-4, B=3": (-0.6, 0.6, -0.4, -0.3, 0.2, -0.1, -1.0, 0.8, -1.0, -0.2, -0.6, 0.2),
    "GPT-4, B=4": (-0.8, 0.4, -0.2, -1.0, -0.6, 0.0, 1.0, 1.0, 0.8, 0.6, 0.2, 1.0),
    "GPT-3.5-16k, B=3": (0.4, 1.0, 1.0, 1.0, 1.0, 0.9, 1.0, -1.0, 1.0, 0.8, 1.0, 0.8),
    "GPT-3.5-16k, B=4": (0.7, 0.2, -1.0, 0.0, 1.0, 1.0, 0.8, -1.0, -0.9, 0.9, 1.0, 1.0),
}


def running_mean(values: Sequence[float], window: int = SMOOTHING) -> list[float]:
    """The original's causal smoothing: the mean of the last ``window`` values so far."""
    out = []
    for i in range(len(values)):
        recent = values[max(0, i - window + 1) : i + 1]
        out.append(sum(recent) / len(recent))
    return out


def recognise(run_dir: Path) -> bool:
    """A Tic-Tac-Toe run directory (its config names the O player's breadth)."""
    config = read_json_object(Path(run_dir) / "config.json")
    return config.get("benchmark") == "tictactoe" or "O_MPC" in config


def episode_scores(run_dir: Path) -> list[tuple[int, float]]:
    """(episode e, O's raw score in the evaluation after training game e+1), as the paper's x."""
    return [
        (e["after_training_games"] - 1, e["O_score"])
        for e in evaluations(load_games(run_dir))
        if e["after_training_games"] >= 1
    ]


def paper_curve(run_dir: Path) -> list[tuple[int, float]]:
    """The run's points of the paper's figure: episode, smoothed score."""
    points = episode_scores(run_dir)
    return list(zip([x for x, _ in points], running_mean([y for _, y in points])))


def original_curve(name: str) -> list[tuple[int, float]]:
    raw = ORIGINAL_RUNS[name]
    return list(zip(range(len(raw)), running_mean(raw)))


def _original_style(name: str) -> dict[str, Any]:
    color = "tab:blue" if name.endswith("B=3") else "tab:orange"
    return {"color": color, "linestyle": "--" if name.startswith("GPT-4") else ":", "linewidth": 1.6, "alpha": 0.75}


def draw_paper(ax, runs: list[tuple[Path, str]]) -> None:
    """Ours (solid, with markers) and the original's four runs (dashed/dotted, labelled)."""
    from matplotlib.ticker import MaxNLocator

    lowest, last_x = Y_RANGE[0], X_RANGE[1]
    for name in ORIGINAL_RUNS:
        curve = original_curve(name)
        ax.plot([x for x, _ in curve], [y for _, y in curve], label=f"original {name}", **_original_style(name))
        lowest = min(lowest, *(y for _, y in curve))
    for i, (run_dir, label) in enumerate(runs):
        curve = paper_curve(run_dir)
        if not curve:
            continue
        simulated = " [simulated]" if read_json_object(Path(run_dir) / "summary.json").get("simulated") else ""
        ax.plot([x for x, _ in curve], [y for _, y in curve], marker="o", markersize=4, linewidth=2.4,
                color=OUR_COLORS[i % len(OUR_COLORS)], label=f"ours: {label}{simulated}")
        lowest = min(lowest, *(y for _, y in curve))
        last_x = max(last_x, curve[-1][0])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(TITLE)
    ax.set_xlabel(f"Episode (evaluation after training game episode+1; running mean of {SMOOTHING})")
    ax.set_ylabel("Score (O: +1 win, 0 tie, -1 loss)")
    # The paper's y range, widened only if a curve would be cut (the original's GPT-4 B=4 starts at -0.8).
    ax.set_ylim(min(Y_RANGE[0], lowest - 0.05), Y_RANGE[1])
    ax.set_xlim(X_RANGE[0], last_x)
