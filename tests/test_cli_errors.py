"""Bad user input is ONE line on stderr and exit code 2, at every entry point; ``--help`` shows
each flag's default; a misspelt backend is answered with the closest known names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rafa_core.cli import ArgumentParser, add_shared_flags
from rafa_core.game24.cli import build_parser as game24_parser
from rafa_core.llm.base import UserError
from rafa_core.llm.registry import BackendOptions, make_llm

REPO = Path(__file__).resolve().parents[1]
ENTRY_POINTS = [
    ["game24/run.py"], ["tictactoe/run.py"], ["blocksworld/run_rafa_mcts.py"], ["blocksworld/run_mcts.py"],
    ["alfworld/run.py"], ["-m", "rafa_core", "game24"], ["-m", "rafa_core", "tictactoe"],
    ["-m", "rafa_core", "blocksworld"], ["-m", "rafa_core", "alfworld"],
]
BAD_FLAGS = [["--concurrency", "0"], ["--max-cost", "abc"], ["--seed", "1.5"], ["--no-such-flag"], ["--timeout"]]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in result.stderr and "usage:" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


# Each entry point with one kind of bad flag (a process each; every kind is met several times).
CASES = [(entry, BAD_FLAGS[i % len(BAD_FLAGS)]) for i, entry in enumerate(ENTRY_POINTS)]


@pytest.mark.parametrize("entry, flags", CASES, ids=[" ".join(e + f) for e, f in CASES])
def test_bad_flags_are_one_line_and_exit_2(entry, flags):
    assert_one_line_error(run(*entry, *flags), flags[0])


def test_the_values_are_named_in_the_error():
    assert_one_line_error(run("game24/run.py", "--concurrency", "0"), "--concurrency", "must be >= 1")
    assert_one_line_error(run("tictactoe/run.py", "--max-cost", "abc"), "--max-cost", "not a number: 'abc'")
    assert_one_line_error(run("game24/run.py", "--planning", "zzz"), "invalid choice: 'zzz'")


def test_other_commands_answer_in_one_line_too():
    assert_one_line_error(run("scripts/plot_results.py"), "run_dirs")
    assert_one_line_error(run("scripts/plot_results.py", "x", "--nope"), "--nope")
    assert_one_line_error(run("-m", "rafa_core", "gam24"), "did you mean game24")
    assert_one_line_error(run("-m", "rafa_core", "blocksworld", "--method", "mpc"), "--method")
    assert_one_line_error(run("-m", "rafa_core", "doctor", "--timeout", "soon"), "--timeout")
    assert_one_line_error(run("-m", "rafa_core.alfworld.make_games"), "--out")
    assert_one_line_error(run("-m", "rafa_core.blocksworld.generate", "--bogus"), "--bogus")


def test_a_misspelt_backend_at_an_entry_point_names_the_closest(tmp_path):
    puzzles = tmp_path / "24.csv"
    puzzles.write_text("Rank,Puzzles\n1,4 9 10 13\n", encoding="utf-8")
    result = run("game24/run.py", "--backend", "oracel", "--out", str(tmp_path / "run"), "--no-cache",
                 "--task_file_path", str(puzzles), "--task_start_index", "0", "--task_end_index", "1",
                 env={"OPENAI_API_KEY": "", "AZURE_OPENAI_ENDPOINT": "", "OPENAI_BASE_URL": ""})
    assert_one_line_error(result, "unknown backend 'oracel'", "did you mean oracle?")
    assert "OPENAI_API_KEY" not in result.stderr


def test_help_shows_every_default():
    text = " ".join(game24_parser().format_help().split())
    for shown in ("--temperature TEMPERATURE (default: 0.7)", "--task_start_index TASK_START_INDEX (default: 900)",
                  "(default: off)", "--planning {tot,naive,cot} (default: tot)", "exit code 3) (default: none)"):
        assert shown in text, shown
    assert text.count("(default") >= 20  # every flag, not just a few
    assert "(default: 4) (default" not in text  # a help text that names its default is not repeated


def test_help_of_every_entry_point_has_defaults():
    for entry in (["tictactoe/run.py"], ["blocksworld/run_mcts.py"], ["-m", "rafa_core", "doctor"]):
        result = run(*entry, "--help")
        assert result.returncode == 0 and "(default: " in result.stdout, result.stdout[-500:]


def test_parser_error_flattens_to_one_line(capsys):
    parser = ArgumentParser(prog="p")
    add_shared_flags(parser)
    with pytest.raises(SystemExit) as exit_info:
        parser.error("first\nsecond   third")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "p: error: first second third (see --help)\n"


# -- did you mean ----------------------------------------------------------------------------
@pytest.fixture
def no_keys(monkeypatch):
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("spec, closest", [
    ("locl", "local"), ("gpt4o", "gpt-4o"), ("oracel", "oracle"), ("oracel:0.3", "oracle"), ("hff:x", "hf"),
    ("llamacp:m.gguf", "llamacpp"),
])
def test_misspelt_backends_get_did_you_mean(no_keys, spec, closest):
    with pytest.raises(UserError) as info:
        make_llm(spec, BackendOptions(), oracle=lambda rate, options: None)
    message = str(info.value)
    assert f"unknown backend {spec!r}" in message and "did you mean" in message
    assert closest in message.split("did you mean", 1)[1].split(")")[0].split(" or ")[0]
    assert "OPENAI_API_KEY" not in message and "\n" not in message


def test_real_openai_names_and_server_names_are_not_second_guessed(no_keys, monkeypatch):
    with pytest.raises(UserError, match="OPENAI_API_KEY is not set"):
        make_llm("gpt-4o-mini", BackendOptions())  # a real name: the missing key is the problem
    with pytest.raises(UserError, match="OPENAI_API_KEY is not set"):
        make_llm("my-finetune-v2", BackendOptions())  # close to nothing known: no guess
    assert make_llm("gpt4o", BackendOptions(base_url="http://127.0.0.1:9/v1")).model == "gpt4o"  # the server names it
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.invalid")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    assert make_llm("locl", BackendOptions()).model == "locl"  # an Azure deployment may be called anything
