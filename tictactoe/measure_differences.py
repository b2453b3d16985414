"""Measure each improvement over the original against the default, on simulated players.

    python tictactoe/measure_differences.py --seeds 0 1 2 --out /tmp/ttt-diff

Runs the original's experiment shape (base X vs RAFA O, B=3, 12 training games, 10
evaluation games after each) with the noisy oracle for both players, once per setting
(the default = the original's behaviour, each improvement flag alone, ``--improved``) and
seed, and prints O's mean evaluation score, the paper's last plotted point (running mean
of 5 at episode 11), O's win rate, and model calls per game.  The numbers go into
tictactoe/README.md, "Differences from the original".
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rafa_core.tictactoe.cli import main as run_tictactoe  # noqa: E402
from rafa_core.tictactoe.paper import paper_curve  # noqa: E402

SETTINGS = {
    "default (original)": [],
    "T1 --improvement_plan": ["--improvement_plan"],
    "T2 --tie_break first": ["--tie_break", "first"],
    "T5 --learn_availability": ["--learn_availability"],
    "T7 --max_examples 16": ["--max_examples", "16"],
    "--improved": ["--improved"],
}


def measure(run_dir: Path) -> dict[str, float]:
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    after = [e for e in summary["evaluations"] if e["after_training_games"] >= 1]
    games = summary["episodes"]
    return {
        "score": sum(e["O_score"] for e in after) / len(after),
        "paper_last": paper_curve(run_dir)[-1][1],
        "win": sum(e["O_win_rate"] for e in after) / len(after),
        "calls": summary["llm_calls"] / games,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--noise", default="0.3", help="error rate of the simulated X")
    parser.add_argument("--o_noise", default=None, help="error rate of the simulated O (default: --noise)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("/tmp/ttt-differences"))
    args = parser.parse_args()
    base = ["--X", f"oracle:{args.noise}", "--O", f"oracle:{args.o_noise or args.noise}", "--O_MPC", "3",
            "--num_train_epochs", str(args.epochs), "--num_eval_epochs", "10", "--verbose", "0", "--no-cache"]
    print(f"setting | O score (mean of evaluations 1..{args.epochs}) | paper's last point | O win rate | calls/game")
    for name, flags in SETTINGS.items():
        rows = []
        for seed in args.seeds:
            out = args.out / f"{name.split()[0].strip('-')}-s{seed}"
            if run_tictactoe(base + flags + ["--seed", str(seed), "--out", str(out)]) != 0:
                return 1
            rows.append(measure(out))
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
        per_seed = " ".join(f"{r['score']:+.2f}" for r in rows)
        print(f"{name} | {mean['score']:+.2f} (seeds: {per_seed}) | {mean['paper_last']:+.2f} | "
              f"{mean['win']:.0%} | {mean['calls']:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
