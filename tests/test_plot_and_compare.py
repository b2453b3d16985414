"""scripts/plot_results.py (x-range over all runs, axis units, whole-number ticks, method
names, output next to the runs) and ``python -m rafa_core compare`` (seeds aggregated)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rafa_core.compare import main as compare_main, mean_ci
from rafa_core.game24.cli import main as game24_main
from test_plot_results import load_plot_results

FLAGS = ["--no-cache", "--no-request-log", "--task_start_index", "990", "--task_end_index", "994", "--concurrency", "2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    made = {
        "rafa": ["--backend", "oracle:0.3", "--feedback", "--max_step", "6"],
        "tot": ["--backend", "oracle:0.3", "--max_step", "3"],
        "seed1": ["--backend", "oracle:0.3", "--feedback", "--max_step", "6", "--seed", "1"],
    }
    for name, flags in made.items():
        assert game24_main([*flags, *FLAGS, "--out", str(root / name)]) == 0
    return {name: root / name for name in made}


def test_the_longest_run_sets_the_x_range_whatever_the_order(runs):
    plot_results = load_plot_results()
    fig = plot_results.figure([runs["rafa"], runs["tot"]])  # the short ToT run is drawn last
    ax = fig.axes[0]
    assert ax.get_xlim()[1] == 7  # --max_step 6 allows 7 submissions, as in the original (G2)
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert ax.get_xlabel() == "environment steps"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith("RAFA (b=1), oracle:0.3") and legend[1].startswith("ToT (b=1), oracle:0.3")
    assert not any("feedback" in text or "tot" in text for text in legend)


def test_alfworld_runs_are_drawn_against_trials(tmp_path):
    run = tmp_path / "alf"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"backend": {"backend": "oracle"}, "alfworld_config": {}}))
    (run / "summary.json").write_text(json.dumps({"episodes": 4, "success_by_step": {"1": 0.5, "2": 0.75, "3": 1.0},
                                                  "success_by_step_means": "success rate after k trials"}))
    plot_results = load_plot_results()
    ax = plot_results.figure([run]).axes[0]
    assert ax.get_xlabel() == "trials"
    assert [t.get_text() for t in ax.get_legend().get_texts()][0].startswith("RAFA, oracle")


def test_the_png_goes_next_to_the_runs_unless_o_says_where(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plot_results = load_plot_results()
    assert plot_results.main([str(runs["rafa"]), str(runs["tot"])]) == 0
    assert (runs["rafa"].parent / "results.png").is_file() and not (tmp_path / "results.png").exists()
    assert plot_results.main([str(runs["tot"])]) == 0
    assert (runs["tot"] / "results.png").is_file()
    assert plot_results.main([str(runs["tot"]), "-o", str(tmp_path / "mine.png")]) == 0
    assert (tmp_path / "mine.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_aggregates_seeds_and_keeps_other_configs_apart(runs, capsys):
    assert compare_main([str(runs["rafa"]), str(runs["seed1"]), str(runs["tot"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["method", "backend"]
    rafa = [line for line in lines if line.startswith("Game of 24: RAFA")]
    tot = [line for line in lines if line.startswith("Game of 24: ToT")]
    assert len(rafa) == 1 and len(tot) == 1
    assert " 2 " in rafa[0] and "±" in rafa[0] and "(k=5 steps)" in rafa[0]
    assert "(k=4 steps)" in tot[0] and "±" not in tot[0]  # --max_step 3: 4 submissions (G2)
    assert "95% confidence interval" in lines[-1]


def test_compare_rejects_a_directory_without_a_summary(tmp_path, capsys):
    assert compare_main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error:")


def test_mean_ci_is_students_t():
    assert mean_ci([1.0]) == (1.0, 0.0)
    mean, half = mean_ci([0.0, 1.0])
    assert mean == 0.5 and half == pytest.approx(12.706 * 0.7071067811865476 / 2 ** 0.5)


def test_view_of_a_directory_that_is_not_a_run_is_one_line_and_exit_2(tmp_path, capsys):
    from rafa_core.__main__ import main as rafa_main

    assert rafa_main(["view", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:")
