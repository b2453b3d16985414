#!/usr/bin/env python3
"""Plot results of several run directories, one line each, the way the paper does.

    python scripts/plot_results.py runs/game24/*          # writes runs/game24/results.png
    python scripts/plot_results.py RUN_DIR... -o game24.png

Each run directory is drawn by the first plot kind that recognises it (see ``PLOT_KINDS``);
runs of different kinds go to side-by-side panels of one figure. The kinds:

- ``tictactoe_score``: O's score (+1 win, 0 tie, -1 loss) against training games, for each
  evaluation (line) and each training game (dots), as the paper's Tic-Tac-Toe figure;
- ``success_by_step``: success rate against environment steps (Game of 24, BlocksWorld,
  ALFWorld trials; from ``summary.json``'s ``success_by_step``).

To add a kind, write ``recognise(run_dir) -> bool`` and ``draw(ax, run_dir, label)`` and
put a ``PlotKind`` in ``PLOT_KINDS`` (the first that recognises a run draws it).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # rafa_core from a clone

from rafa_core.cli import ArgumentParser  # noqa: E402


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_config(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# -- kind: success rate against environment steps ------------------------------------------------
def has_success_by_step(run_dir: Path) -> bool:
    summary = read_summary(run_dir)
    return bool(summary and summary.get("success_by_step"))


def draw_success_by_step(ax, run_dir: Path, label: str) -> None:
    summary = read_summary(run_dir) or {}
    by_step = summary["success_by_step"]
    steps = sorted(int(k) for k in by_step)
    rates = [100.0 * by_step[str(k)] for k in steps]
    episodes = summary.get("episodes", 0)
    simulated = " [simulated]" if summary.get("simulated") else ""
    ax.plot(steps, rates, marker="o", markersize=3, label=f"{label} (n={episodes}){simulated}")


def finish_success_by_step(ax, run_dirs: list[Path]) -> None:
    """Axes over every run of the panel: the longest run sets the x-range, not the last drawn."""
    from rafa_core.runinfo import steps_unit

    summaries = [read_summary(d) or {} for d in run_dirs]
    longest = max((max((int(k) for k in s.get("success_by_step") or {}), default=1) for s in summaries), default=1)
    units = {steps_unit(s) for s in summaries}
    ax.set_xlabel(units.pop() if len(units) == 1 else "environment steps (trials for ALFWorld)")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(1, max(longest, 2))
    integer_ticks(ax.xaxis)


def integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


# -- kind: Tic-Tac-Toe score against training games ---------------------------------------------
def is_tictactoe_run(run_dir: Path) -> bool:
    return "O_MPC" in read_config(run_dir)


def draw_tictactoe_score(ax, run_dir: Path, label: str) -> None:
    from rafa_core.tictactoe.results import score_curve

    evals = score_curve(run_dir, "eval")
    train = score_curve(run_dir, "train")
    simulated = " [simulated]" if (read_summary(run_dir) or {}).get("simulated") else ""
    line = ax.plot([x for x, _ in evals], [y for _, y in evals], marker="o", label=f"{label}{simulated}")[0]
    if train:
        ax.scatter([x for x, _ in train], [y for _, y in train], s=12, alpha=0.4, color=line.get_color())


def finish_tictactoe_score(ax, run_dirs: list[Path]) -> None:
    ax.set_xlabel("training games")
    ax.set_ylabel("O score (+1 win, 0 tie, -1 loss)")
    ax.set_ylim(-1.05, 1.05)
    integer_ticks(ax.xaxis)


@dataclass(frozen=True)
class PlotKind:
    name: str
    title: str
    recognise: Callable[[Path], bool]
    draw: Callable[[Any, Path, str], None]
    finish: Callable[[Any, list[Path]], None]


PLOT_KINDS: tuple[PlotKind, ...] = (
    PlotKind("tictactoe_score", "Tic-Tac-Toe: O's score vs training games", is_tictactoe_run, draw_tictactoe_score,
             finish_tictactoe_score),
    PlotKind("success_by_step", "Success rate vs steps", has_success_by_step, draw_success_by_step,
             finish_success_by_step),
)


def default_label(run_dir: Path) -> str:
    """The method's name as the paper says it, with what tells runs of one method apart."""
    from rafa_core.runinfo import backend_of, benchmark_of, method_of

    config = read_config(run_dir)
    if not config:
        return run_dir.name
    benchmark = benchmark_of(config)
    if benchmark == "Tic-Tac-Toe":
        return f"{method_of(config, benchmark)} ({backend_of(config)})"
    return f"{method_of(config, benchmark)}, {backend_of(config)}"


