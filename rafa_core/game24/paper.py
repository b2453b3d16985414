"""The paper's Game-of-24 figure for ``scripts/plot_results.py --paper``.

Conventions of the original's figure script (``Game24/get_data.py``, ``plot_results.py``):
an episode counts at x = (environment steps it used) + 3, only if that is <= 20, so the
curve is 0 up to x = 3 and "step 20" means solved within 17 real submissions; axis
"Steps" 0..20, "Success Rate (%)" 0..100, title "Game of 24", no smoothing. Our runs'
``summary.json`` keeps the real steps; the shift is applied here only, and the x label
says so.

The original ships no Game-of-24 logs, so the reference is the paper's figure: the
success rates at step 20 read off it (``../shared/specs/game24.md``), drawn as markers at
x = 20 beside our curves and labelled as read off the paper.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..runinfo import read_json_object
from .improvements import FLAGS

STEP_OFFSET = 3  # the original's figure: x = len(env_info) + 3
X_MAX = 20
# Success rate (%) at step 20, read off the paper's figure (GPT-4, GPT-3.5).
PAPER_AT_20 = {
    "RAFA b=2": (92, 46),
    "RAFA b=1": (88, 29),
    "ToT b=2": (81, 17),
    "ToT b=1": (73, 10),
    "Reflexion": (21, 16),
}


def _read(run_dir: Path, name: str) -> dict[str, Any]:
    return read_json_object(Path(run_dir) / name)


def recognise(run_dir: Path) -> bool:
    """A Game-of-24 run directory with a summary to draw."""
    return _read(run_dir, "config.json").get("task") == "game24" and bool(
        _read(run_dir, "summary.json").get("success_by_step"))


def paper_method(config: dict[str, Any]) -> str | None:
    """Which of the paper's configurations a run is (None if none)."""
    planning, feedback, b = config.get("planning"), bool(config.get("feedback")), config.get("n_select_sample", 1)
    if planning == "tot" and b in (1, 2):
        return f"{'RAFA' if feedback else 'ToT'} b={b}"
    if planning == "naive" and feedback:
        return "Reflexion"
    return None


def paper_curve(success_by_step: dict[str, float]) -> tuple[list[int], list[float]]:
    """x = 0..20 and the success rate (%) at x in the original's convention: solved at
    real step s counts from x = s + 3."""
    last = max((int(k) for k in success_by_step), default=0)
    xs = list(range(X_MAX + 1))
    # After its last step a run's rate stays put (the original's cumulative count).
    rates = [100.0 * float(success_by_step[str(min(x - STEP_OFFSET, last))]) if x > STEP_OFFSET and last else 0.0
             for x in xs]
    return xs, rates


def improvements_of(config: dict[str, Any]) -> str:
    """`` --improved`` / `` --value-cache ...`` for a run with improvements, else ''."""
    if config.get("improved"):
        return " --improved"
    return "".join(f" {flag}" for flag, name, _, _ in FLAGS if config.get(name))


def draw_paper(ax, runs: list[tuple[Path, str]]) -> None:
    drawn: set[str] = set()
    for run_dir, label in runs:
        summary, config = _read(run_dir, "summary.json"), _read(run_dir, "config.json")
        xs, rates = paper_curve(summary.get("success_by_step", {}))
        simulated = " [simulated]" if summary.get("simulated") else ""
        name = f"ours: {label}{improvements_of(config)} (n={summary.get('episodes', 0)}){simulated}"
        line = ax.plot(xs, rates, linewidth=2, label=name)[0]
        method = paper_method(config)
        if method and method not in drawn:
            drawn.add(method)
            gpt4, gpt35 = PAPER_AT_20[method]
            first = len(drawn) == 1  # one legend entry per marker kind; colour = the run's
            ax.plot([X_MAX], [gpt4], marker="*", markersize=13, linestyle="none", color=line.get_color(),
                    label="paper at step 20, GPT-4 (read off its figure)" if first else "_nolegend_")
            ax.plot([X_MAX], [gpt35], marker="o", markersize=8, linestyle="none", markerfacecolor="none",
                    color=line.get_color(), label="paper at step 20, GPT-3.5 (read off its figure)" if first else "_nolegend_")
            ax.annotate(method, (X_MAX, gpt4), xytext=(-8, 0), textcoords="offset points", ha="right",
                        va="center", fontsize=7, color=line.get_color())
    ax.set_title("Game of 24")
    ax.set_xticks(range(0, X_MAX + 1, 2))
    ax.set_xlabel(f"Steps (original's convention: environment steps + {STEP_OFFSET})")
    ax.set_ylabel("Success Rate (%)")
    ax.set_xlim(0, X_MAX + 0.5)
    ax.set_ylim(0, 100)
