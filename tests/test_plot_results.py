"""scripts/plot_results.py on a Tic-Tac-Toe run: O's score against training games."""

import importlib.util
import sys
from pathlib import Path

from rafa_core.tictactoe.cli import main as tictactoe_main
from rafa_core.tictactoe.results import score_curve

ROOT = Path(__file__).resolve().parents[1]


def load_plot_results():
    spec = importlib.util.spec_from_file_location("plot_results", ROOT / "scripts" / "plot_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["plot_results"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_tictactoe_runs_are_drawn_as_score_curves(tmp_path):
    out = tmp_path / "ttt"
    assert tictactoe_main(["--X", "oracle", "--O", "oracle", "--O_MPC", "2", "--num_train_epochs", "2",
                           "--verbose", "0", "--out", str(out)]) == 0
    assert [x for x, _ in score_curve(out, "eval")] == [0, 1, 2]
    plot_results = load_plot_results()
    assert plot_results.kind_of(out).name == "tictactoe_score"
    assert "O RAFA B=2" in plot_results.default_label(out)
    png = tmp_path / "ttt.png"
    assert plot_results.main([str(out), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
