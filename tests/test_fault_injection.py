"""Whole runs through a flaky API: each benchmark's entry point, with its oracle answering
behind the loopback OpenAI-compatible server, once clean and once with 20% of the requests
failing (429 with Retry-After, 500, connection resets, hangs past the timeout, truncated
JSON).  Both runs must give exactly the same episodes; the retries stay within their bound.

(``test_loopback_faults.py`` checks the backend request by request; this checks runs.)
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from rafa_core.blocksworld import cli as blocksworld_cli
from rafa_core.blocksworld.oracle import PriorRule, WorldModelRule
from rafa_core.game24 import cli as game24_cli
from rafa_core.game24.oracle import Game24Oracle
from rafa_core.llm import openai_backend
from rafa_testkit.loopback import FAULT_KINDS, FaultPlan, LoopbackServer
from rafa_core.llm.scripted import LoglikRule, Rule
from rafa_core.tictactoe import cli as tictactoe_cli
from rafa_core.tictactoe.oracle import OracleErrors, TicTacToeRules

MAX_RETRIES = 10
FAULTS = FaultPlan(rate=0.2, kinds=FAULT_KINDS, retry_after_s=0.01, hang_s=2.0)
# Per-request timeout: a hang (2 s) is cut at 1 s and retried (1 s, not less: on a busy machine
# a clean answer must never time out, or the clean run's retries would not be 0).
NETWORK_FLAGS = ["--no-cache", "--timeout", "1.0", "--max-retries", str(MAX_RETRIES)]


@pytest.fixture
def openai_backends(monkeypatch) -> list[openai_backend.OpenAILLM]:
    """Every OpenAI backend the entry points build (to read their retry counters), with a
    short backoff so that 20% faults cost the test seconds, not minutes."""
    built: list[openai_backend.OpenAILLM] = []
    original = openai_backend.OpenAILLM.__init__

    def init(self, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **{**kwargs, "backoff_base_s": 0.005, "backoff_max_s": 0.05})
        built.append(self)

    monkeypatch.setattr(openai_backend.OpenAILLM, "__init__", init)
    return built


def episodes_by_index(out: Path) -> dict[str, dict[str, Any]]:
    """Each finished episode (wall-clock time dropped), keyed by index; fails on duplicates."""
    lines = (out / "episodes.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    by_index = {str(r["index"]): {k: v for k, v in r.items() if k != "wall_s"} for r in records}
    assert len(by_index) == len(records), "an episode was logged twice"
    return by_index


def without_wall_clock(path: Path) -> Any:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "wall_s"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(path.read_text(encoding="utf-8")))


def comparable_summary(out: Path) -> dict[str, Any]:
    """The summary without wall-clock time and the backend description (it holds the URL)."""
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return {k: v for k, v in summary.items() if k not in ("wall_s", "players")}


def run_behind_server(
    rule: Rule, run: Callable[[str, Path], None], out: Path, faults: FaultPlan | None, seed: int = 0,
    loglik_rule: LoglikRule | None = None,
) -> dict[str, Any]:
    with LoopbackServer(rule, faults=faults, seed=seed, loglik_rule=loglik_rule) as server:
        run(server.base_url, out)
        stats = server.stats.snapshot()
    assert stats["errors"] == 0, "the server refused a request: the entry point sent something malformed"
    return stats


def assert_same_results_and_bounded_retries(clean: Path, faulty: Path, stats: dict[str, Any],
                                            backends: list[openai_backend.OpenAILLM]) -> None:
    injected = sum(stats["faults"].values())
    assert injected >= 10, f"too few faults to mean anything: {stats}"
    assert all(stats["faults"][kind] > 0 for kind in FAULT_KINDS), stats
    assert episodes_by_index(faulty) == episodes_by_index(clean)
    assert comparable_summary(faulty) == comparable_summary(clean)
    retries = sum(b.retries for b in backends)
    assert retries >= injected  # every injected fault was survived by a retry ...
    assert all(b.stats.max_retries_one_request <= MAX_RETRIES for b in backends)  # ... within the bound
    assert all(b.stats.failures == 0 for b in backends)
    assert stats["requests"] == stats["ok"] + injected


# -- Game of 24 -------------------------------------------------------------------------------
GAME24_RULE = Game24Oracle(error_rate=0.3)  # wrong now and then: the runs take several steps


def game24_run(base_url: str, out: Path) -> None:
    argv = ["--backend", "loopback", "--base-url", base_url, *NETWORK_FLAGS, "--feedback",
            "--task_start_index", "900", "--task_end_index", "904", "--concurrency", "4", "--out", str(out)]
    summary = asyncio.run(game24_cli.amain(argv, progress=False))
    assert summary["episodes"] == 4 and summary["stopped"] is None


def test_game24_run_under_20_percent_faults_matches_the_clean_run(tmp_path, openai_backends):
    run_behind_server(GAME24_RULE, game24_run, tmp_path / "clean", None)
    clean_backends = list(openai_backends)
    assert [b.retries for b in clean_backends] == [0]
    openai_backends.clear()
    stats = run_behind_server(GAME24_RULE, game24_run, tmp_path / "faulty", FAULTS)
    assert_same_results_and_bounded_retries(tmp_path / "clean", tmp_path / "faulty", stats, openai_backends)
    steps = [r["env_steps"] for r in episodes_by_index(tmp_path / "faulty").values()]
    assert max(steps) > 1  # the runs went through feedback and re-planning, not one lucky step


# -- Tic-Tac-Toe ------------------------------------------------------------------------------
TICTACTOE_RULE = TicTacToeRules(OracleErrors.uniform(0.2))


def tictactoe_run(base_url: str, out: Path) -> None:
    argv = ["--X", "loopback", "--O", "loopback", "--base-url", base_url, *NETWORK_FLAGS, "--O_MPC", "3",
            "--num_train_epochs", "1", "--num_eval_epochs", "2", "--verbose", "0",
            # One game at a time: concurrent evaluation games share the player's search cache,
            # so which game's record carries a shared answer's cost depends on timing.
            "--concurrency", "1",
            "--out", str(out)]
    assert asyncio.run(tictactoe_cli.main_async(argv)) == 0


def test_tictactoe_run_under_20_percent_faults_matches_the_clean_run(tmp_path, openai_backends):
    run_behind_server(TICTACTOE_RULE, tictactoe_run, tmp_path / "clean", None)
    openai_backends.clear()
    stats = run_behind_server(TICTACTOE_RULE, tictactoe_run, tmp_path / "faulty", FAULTS)
    assert_same_results_and_bounded_retries(tmp_path / "clean", tmp_path / "faulty", stats, openai_backends)
    assert len(episodes_by_index(tmp_path / "faulty")) == 5  # 2 + 2 evaluation games, 1 training game
    for name in ("eval.json", "0/eval.json", "0/train.json", "0/O_memory.json", "0/X_memory.json"):
        assert without_wall_clock(tmp_path / "faulty" / name) == without_wall_clock(tmp_path / "clean" / name), name


# -- BlocksWorld --------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
BLOCKSWORLD_RULE = WorldModelRule(error_rate=0.2)
# Flat priors: the server scores every token offset of an echoed prompt with this rule, and
# the informative rule (a breadth-first search per offset) would make each request slow.
BLOCKSWORLD_PRIORS = PriorRule(informative=False)


def two_instances(tmp_path: Path) -> Path:
    data = REPO / "blocksworld" / "data"
    chosen = json.loads((data / "step_4.json").read_text())[:2]
    for item in chosen:
        item["instance"] = str(data / item["instance"])
    path = tmp_path / "two.json"
    path.write_text(json.dumps(chosen))
    return path


def blocksworld_run(data: Path) -> Callable[[str, Path], None]:
    def run(base_url: str, out: Path) -> None:
        argv = ["--backend", "loopback", "--base-url", base_url, *NETWORK_FLAGS, "--data_path", str(data),
                "--rollouts", "3", "--max_depth", "4", "--concurrency", "2", "--out", str(out)]
        summary = asyncio.run(blocksworld_cli.amain("rafa", argv, progress=False))
        assert summary is not None and summary["episodes"] == 2 and summary["stopped"] is None

    return run


def test_blocksworld_rafa_run_under_20_percent_faults_matches_the_clean_run(tmp_path, openai_backends):
    run = blocksworld_run(two_instances(tmp_path))
    run_behind_server(BLOCKSWORLD_RULE, run, tmp_path / "clean", None, loglik_rule=BLOCKSWORLD_PRIORS)
    openai_backends.clear()
    stats = run_behind_server(BLOCKSWORLD_RULE, run, tmp_path / "faulty", FAULTS, loglik_rule=BLOCKSWORLD_PRIORS)
    assert_same_results_and_bounded_retries(tmp_path / "clean", tmp_path / "faulty", stats, openai_backends)


# -- ALFWorld (the real engine: slow) -------------------------------------------------------------
def alfworld_run(data: Path) -> Callable[[str, Path], None]:
    from rafa_core.alfworld.cli import main as alfworld_main

    def run(base_url: str, out: Path) -> None:
        argv = ["--backend", "loopback", "--reflect_backend", "loopback", "--base-url", base_url, *NETWORK_FLAGS,
                "--data", str(data), "--num_envs", "4", "--num_trials", "2", "--concurrency", "2",
                "--progress", "false", "--out", str(out)]
        assert asyncio.run(alfworld_main(argv, default_config=REPO / "alfworld" / "base_config.yaml")) == 0

    return run


@pytest.mark.slow
def test_alfworld_run_under_20_percent_faults_matches_the_clean_run(tmp_path, openai_backends, monkeypatch):
    from rafa_core.alfworld.make_games import make_games
    from rafa_core.alfworld.oracle import make_rule

    data = tmp_path / "games"
    make_games(data, per_type=1, seed=0)
    monkeypatch.setenv("ALFWORLD_DATA", str(data))
    rule, run = make_rule(error_rate=0.5), alfworld_run(data)  # noisy: some games need the second trial
    run_behind_server(rule, run, tmp_path / "clean", None)
    openai_backends.clear()
    stats = run_behind_server(rule, run, tmp_path / "faulty", FAULTS)
    assert_same_results_and_bounded_retries(tmp_path / "clean", tmp_path / "faulty", stats, openai_backends)


# -- faults that do not stop ------------------------------------------------------------------
def test_a_server_failing_past_the_retries_ends_the_run_with_one_line_and_keeps_episodes(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--backend", "loopback", "--no-cache", "--timeout", "0.5", "--max-retries", "2", "--feedback",
            "--task_start_index", "900", "--task_end_index", "903", "--concurrency", "1", "--out", str(out)]
    with LoopbackServer(GAME24_RULE) as server:  # one server: the run directory records its URL
        assert game24_cli.main([*argv, "--task_end_index", "901", "--base-url", server.base_url]) == 0
        server.faults = FaultPlan(rate=1.0, kinds=("500",))  # from now on every request fails
        before = server.stats.requests
        assert game24_cli.main([*argv, "--base-url", server.base_url]) == 2
        assert server.stats.requests - before == 3  # the first request, then its two retries
    err = capsys.readouterr().err
    assert "error: the model backend failed" in err and "Traceback" not in err
    assert [json.loads(line)["index"] for line in (out / "episodes.jsonl").read_text().splitlines()] == [900]
