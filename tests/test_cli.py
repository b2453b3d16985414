"""Backend strings, the exit-code contract and the shared flags."""

import argparse
import asyncio
import json
import sys

import pytest

from rafa_core.cli import EXIT_BUDGET, EXIT_USER_ERROR, add_shared_flags, announce_backend, build_llm, run_main, str2bool
from rafa_core.llm import BackendOptions, BudgetExceeded, ReplayLLM, ScriptedLLM, Usage, UserError, make_llm


@pytest.mark.parametrize("spec", ["", "bogus backend!", "hf:", "oracle:2", "oracle:x", "llamacpp:/no/such.gguf",
                                  "replay:/no/such/file.jsonl", "scripted", "nosuchkind:thing"])
def test_bad_backend_strings_are_user_errors(spec):
    with pytest.raises(UserError):
        make_llm(spec, BackendOptions(), oracle=None if spec.startswith("oracle:x") else (lambda r, o: None))


def test_oracle_strings_reach_the_benchmark_factory():
    seen = []

    def factory(rate, options):
        seen.append(rate)
        return ScriptedLLM(lambda t, r: "x", usage=options.usage)

    make_llm("oracle", BackendOptions(), oracle=factory)
    make_llm("oracle:0.3", BackendOptions(), oracle=factory)
    assert seen == [0.0, 0.3]
    with pytest.raises(UserError, match="no oracle"):
        make_llm("oracle", BackendOptions())


def test_replay_serves_recorded_answers(tmp_path):
    path = tmp_path / "rec.jsonl"
    path.write_text(json.dumps({"prompt": "hello", "completions": ["one", "two"]}) + "\n")
    llm = make_llm(f"replay:{path}", BackendOptions())
    assert isinstance(llm, ReplayLLM) and llm.simulated
    assert [c.text for c in asyncio.run(llm.generate("hello", n=2))] == ["one", "two"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(UserError, match="bad.jsonl:1"):
        make_llm(f"replay:{bad}", BackendOptions())


def test_run_main_maps_errors_to_exit_codes(capsys):
    async def user_error():
        raise UserError("no such file: x.csv")

    async def budget():
        raise BudgetExceeded("cost reached")

    assert run_main(user_error) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err == "error: no such file: x.csv\n"
    assert run_main(budget) == EXIT_BUDGET


def test_backend_choice_is_announced_with_its_reason(monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    args = argparse.Namespace(base_url=None)
    assert announce_backend(None, "gpt-4", args) == "local"
    assert "no OPENAI_API_KEY" in capsys.readouterr().out
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert announce_backend(None, "gpt-4", args) == "gpt-4"
    assert announce_backend("oracle", "gpt-4", args) == "oracle"
    assert "[SIMULATED]" in capsys.readouterr().out.splitlines()[-1]


def test_shared_flags_parse_and_validate():
    parser = argparse.ArgumentParser()
    add_shared_flags(parser)
    args = parser.parse_args(["--concurrency", "3", "--max-cost", "1.5", "--no-cache", "--seed", "7"])
    assert (args.concurrency, args.max_cost, args.no_cache, args.seed) == (3, 1.5, True, 7)
    with pytest.raises(SystemExit):
        parser.parse_args(["--concurrency", "0"])
    assert str2bool("False") is False and str2bool("yes") is True
    with pytest.raises(argparse.ArgumentTypeError):
        str2bool("__import__('os')")


def test_build_llm_applies_the_shared_flags():
    parser = argparse.ArgumentParser()
    add_shared_flags(parser)
    args = parser.parse_args(["--concurrency", "2", "--no-cache"])
    usage = Usage()
    llm = build_llm("oracle", args, usage, oracle=lambda rate, o: ScriptedLLM(lambda t, r: "x", usage=o.usage, concurrency=o.concurrency))
    assert llm.usage is usage and llm.cache is None


def test_entry_points_run_on_uvloop_where_it_is_a_dependency():
    """uvloop is a dependency except on Windows: the entry points' loop is its loop there."""
    from rafa_core.cli import run_event_loop

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    expected = "asyncio" if sys.platform == "win32" else "uvloop"
    assert run_event_loop(loop_module()).split(".")[0] == expected
