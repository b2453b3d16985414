"""The paper's ALFWorld figure for ``scripts/plot_results.py --paper``: games solved so far
(cumulative) after each trial, ours beside the original's.

The original's curve is its shipped run (``ALFWorld/run_logs/env_results_trial_<t>.json``,
134 unseen games, 13 trials): 80, 112, 127, 129, 130, 130, 132, 133, then 133 to trial 12.
The paper reports it as a success rate by trial (x = trials, from 0); with fewer games than
134 a run is drawn as a fraction of its games, so the two are comparable.
"""

from __future__ import annotations

from pathlib import Path

from ..runinfo import read_json_object

ORIGINAL_GAMES = 134
ORIGINAL_SOLVED = (80, 112, 127, 129, 130, 130, 132, 133, 133, 133, 133, 133, 133)
ORIGINAL_LABEL = "original RAFA (shipped run_logs, text-davinci-003)"


def recognise(run_dir: Path) -> bool:
    """An ALFWorld run: its config names the ALFWorld data and config, and it has a summary."""
    config = read_json_object(Path(run_dir) / "config.json")
    return "alfworld_config" in config and (Path(run_dir) / "summary.json").is_file()


def solved_by_trial(run_dir: Path) -> tuple[list[int], int, bool]:
    """(cumulative solved after each trial, games, simulated) from the run's summary."""
    summary = read_json_object(Path(run_dir) / "summary.json")
    return list(summary.get("successes_by_trial") or []), int(summary.get("episodes") or 0), bool(summary.get("simulated"))


def draw_paper(ax, runs: list[tuple[Path, str]]) -> None:
    original = [s / ORIGINAL_GAMES for s in ORIGINAL_SOLVED]
    ax.plot(range(len(original)), original, "k--", marker="s", label=f"{ORIGINAL_LABEL}: 133/134")
    for run_dir, label in runs:
        solved, games, simulated = solved_by_trial(run_dir)
        if not solved or not games:
            continue
        rates = [s / games for s in solved]
        tag = " [SIMULATED]" if simulated else ""
        ax.plot(range(len(rates)), rates, marker="o", label=f"{label}{tag}: {solved[-1]}/{games}")
    ax.set_xlabel("trial")
    ax.set_ylabel("success rate (games solved so far)")
    ax.set_ylim(0.0, 1.02)
    ax.set_title("ALFWorld: RAFA's cumulative success by trial")
