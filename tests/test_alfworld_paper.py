"""The paper's ALFWorld figure: cumulative solved per trial, ours beside the original's."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from rafa_core.alfworld import paper

REPO = Path(__file__).resolve().parents[1]


def fake_run(path: Path, by_trial: list[int], games: int) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"alfworld_config": {}, "backend": "oracle"}))
    (path / "summary.json").write_text(json.dumps({"successes_by_trial": by_trial, "episodes": games,
                                                   "successes": by_trial[-1], "simulated": True}))
    return path


def test_recognises_alfworld_runs_only(tmp_path):
    run = fake_run(tmp_path / "alf", [7, 12], 12)
    assert paper.recognise(run)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"backend": "oracle"}))
    (other / "summary.json").write_text("{}")
    assert not paper.recognise(other) and not paper.recognise(tmp_path / "missing")


def test_the_original_curve_is_the_shipped_run():
    assert paper.ORIGINAL_SOLVED[:8] == (80, 112, 127, 129, 130, 130, 132, 133) and paper.ORIGINAL_GAMES == 134


def test_paper_figure_draws_ours_beside_the_original(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    default = fake_run(tmp_path / "default", [6, 9, 12], 12)
    improved = fake_run(tmp_path / "improved", [8, 12, 12], 12)
    fig, ax = plt.subplots()
    paper.draw_paper(ax, [(default, "ours (default)"), (improved, "ours (--improved)")])
    lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    original = next(v for k, v in lines.items() if k.startswith("original RAFA"))
    assert original[0] == pytest.approx(80 / 134) and original[7] == pytest.approx(133 / 134)
    assert lines["ours (default) [SIMULATED]: 12/12"] == [0.5, 0.75, 1.0]
    assert "ours (--improved) [SIMULATED]: 12/12" in lines
    assert ax.get_xlabel() == "trial"
    plt.close(fig)

    spec = importlib.util.spec_from_file_location("plot_results", REPO / "scripts" / "plot_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["plot_results"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    out = tmp_path / "paper.png"
    assert module.main([str(default), str(improved), "--paper", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
