"""The run directory: config check, resume, torn lines, budget stop, summary."""

import asyncio
import json

import pytest

from rafa_core.llm import ScriptedLLM, Usage, UserError
from rafa_core.runner import JsonlLog, RunDir, Runner, summarize


def make_episode(llm, solved_at):
    async def episode(index, ledger):
        await llm.with_usage(ledger).generate(f"puzzle {index}")
        step = solved_at.get(index)
        return {"success": step is not None, "env_steps": step or 5, "solved_at": step, "reward": 1.0 if step else 0.0}

    return episode


def run(tmp_path, indices, solved_at, *, usage=None, concurrency=2, config=None):
    usage = usage or Usage()
    llm = ScriptedLLM(lambda t, r: "ok", usage=usage)
    runner = Runner(RunDir(tmp_path, config or {"task": "t"}), usage, max_steps=5, concurrency=concurrency, progress=False)
    return asyncio.run(runner.run(indices, make_episode(llm, solved_at)))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_summary_has_the_design_keys_and_success_by_step(tmp_path):
    result = run(tmp_path, [0, 1, 2, 3], {0: 1, 1: 3, 2: 5})
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ["episodes", "successes", "success_rate", "llm_calls", "prompt_tokens", "completion_tokens",
                "cost_usd", "cache_hits", "wall_s", "success_by_step"]:
        assert key in summary
    assert summary["episodes"] == 4 and summary["successes"] == 3
    assert summary["success_by_step"] == {"1": 0.25, "2": 0.25, "3": 0.5, "4": 0.5, "5": 0.75}
    assert summary["llm_calls"] == 4
    assert result.summary == summary
    records = read_jsonl(tmp_path / "episodes.jsonl")
    assert sorted(r["index"] for r in records) == [0, 1, 2, 3]
    assert all(r["usage"]["llm_calls"] == 1 for r in records)
    assert json.loads((tmp_path / "config.json").read_text())["task"] == "t"


def test_resume_skips_finished_episodes_and_counts_nothing_twice(tmp_path):
    run(tmp_path, [0, 1], {0: 1})
    result = run(tmp_path, [0, 1, 2, 3], {0: 1, 2: 2})
    records = read_jsonl(tmp_path / "episodes.jsonl")
    assert sorted(r["index"] for r in records) == [0, 1, 2, 3]
    assert result.summary["llm_calls"] == 4
    assert result.summary["successes"] == 2


def test_a_torn_last_line_is_cut_off_on_resume(tmp_path):
    run(tmp_path, [0, 1], {0: 1})
    with open(tmp_path / "episodes.jsonl", "a") as f:
        f.write('{"index": 2, "succ')
    log = JsonlLog(tmp_path / "episodes.jsonl")
    assert [r["index"] for r in log.records] == [0, 1] or sorted(r["index"] for r in log.records) == [0, 1]
    assert (tmp_path / "episodes.jsonl").read_text().endswith("}\n")
    run(tmp_path, [0, 1, 2], {})
    assert sorted(r["index"] for r in read_jsonl(tmp_path / "episodes.jsonl")) == [0, 1, 2]


def test_a_different_config_is_refused_but_runtime_flags_may_change(tmp_path):
    RunDir(tmp_path, {"task": "t", "n": 1, "concurrency": 1})
    RunDir(tmp_path, {"task": "t", "n": 1, "concurrency": 8})
    before = (tmp_path / "config.json").read_text()
    with pytest.raises(UserError, match="differs in: n"):
        RunDir(tmp_path, {"task": "t", "n": 2, "concurrency": 8})
    assert (tmp_path / "config.json").read_text() == before  # nothing already written is lost


def test_a_server_on_another_port_may_resume_but_another_model_may_not(tmp_path):
    RunDir(tmp_path, {"llm": {"model": "m", "endpoint": "http://127.0.0.1:1/v1"}})
    RunDir(tmp_path, {"llm": {"model": "m", "endpoint": "http://127.0.0.1:2/v1"}})
    with pytest.raises(UserError, match="differs in: llm"):
        RunDir(tmp_path, {"llm": {"model": "other", "endpoint": "http://127.0.0.1:2/v1"}})


def test_budget_stops_cleanly_and_keeps_finished_episodes(tmp_path):
    usage = Usage(max_cost=0.0)
    usage.record("gpt-4", 1, 0)  # already over the cap
    result = run(tmp_path, [0, 1, 2], {0: 1}, usage=usage)
    assert result.stopped_for_budget
    assert json.loads((tmp_path / "summary.json").read_text())["stopped"] == "budget"
    assert not (tmp_path / "episodes.jsonl").exists() or read_jsonl(tmp_path / "episodes.jsonl") == []


def test_episodes_run_concurrently(tmp_path):
    active, peak = [0], [0]

    async def episode(index, ledger):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await asyncio.sleep(0.02)
        active[0] -= 1
        return {"success": True, "env_steps": 1}

    runner = Runner(RunDir(tmp_path, {}), Usage(), max_steps=1, concurrency=3, progress=False)
    asyncio.run(runner.run(list(range(9)), episode))
    assert peak[0] == 3


def test_summarize_with_no_episodes():
    summary = summarize([], Usage(), wall_s=0.0, max_steps=2)
    assert summary["success_rate"] == 0.0 and summary["success_by_step"] == {"1": 0.0, "2": 0.0}
