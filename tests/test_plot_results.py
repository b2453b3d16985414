"""scripts/plot_results.py on a Tic-Tac-Toe run: O's score against training games."""

import importlib.util
import sys
from pathlib import Path

import pytest

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


def test_the_tictactoe_paper_figure_draws_ours_beside_the_original_runs(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rafa_core.tictactoe import paper

    out = tmp_path / "ttt"
    assert tictactoe_main(["--X", "oracle:0.3", "--O", "oracle", "--O_MPC", "2", "--depth", "1",
                           "--num_train_epochs", "6", "--verbose", "0", "--no-cache", "--out", str(out)]) == 0
    assert paper.recognise(out) and not paper.recognise(tmp_path)
    raw = [y for _, y in paper.episode_scores(out)]
    assert len(raw) == 6  # the evaluation before training is not drawn
    curve = paper.paper_curve(out)
    assert [x for x, _ in curve] == list(range(6))  # episode e: after training game e+1
    assert curve[5][1] == pytest.approx(sum(raw[1:6]) / 5)  # the causal running mean of 5
    # The original's plotted numbers (faithfulness audit, section 2).
    assert [round(y, 2) for _, y in paper.original_curve("GPT-4, B=4")] == [
        -0.80, -0.20, -0.20, -0.40, -0.44, -0.28, -0.16, 0.08, 0.44, 0.68, 0.72, 0.72]
    assert [round(y, 2) for _, y in paper.original_curve("GPT-4, B=3")][-3:] == [-0.30, -0.40, -0.16]

    fig, ax = plt.subplots()
    paper.draw_paper(ax, [(out, "RAFA B=2")])
    labels = [line.get_label() for line in ax.get_lines()]
    assert sum(label.startswith("original ") for label in labels) == 4
    assert "ours: RAFA B=2 [simulated]" in labels
    assert ax.get_title() == "Tic-Tac-Toe (Player O)" and ax.get_ylim()[0] <= -0.8
    plt.close(fig)

    png = tmp_path / "paper.png"
    assert load_plot_results().main([str(out), "--paper", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
