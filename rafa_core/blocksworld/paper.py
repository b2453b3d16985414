"""The paper's BlocksWorld figure (``scripts/plot_results.py --paper RUN_DIR...``).

The paper plots, per set (4-step, 6-step), the success rate against the number of
environment steps; RAFA climbs as its episodes go on, the baselines (RAP with 20 search
iterations, CoT with GPT-4) are flat.  We draw our runs the same way (``success_by_step``
from ``summary.json``) and beside them the original's numbers, read off the paper's figure
at 60 environment steps (Vicuna v1.3; CoT with GPT-4), marked and labelled as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..runinfo import read_json_object

REFERENCE_STEP = 60  # where the paper's numbers are read off
# (set, label) -> success rate (%), read off the paper's figure (blocksworld.md, README).
REFERENCE: dict[int, list[tuple[str, str, float]]] = {
    4: [("rafa", "RAFA Vicuna-13B", 93.0), ("rafa", "RAFA Vicuna-33B", 96.0),
        ("rap", "RAP(20) Vicuna-13B", 69.0), ("rap", "RAP(20) Vicuna-33B", 74.0), ("cot", "CoT GPT-4", 63.0)],
    6: [("rafa", "RAFA Vicuna-13B", 70.0), ("rafa", "RAFA Vicuna-33B", 74.0),
        ("rap", "RAP(20) Vicuna-13B", 20.0), ("cot", "CoT GPT-4", 40.0)],
}
# The original's numbers in muted colours, so ours (the default colour cycle) stand out.
_REFERENCE_STYLE = {
    "RAFA Vicuna-13B": dict(color="black", marker="*"), "RAFA Vicuna-33B": dict(color="dimgray", marker="P"),
    "RAP(20) Vicuna-13B": dict(color="firebrick", linestyle=":"),
    "RAP(20) Vicuna-33B": dict(color="rosybrown", linestyle=":"),
    "CoT GPT-4": dict(color="darkgreen", linestyle="-."),
}


def _read(run_dir: Path, name: str) -> dict[str, Any]:
    return read_json_object(Path(run_dir) / name)


def recognise(run_dir: Path) -> bool:
    """A BlocksWorld run: its config names a RAP/RAFA method with the search's flags."""
    config = _read(run_dir, "config.json")
    return (config.get("method") in {"rap", "rafa"} and "max_depth" in config and "oracle_priors" in config
            and bool(_read(run_dir, "summary.json").get("success_by_step")))


def set_of(run_dir: Path) -> int:
    """4 or 6: the step set, from the data file's name, else from --max_depth."""
    config = _read(run_dir, "config.json")
    stem = Path(str(config.get("data_path") or "")).stem
    for steps in (4, 6):
        if stem.endswith(f"step_{steps}"):
            return steps
    return 6 if int(config.get("max_depth") or 4) >= 6 else 4


def _our_curve(run_dir: Path) -> tuple[list[int], list[float], bool]:
    summary = _read(run_dir, "summary.json")
    by_step = summary.get("success_by_step") or {}
    steps = sorted(int(k) for k in by_step)
    return [0, *steps], [0.0, *(100.0 * by_step[str(k)] for k in steps)], bool(summary.get("simulated"))


def draw_paper(ax, runs: list[tuple[Path, str]]) -> None:
    """Our runs as lines, the original's numbers at 60 steps as labelled markers / dotted lines."""
    sets = sorted({set_of(run_dir) for run_dir, _ in runs})
    curves = [(run_dir, label, *_our_curve(run_dir)) for run_dir, label in runs]
    longest = max([REFERENCE_STEP, *(c[2][-1] for c in curves)]) + 2
    for run_dir, label, steps, rates, simulated in curves:
        method = _read(run_dir, "config.json").get("method", "")
        if method == "rap":  # RAP never acts: its answer stands for any budget, a flat line as in the paper
            steps, rates = [*steps, longest], [*rates, rates[-1]]
        tag = " [simulated]" if simulated else ""
        ax.step(steps, rates, where="post", linewidth=2.2,
                label=f"ours: {method.upper()} {set_of(run_dir)}-step, {label}{tag}")
    for steps in sets:
        for kind, name, rate in REFERENCE[steps]:
            text = f"original (paper, read off at {REFERENCE_STEP} steps): {name}, {steps}-step, {rate:.0f}%"
            style = _REFERENCE_STYLE[name]
            if kind == "rafa":
                ax.scatter([REFERENCE_STEP], [rate], s=110, zorder=3, label=text, **style)
            else:  # the paper's baselines are flat lines
                ax.axhline(rate, linewidth=1.3, label=text, **style)
    which = " and ".join(f"{s}-step" for s in sets)
    ax.set_title(f"BlocksWorld ({which}): success rate vs environment steps")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("success rate (%)")
    ax.set_xlim(0, longest)
    ax.set_ylim(0, 102)