def default_out(run_dirs: list[Path]) -> Path:
    """Next to the runs: the run directory for one run, else the runs' common parent."""
    if len(run_dirs) == 1:
        return run_dirs[0] / "results.png"
    return Path(os.path.commonpath([str(d.resolve()) for d in run_dirs])) / "results.png"


def kind_of(run_dir: Path) -> PlotKind | None:
    return next((kind for kind in PLOT_KINDS if kind.recognise(run_dir)), None)


def plot(run_dirs: list[Path], out: Path, labels: list[str] | None = None, title: str | None = None) -> Path:
    import matplotlib.pyplot as plt

    fig = figure(run_dirs, labels, title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def figure(run_dirs: list[Path], labels: list[str] | None = None, title: str | None = None):
    """The figure: one panel per plot kind, every run of that kind in it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped: dict[str, list[tuple[Path, str]]] = {}
    for i, run_dir in enumerate(run_dirs):
        kind = kind_of(run_dir)
        if kind is None:
            print(f"error: {run_dir} has no results this script can plot (no summary.json?)", file=sys.stderr)
            raise SystemExit(2)
        label = labels[i] if labels and i < len(labels) else default_label(run_dir)
        grouped.setdefault(kind.name, []).append((run_dir, label))
    kinds = [k for k in PLOT_KINDS if k.name in grouped]
    fig, axes = plt.subplots(1, len(kinds), figsize=(6.4 * len(kinds), 4.4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for run_dir, label in grouped[kind.name]:
            kind.draw(ax, run_dir, label)
        kind.finish(ax, [run_dir for run_dir, _ in grouped[kind.name]])
        ax.set_title(title or kind.title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# -- --paper: each benchmark draws its own paper figure ------------------------------------------
# A benchmark package ``rafa_core/<name>/paper.py`` provides
#   recognise(run_dir: Path) -> bool       (is this run one of mine?)
#   draw_paper(ax, runs: list[tuple[Path, str]]) -> None   (ours and the original's reference, labelled)
PAPER_BENCHMARKS = ("tictactoe", "game24", "blocksworld", "alfworld")


def paper_module_of(run_dir: Path):
    import importlib

    for name in PAPER_BENCHMARKS:
        try:
            module = importlib.import_module(f"rafa_core.{name}.paper")
        except ModuleNotFoundError:
            continue
        if module.recognise(run_dir):
            return module
    return None


def plot_paper(run_dirs: list[Path], out: Path, labels: list[str] | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped: dict[Any, list[tuple[Path, str]]] = {}
    for i, run_dir in enumerate(run_dirs):
        module = paper_module_of(run_dir)
        if module is None:
            print(f"error: {run_dir} is not a run with a paper figure (no summary.json, or an unknown benchmark)",
                  file=sys.stderr)
            raise SystemExit(2)
        label = labels[i] if labels and i < len(labels) else default_label(run_dir)
        grouped.setdefault(module, []).append((run_dir, label))
    fig, axes = plt.subplots(1, len(grouped), figsize=(6.4 * len(grouped), 4.6), squeeze=False)
    for ax, (module, runs) in zip(axes[0], grouped.items()):
        module.draw_paper(ax, runs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories (each with summary.json)")
    parser.add_argument("-o", "--out", type=Path, default=None,
                        help="the PNG to write (default: results.png next to the runs)")
    parser.add_argument("--labels", nargs="*", default=None, help="one legend label per run directory")
    parser.add_argument("--title", default=None)
    parser.add_argument("--paper", action="store_true",
                        help="draw the benchmark's figure in the paper's conventions, with the original's numbers beside ours")
    args = parser.parse_args(argv)
    args.out = args.out or default_out(args.run_dirs)
    if args.paper:
        written = plot_paper(args.run_dirs, args.out, args.labels)
    else:
        written = plot(args.run_dirs, args.out, args.labels, args.title)
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
