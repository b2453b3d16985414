"""``--max-cost`` through the entry points: a priced model name (``gpt-4``) served by the
loopback server so that cost accrues; the run stops at the cap with exit code 3 (not 0,
not 2), keeps its finished episodes, says ``"stopped": "budget"``, and resumes later."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rafa_core.cli import EXIT_BUDGET, EXIT_OK, EXIT_USER_ERROR
from rafa_core.game24 import cli as game24_cli
from rafa_core.game24.oracle import Game24Oracle
from rafa_testkit.loopback import LoopbackServer
from rafa_core.tictactoe import cli as tictactoe_cli
from rafa_core.tictactoe.oracle import OracleErrors, TicTacToeRules

assert len({EXIT_OK, EXIT_USER_ERROR, EXIT_BUDGET}) == 3


def records(out: Path) -> list[dict[str, Any]]:
    raw = (out / "episodes.jsonl").read_text(encoding="utf-8") if (out / "episodes.jsonl").exists() else ""
    assert raw == "" or raw.endswith("\n")
    return [json.loads(line) for line in raw.splitlines()]


def summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def game24_argv(url: str, out: Path, cap: float) -> list[str]:
    return ["--backend", "gpt-4", "--base-url", url, "--no-cache", "--feedback", "--task_start_index", "900",
            "--task_end_index", "906", "--concurrency", "1", "--max-cost", str(cap), "--out", str(out)]


def test_game24_stops_at_the_cap_keeps_finished_episodes_and_resumes(tmp_path, capsys):
    out, cap = tmp_path / "run", 1.5  # at gpt-4 prices a puzzle costs about $0.5-1
    with LoopbackServer(Game24Oracle(0.3)) as server:
        assert game24_cli.main(game24_argv(server.base_url, out, cap)) == EXIT_BUDGET
        assert "--max-cost" in capsys.readouterr().err
        stopped = summary(out)
        finished = records(out)
        assert stopped["stopped"] == "budget"
        assert 1 <= len(finished) < 6 and stopped["episodes"] == len(finished)
        assert stopped["cost_usd"] >= cap
        assert stopped["per_model"]["gpt-4"]["priced"]
        # At the stop the summary reports all that was spent: the finished episodes and the
        # one cut short (which is not logged, and is played again on resume).
        assert stopped["cost_usd"] > sum(r["usage"]["cost_usd"] for r in finished)
        # The same run with a higher cap resumes: the finished episodes are not played again.
        assert game24_cli.main(game24_argv(server.base_url, out, 100.0)) == EXIT_OK
    done = records(out)
    assert sorted(r["index"] for r in done) == list(range(900, 906))
    assert done[: len(finished)] == finished
    assert summary(out)["stopped"] is None


def test_game24_under_the_cap_finishes_normally(tmp_path):
    with LoopbackServer(Game24Oracle(0.0)) as server:
        argv = game24_argv(server.base_url, tmp_path / "run", 100.0)
        argv[argv.index("--task_end_index") + 1] = "902"
        assert game24_cli.main(argv) == EXIT_OK
    assert summary(tmp_path / "run")["stopped"] is None
    assert summary(tmp_path / "run")["cost_usd"] > 0


def test_a_spent_cap_stops_before_any_call(tmp_path):
    with LoopbackServer(Game24Oracle(0.0)) as server:
        assert game24_cli.main(game24_argv(server.base_url, tmp_path / "run", 0.0)) == EXIT_BUDGET
        assert server.stats.requests == 0
    assert summary(tmp_path / "run")["stopped"] == "budget"
    assert records(tmp_path / "run") == []


def test_tictactoe_stops_at_the_cap_with_exit_code_3(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--X", "gpt-4", "--O", "gpt-4", "--O_MPC", "3", "--num_train_epochs", "3", "--num_eval_epochs", "2",
            "--verbose", "0", "--no-cache", "--max-cost", "0.6", "--out", str(out)]
    with LoopbackServer(TicTacToeRules(OracleErrors.uniform(0.2))) as server:
        assert tictactoe_cli.main([*argv, "--base-url", server.base_url]) == EXIT_BUDGET
    assert "--max-cost" in capsys.readouterr().err
    stopped = summary(out)
    assert stopped["stopped"] == "budget"
    finished = records(out)
    assert 1 <= len(finished) < 2 + 3 * 3 and stopped["episodes"] == len(finished)
    assert stopped["cost_usd"] >= 0.6


def test_blocksworld_stops_at_the_cap_with_exit_code_3(tmp_path, capsys):
    from rafa_core.blocksworld import cli as blocksworld_cli
    from rafa_core.blocksworld.oracle import PriorRule, WorldModelRule

    data = Path(__file__).resolve().parents[1] / "blocksworld" / "data"
    chosen = json.loads((data / "step_4.json").read_text())[:4]
    for item in chosen:
        item["instance"] = str(data / item["instance"])
    (tmp_path / "four.json").write_text(json.dumps(chosen))
    out = tmp_path / "run"
    with LoopbackServer(WorldModelRule(), loglik_rule=PriorRule(informative=False)) as server:
        argv = ["--backend", "gpt-4", "--base-url", server.base_url, "--no-cache", "--data_path",
                str(tmp_path / "four.json"), "--rollouts", "2", "--concurrency", "1", "--max-cost", "2.0",
                "--out", str(out)]
        assert blocksworld_cli.main("rafa", argv) == EXIT_BUDGET
    assert "--max-cost" in capsys.readouterr().err
    stopped = summary(out)
    assert stopped["stopped"] == "budget" and stopped["cost_usd"] >= 2.0
    assert 1 <= stopped["episodes"] == len(records(out)) < 4
