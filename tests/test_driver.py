"""The one driver and the runner's schedules: batches in order, a lazy schedule drawn after each
batch's hook, resume in one place (the runner) with the benchmark's resume hook, exit codes."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest

from rafa_core.benchmark import Benchmark, Run
from rafa_core.cli import EXIT_OK, EXIT_USER_ERROR
from rafa_core.driver import main, run_benchmark
from rafa_core.llm.base import UserError
from rafa_core.llm.scripted import oracle_backend
from rafa_core.llm.usage import Usage
from rafa_core.runner import Batch


def echo_oracle(rate, options):
    return oracle_backend(lambda prompt, request: prompt.upper(), rate, options)


@dataclass
class Seen:
    restored: list[str]
    after: list[int]
    played: list[str]


@dataclass(frozen=True)
class Epochs(Benchmark):
    """Three epochs of two episodes; epoch k+1's episodes are known only after epoch k."""

    fail_at: str | None = None

    name = "epochs"
    prog = "epochs"

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--backend", default=None)

    def oracle(self, run: Run):
        return echo_oracle

    def run_name(self, run: Run) -> str:
        return "x"

    def max_steps(self, run: Run) -> int:
        return 1

    def check(self, run: Run) -> bool:
        run.state = Seen([], [], [])
        return True

    def schedule(self, run: Run):
        for epoch in range(3):
            assert run.state.after == list(range(epoch))  # drawn after the last batch's hook
            yield Batch([f"{epoch}:{g}" for g in range(2)], desc=f"epoch {epoch}", tag=epoch)

    async def episode(self, run: Run, index: Any, ledger: Usage) -> dict[str, Any]:
        if index == self.fail_at:
            raise UserError("simulated failure")
        answer = (await run.llm.with_usage(ledger).generate(f"episode {index}"))[0].text
        run.state.played.append(index)
        return {"success": answer == f"EPISODE {index}", "env_steps": 1}

    def on_resume(self, run: Run, records: list[dict[str, Any]]) -> None:
        run.state.restored = [r["index"] for r in records]

    async def after_batch(self, run: Run, batch: Batch) -> None:
        run.state.after.append(batch.tag)

    def summary(self, run: Run, result) -> dict[str, Any]:
        return {**result.summary, "state": {"restored": run.state.restored, "played": sorted(run.state.played),
                                            "after": run.state.after}}


def test_batches_run_in_order_and_a_rerun_resumes_in_the_runner(tmp_path, capsys):
    argv = ["--backend", "oracle", "--out", str(tmp_path / "run"), "--no-cache"]
    with pytest.raises(UserError):
        asyncio.run(run_benchmark(Epochs(fail_at="1:1"), argv, progress=False))
    lines = [json.loads(x) for x in (tmp_path / "run" / "episodes.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in lines) == ["0:0", "0:1", "1:0"]
    summary = asyncio.run(run_benchmark(Epochs(), argv, progress=False))
    err = capsys.readouterr().err  # a lazy schedule says it per batch
    assert "2 finished episodes found and skipped, 0 to run" in err and "1 finished episode found and skipped, 1 to run" in err
    assert summary["state"] == {"restored": ["0:0", "0:1", "1:0"], "played": ["1:1", "2:0", "2:1"], "after": [0, 1, 2]}
    assert summary["episodes"] == 6 and summary["successes"] == 6 and summary["simulated"] is True
    assert summary["llm_calls"] == 6  # the finished episodes' usage is counted once, from their lines
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["state"] == summary["state"]


def test_main_returns_the_exit_codes(tmp_path, capsys):
    assert main(Epochs(), ["--backend", "oracle", "--out", str(tmp_path / "a"), "--no-cache"]) == EXIT_OK
    assert main(Epochs(fail_at="0:0"), ["--backend", "oracle", "--out", str(tmp_path / "b")]) == EXIT_USER_ERROR
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: simulated failure"
    with pytest.raises(SystemExit) as exit_info:
        main(Epochs(), ["--no-such-flag"])
    assert exit_info.value.code == EXIT_USER_ERROR
