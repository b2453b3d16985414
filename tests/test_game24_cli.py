"""The entry point: flags, bad input, run directory, resume; one slow run on the embedded model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rafa_core.game24.cli import build_parser, main

from tests.entry_points import read_run, run_script

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "game24" / "run.py"


def run_entry(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_script(RUN, *args, cwd=cwd)


def test_flags_keep_the_original_names_and_defaults():
    args = build_parser().parse_args([])
    assert (args.temperature, args.task, args.task_start_index, args.task_end_index) == (0.7, "game24", 900, 1000)
    assert (args.n_generate_sample, args.n_evaluate_sample, args.n_select_sample) == (10, 1, 1)
    assert (args.planning, args.max_step, args.feedback, args.backend) == ("tot", 20, False, None)
    assert (args.method_generate, args.method_evaluate, args.method_select) == ("propose", "value", "greedy")
    assert args.concurrency == 4 and args.order == "descending"


def test_bad_csv_and_bad_range_are_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("Rank,Numbers\n1,1 2 3 4\n")
    for argv in (["--task_file_path", str(bad)], ["--task_file_path", str(tmp_path / "missing.csv")],
                 ["--task_start_index", "1000", "--task_end_index", "900"], ["--task_end_index", "99999"]):
        code = main(["--backend", "oracle", "--out", str(tmp_path / "run"), "--no-cache", *argv])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error:"), (argv, err)


def test_unknown_flag_values_are_argparse_errors(tmp_path):
    for argv in (["--planning", "mcts"], ["--n_select_sample", "0"], ["--method_select", "best"]):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(argv)
        assert exc.value.code == 2


def test_oracle_run_writes_the_run_directory_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--backend", "oracle:0.2", "--planning", "tot", "--feedback", "--n_evaluate_sample", "3",
            "--task_start_index", "990", "--task_end_index", "1000", "--max_step", "10", "--out", str(out)]
    assert main(argv + ["--task_end_index", "995"]) == 0
    first = capsys.readouterr().out
    assert first.splitlines()[0].startswith("backend: oracle:0.2 [SIMULATED]")
    assert "success <= k" in first
    assert main(argv) == 0
    episodes, summary = read_run(out)
    assert sorted(e["index"] for e in episodes) == list(range(990, 1000))  # resumed: none twice
    assert summary["episodes"] == 10 and summary["simulated"] is True
    # The original's episode allows --max_step + 1 submissions (G2); summary.json counts them all.
    assert list(summary["success_by_step"]) == [str(k) for k in range(1, 12)]
    assert summary["success_by_step"]["11"] == summary["success_rate"]
    record = episodes[0]
    for key in ("index", "puzzle", "success", "env_steps", "solved_at", "reward", "usage", "trace"):
        assert key in record
    assert record["usage"]["llm_calls"] > 0
    step = record["trace"][0]
    assert step["tree"][0]["candidates"] and "feedback" in step["observation"]
    config = json.loads((out / "config.json").read_text())
    assert config["backend"] == "oracle:0.2" and config["llm"]["simulated"] is True
    # Another experiment into the same directory is refused in one line.
    assert main(argv[:-2] + ["--out", str(out), "--max_step", "5"]) == 2


def test_entry_point_runs_from_a_clone(tmp_path):
    result = run_entry("--backend", "oracle", "--task_start_index", "998", "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "backend: oracle [SIMULATED] (chosen with a flag)"
    bad = run_entry("--backend", "oracle", "--task_start_index", "5000", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


@pytest.mark.slow
def test_end_to_end_on_the_embedded_model(tmp_path):
    out = tmp_path / "local"
    result = run_entry("--backend", "local", "--planning", "tot", "--feedback", "--task_start_index", "900",
                       "--task_end_index", "901", "--n_generate_sample", "3", "--max_step", "2",
                       "--short-answers", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    episodes, summary = read_run(out)
    assert len(episodes) == 1 and episodes[0]["index"] == 900
    assert 1 <= episodes[0]["env_steps"] <= 3 and episodes[0]["usage"]["llm_calls"] > 0  # max_step + 1, as the original
    assert summary["episodes"] == 1 and set(summary["success_by_step"]) == {"1", "2", "3"}
    assert summary["completion_tokens"] > 0


def test_plot_results_draws_one_line_per_run(tmp_path, capsys):
    import importlib.util

    runs = []
    for name, extra in (("tot", []), ("rafa", ["--feedback"])):
        out = tmp_path / name
        assert main(["--backend", "oracle:0.3", "--no-cache", "--task_start_index", "995", "--max_step", "5",
                     "--out", str(out), *extra]) == 0
        runs.append(out)
    spec = importlib.util.spec_from_file_location("plot_results", ROOT / "scripts" / "plot_results.py")
    plot_results = importlib.util.module_from_spec(spec)
    sys.modules["plot_results"] = plot_results  # dataclasses look their module up
    spec.loader.exec_module(plot_results)
    assert plot_results.default_label(runs[1]).startswith("RAFA (b=1)")  # the method's name, not its flags
    png = tmp_path / "plot.png"
    assert plot_results.main([*map(str, runs), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    with pytest.raises(SystemExit):
        plot_results.main([str(tmp_path / "empty"), "--out", str(png)])
