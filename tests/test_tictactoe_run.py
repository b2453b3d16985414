"""The entry point end to end on simulated backends: layout, summary, resume, bad flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rafa_core.llm.base import BackendError
from rafa_core.tictactoe import benchmark
from rafa_core.tictactoe.cli import main
from rafa_core.tictactoe.results import score_curve

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--X", "oracle:0.5", "--O", "oracle", "--O_MPC", "2", "--depth", "2",
         "--num_train_epochs", "3", "--num_eval_epochs", "2", "--verbose", "0", "--no-cache"]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_writes_the_layout_and_summary(tmp_path):
    out = tmp_path / "run"
    assert main(FLAGS + ["--out", str(out)]) == 0
    for name in ("config.json", "episodes.jsonl", "summary.json", "eval.json"):
        assert (out / name).is_file(), name
    for epoch in range(3):
        folder = out / str(epoch)
        for name in ("train.json", "X_memory.json", "O_memory.json", "eval.json"):
            assert (folder / name).is_file(), f"{epoch}/{name}"
        assert len(json.loads((folder / "train.json").read_text())) == epoch + 1
        evaluation = json.loads((folder / "eval.json").read_text())
        assert len(evaluation["winners"]) == 2 and len(evaluation["games"]) == 2
        assert evaluation["games"][0]["transcript"]
        assert json.loads((folder / "O_memory.json").read_text())["kind"] == "rafa"
    episodes = lines(out / "episodes.jsonl")
    assert len(episodes) == 2 + 3 * (1 + 2)
    summary = json.loads((out / "summary.json").read_text())
    for key in ("episodes", "successes", "success_rate", "llm_calls", "prompt_tokens", "completion_tokens",
                "cost_usd", "cache_hits", "wall_s", "success_by_step"):
        assert key in summary, key
    assert summary["episodes"] == len(episodes) and summary["simulated"] is True
    evaluations = summary["evaluations"]
    assert [e["after_training_games"] for e in evaluations] == [0, 1, 2, 3]
    for e in evaluations:
        assert e["O_win_rate"] + e["tie_rate"] + e["O_loss_rate"] == pytest.approx(1.0)
        assert e["O_loss_rate"] == 0.0  # exact models do not lose to a noisy X
    assert score_curve(out) == [(e["after_training_games"], e["O_score"]) for e in evaluations]
    train_curve = score_curve(out, phase="train")
    assert [x for x, _ in train_curve] == [1, 2, 3] and all(y in (0.0, 1.0) for _, y in train_curve)


def test_run_resumes_from_what_is_on_disk(tmp_path):
    out = tmp_path / "run"
    assert main(FLAGS + ["--out", str(out)]) == 0
    complete = lines(out / "episodes.jsonl")
    # As if killed during the second training epoch's evaluation, mid-write.
    keep = [r for r in complete if r["index"] not in ("eval-1-g1", "train-2", "eval-2-g0", "eval-2-g1")]
    text = "".join(json.dumps(r) + "\n" for r in keep) + '{"index": "eval-1-g1", "tor'
    (out / "episodes.jsonl").write_text(text)
    assert main(FLAGS + ["--out", str(out)]) == 0
    resumed = lines(out / "episodes.jsonl")
    assert sorted(r["index"] for r in resumed) == sorted(r["index"] for r in complete)
    by_index = {r["index"]: r for r in resumed}
    assert by_index["train-2"]["moves"] == {r["index"]: r for r in complete}["train-2"]["moves"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == len(complete)
    # A finished run restarted plays nothing more.
    assert main(FLAGS + ["--out", str(out)]) == 0
    assert len(lines(out / "episodes.jsonl")) == len(complete)
    # More training epochs continue it from the saved players.
    more = [f if f != "3" else "4" for f in FLAGS]
    assert main(more + ["--out", str(out)]) == 0
    extended = lines(out / "episodes.jsonl")
    assert len(extended) == len(complete) + 3 and extended[-3]["index"] == "train-3"
    assert len(json.loads((out / "summary.json").read_text())["evaluations"]) == 5


def test_a_run_with_other_flags_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(FLAGS + ["--out", str(out)]) == 0
    assert main(FLAGS + ["--out", str(out), "--temperature", "0.7"]) == 2
    assert "different config" in capsys.readouterr().err


def test_the_default_directory_is_named_after_the_players(tmp_path):
    flags = ["--X", "oracle", "--O", "oracle:0.1", "--O_MPC", "3", "--depth", "1",
             "--num_train_epochs", "0", "--verbose", "0", "--no-cache"]
    result = subprocess.run([sys.executable, str(ROOT / "tictactoe" / "run.py"), *flags],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "X: oracle [SIMULATED] (chosen with a flag)"
    assert (tmp_path / "runs" / "tictactoe" / "Base_oracle_vs_MPC3_oracle-0.1_temp0.2" / "summary.json").is_file()


@pytest.mark.parametrize("flags", [["--X", "oracle:2"], ["--O", "nonsense model!"], ["--num_eval_epochs", "0"]])
def test_bad_flags_give_one_line_and_exit_2(tmp_path, flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        code = main(flags + ["--out", str(tmp_path / "r"), "--verbose", "0", "--no-cache"])
        raise SystemExit(code)
    assert exit_info.value.code == 2


def test_a_failing_backend_is_one_line_and_exit_2(tmp_path, capsys):
    replay = tmp_path / "empty.jsonl"
    replay.write_text("")  # a valid replay file that answers nothing
    flags = ["--X", f"replay:{replay}", "--O", "oracle", "--verbose", "0", "--no-cache", "--out", str(tmp_path / "r")]
    assert main(flags) == 2
    assert "the model backend failed" in capsys.readouterr().err


def calls_by_game(out: Path) -> dict[str, int]:
    return {r["index"]: r["usage"]["llm_calls"] for r in lines(out / "episodes.jsonl")}


NOISY = ["--X", "oracle:0.3", "--O", "oracle:0.3", "--O_MPC", "2", "--depth", "2",
         "--num_eval_epochs", "3", "--verbose", "0", "--no-cache"]


def test_games_at_any_concurrency_make_the_same_calls(tmp_path):
    runs = {}
    for n in (1, 4):
        out = tmp_path / f"c{n}"
        assert main(NOISY + ["--num_train_epochs", "2", "--concurrency", str(n), "--out", str(out)]) == 0
        runs[n] = out
    assert calls_by_game(runs[1]) == calls_by_game(runs[4])
    moves = [{r["index"]: r["moves"] for r in lines(out / "episodes.jsonl")} for out in runs.values()]
    assert moves[0] == moves[1]


def test_a_resumed_run_asks_no_more_than_an_uninterrupted_one(tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    assert main(NOISY + ["--num_train_epochs", "3", "--out", str(whole)]) == 0
    expected = calls_by_game(whole)
    assert sum(expected[i] for i in expected if i.startswith("eval-1")) > 0

    # Interrupted in the middle of an evaluation (the backend fails as game 10 starts), then resumed.
    real_play_game, started = benchmark.play_game, []

    async def failing_play_game(*args, **kwargs):
        started.append(1)
        if len(started) == 10:
            raise BackendError("simulated outage")
        return await real_play_game(*args, **kwargs)

    resumed = tmp_path / "resumed"
    monkeypatch.setattr(benchmark, "play_game", failing_play_game)
    assert main(NOISY + ["--num_train_epochs", "3", "--out", str(resumed)]) == 2
    assert len(lines(resumed / "episodes.jsonl")) == 9
    monkeypatch.setattr(benchmark, "play_game", real_play_game)
    assert main(NOISY + ["--num_train_epochs", "3", "--out", str(resumed)]) == 0
    assert calls_by_game(resumed) == expected

    # Extending a finished run with more training epochs: the same calls as running them at once.
    extended = tmp_path / "extended"
    assert main(NOISY + ["--num_train_epochs", "1", "--out", str(extended)]) == 0
    assert main(NOISY + ["--num_train_epochs", "3", "--out", str(extended)]) == 0
    assert calls_by_game(extended) == expected


def test_the_original_behaviour_is_the_default_and_improved_turns_on_every_change(tmp_path):
    flags = ["--X", "oracle:0.3", "--O", "oracle:0.3", "--O_MPC", "2", "--depth", "1",
             "--num_train_epochs", "1", "--verbose", "0", "--no-cache"]
    assert main(flags + ["--out", str(tmp_path / "default")]) == 0
    assert main(flags + ["--improved", "--out", str(tmp_path / "improved")]) == 0
    assert main(flags + ["--improved", "--tie_break", "highest", "--no-improvement_plan", "--max_examples", "all",
                         "--out", str(tmp_path / "mixed")]) == 0
    settings = ("improvement_plan", "tie_break", "learn_availability", "max_examples")
    configs = {name: json.loads((tmp_path / name / "config.json").read_text()) for name in ("default", "improved", "mixed")}
    assert [configs["default"][k] for k in settings] == [False, "highest", False, "all"]
    assert [configs["improved"][k] for k in settings] == [True, "first", True, 16]
    assert [configs["mixed"][k] for k in settings] == [False, "highest", True, "all"]
    plans = {name: json.loads((tmp_path / name / "0" / "O_memory.json").read_text())["plan"] for name in configs}
    assert plans["default"] == "" and plans["improved"] and plans["mixed"] == ""


def test_the_original_readme_command_runs_from_the_benchmark_folder(tmp_path):
    # The original README: cd Tic-Tac-Toe; python run.py --X gpt-4 --O gpt-4 --O_MPC 3
    # --num_train_epochs 12 --num_eval_epochs 10 (here simulated backends, fewer games).
    flags = ["--X", "oracle:0.3", "--O", "oracle:0.3", "--O_MPC", "3", "--num_train_epochs", "1",
             "--num_eval_epochs", "2", "--bd_api", "--no-cache", "--out", str(tmp_path / "run")]
    result = subprocess.run([sys.executable, "run.py", *flags], cwd=ROOT / "tictactoe",
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "O score by evaluation:" in result.stdout
    assert (tmp_path / "run" / "0" / "eval.json").is_file()
