"""``python -m rafa_core compare RUN_DIR...``: one table across runs.

Per row: the method (by its paper name), the runs it holds, success rate, success within
``--k`` steps (trials for ALFWorld), LLM calls, tokens and cost per run. Runs whose
configurations differ only by ``--seed`` (and by flags that do not change what is
computed) are one row: the mean and its 95% confidence interval (Student's t).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from .runinfo import backend_of, benchmark_of, method_of, read_json, read_jsonl, steps_unit
from .runner import RUNTIME_KEYS

# Flags that never change what a run computes, besides the runtime ones (seed is what we aggregate over).
IGNORED_KEYS = RUNTIME_KEYS | {"seed", "out", "run_name", "code", "earlier_code", "versions", "argv", "llm", "launch"}
# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (then the normal's 1.96).
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (0 for a single value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    df = len(values) - 1
    t = T95[df - 1] if df <= len(T95) else 1.96
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def experiment_key(config: dict[str, Any]) -> str:
    """The configuration without the seed and the flags that do not change results."""
    kept = {k: v for k, v in config.items() if k not in IGNORED_KEYS}
    return repr(sorted((k, repr(v)) for k, v in kept.items()))


def run_row(run_dir: Path, k: int) -> dict[str, Any] | None:
    summary = read_json(run_dir / "summary.json")
    if not isinstance(summary, dict):
        return None
    config = read_json(run_dir / "config.json", {})
    records = read_jsonl(run_dir / "episodes.jsonl")[:1]
    benchmark = benchmark_of(config, records)
    by_step = summary.get("success_by_step") or {}
    within = by_step.get(str(min(k, len(by_step)))) if by_step else None
    return {
        "dir": run_dir, "key": experiment_key(config), "benchmark": benchmark,
        "method": method_of(config, benchmark), "backend": backend_of(config), "simulated": summary.get("simulated"),
        "unit": steps_unit(summary), "k": min(k, len(by_step)) if by_step else None,
        "success": summary.get("success_rate", 0.0), "within": within, "episodes": summary.get("episodes", 0),
        "calls": summary.get("llm_calls", 0), "tokens": summary.get("prompt_tokens", 0) + summary.get("completion_tokens", 0),
        "cost": summary.get("cost_usd", 0.0), "unpriced": summary.get("unpriced_models") or [],
    }


def group(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["key"], []).append(row)
    return list(groups.values())


def fmt(values: list[float], percent: bool = False, money: bool = False) -> str:
    mean, half = mean_ci(values)
    scale = 100.0 if percent else 1.0
    if money:
        body = f"${mean:.4f}" + (f" ± {half:.4f}" if len(values) > 1 else "")
    elif percent:
        body = f"{mean * scale:.1f}%" + (f" ± {half * scale:.1f}" if len(values) > 1 else "")
    else:
        body = f"{mean:,.0f}" + (f" ± {half:,.0f}" if len(values) > 1 else "")
    return body


def table_rows(groups: list[list[dict[str, Any]]]) -> list[list[str]]:
    out = []
    for runs in groups:
        first = runs[0]
        within = [r["within"] for r in runs if r["within"] is not None]
        unit = "trials" if first["unit"] == "trials" else "steps"
        unpriced = sorted({m for r in runs for m in r["unpriced"]})
        out.append([
            f"{first['benchmark']}: {first['method']}", first["backend"] + (" [simulated]" if first["simulated"] else ""),
            str(len(runs)) if len(runs) > 1 else first["dir"].name, fmt([r["success"] for r in runs], percent=True),
            (fmt(within, percent=True) + f" (k={first['k']} {unit})") if within else "-",
            fmt([r["calls"] for r in runs]), fmt([r["tokens"] for r in runs]),
            fmt([r["cost"] for r in runs], money=True) + (f" (unpriced: {', '.join(unpriced)})" if unpriced else ""),
        ])
    return out


def render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rafa_core compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories (each with summary.json)")
    parser.add_argument("--k", type=int, default=5, help="success within k steps (trials for ALFWorld); default 5")
    args = parser.parse_args(argv)
    rows = []
    for run_dir in args.run_dirs:
        row = run_row(run_dir, args.k)
        if row is None:
            print(f"error: {run_dir} has no summary.json (not a finished run directory)", file=sys.stderr)
            return 2
        rows.append(row)
    header = ["method", "backend", "runs", "success", "success within k", "LLM calls", "tokens", "cost"]
    print(render(header, table_rows(group(rows))))
    if any(len(g) > 1 for g in group(rows)):
        print("runs that differ only by --seed are one row: mean ± 95% confidence interval (Student's t)")
    return 0
