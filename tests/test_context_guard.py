"""The context-window guard: prompts are checked before they are sent; Tic-Tac-Toe leaves out
its oldest learned examples to fit; the embedded model runs with its trained context."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rafa_core.game24.cli import main as game24_main
from rafa_core.llm.errors import ContextOverflow, UserError
from rafa_core.llm.context import fit_examples, known_context_window
from rafa_core.llm.scripted import ScriptedLLM
from rafa_core.tictactoe.cli import main as tictactoe_main


@pytest.mark.parametrize("model, window", [("gpt-4", 8_192), ("gpt-4-0613", 8_192), ("gpt-4-32k-0613", 32_768),
                                           ("gpt-4o-2024-08-06", 128_000), ("gpt-3.5-turbo-0613", 4_096),
                                           ("ft:gpt-4o-mini-2024-07-18:org::abc", 128_000), ("llama3:8b", None)])
def test_known_windows_come_from_the_table_with_snapshots_falling_back_to_their_family(model, window):
    assert known_context_window(model) == window


class Recorder:
    """A rule that remembers whether it was asked."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self, prompt: str, request) -> str:
        self.asked += 1
        return "ok"


def test_a_prompt_over_the_window_is_refused_before_it_is_sent():
    rule = Recorder()
    llm = ScriptedLLM(rule, counts_as="gpt-4")  # 8,192 tokens
    with pytest.raises(ContextOverflow, match="8,192-token context window") as caught:
        asyncio.run(llm.generate("word " * 9_000, max_tokens=16))
    assert isinstance(caught.value, UserError)  # one line and exit code 2 at the entry points
    assert rule.asked == 0 and llm.usage.calls == 0


def test_max_tokens_counts_against_the_window():
    rule = Recorder()
    llm = ScriptedLLM(rule)
    prompt = "Say something short."
    llm.window_override = llm.count_prompt(prompt) + 10
    asyncio.run(llm.generate(prompt, max_tokens=10))
    assert rule.asked == 1
    with pytest.raises(ContextOverflow):
        asyncio.run(llm.generate(prompt, max_tokens=11))
    assert rule.asked == 1


def test_a_model_with_no_known_window_is_not_checked():
    rule = Recorder()
    llm = ScriptedLLM(rule, counts_as="some-server-model")
    assert llm.context_window() is None
    asyncio.run(llm.generate("word " * 200_000, max_tokens=16))
    assert rule.asked == 1


def test_the_flag_turns_an_overflow_into_one_line_and_exit_2(tmp_path, capsys):
    code = game24_main(["--backend", "oracle", "--no-cache", "--task_start_index", "900", "--task_end_index", "901",
                        "--context-window", "64", "--out", str(tmp_path / "run")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1
    assert "64-token context window" in errors[0] and "--context-window" in errors[0]


class CharCounting:
    """A stand-in LLM whose tokens are characters (fit_examples only counts and asks the window)."""

    def __init__(self, window: int | None) -> None:
        self.window = window

    def context_window(self) -> int | None:
        return self.window

    def count_prompt(self, prompt: str) -> int:
        return len(prompt)


def build(examples: list[str]) -> str:
    return "|".join(examples) + "|query"


def test_fit_examples_leaves_out_the_fewest_oldest_learned_examples():
    examples = ["seed1", "seed2", "old", "older2", "mid", "newest"]
    full = build(examples)
    assert fit_examples(CharCounting(None), build, examples, 5, keep_first=2) == (full, 0)
    assert fit_examples(CharCounting(len(full) + 5), build, examples, 5, keep_first=2) == (full, 0)
    window = len(build(["seed1", "seed2", "mid", "newest"])) + 5  # room for the two newest learned ones
    prompt, left_out = fit_examples(CharCounting(window), build, examples, 5, keep_first=2)
    assert (prompt, left_out) == (build(["seed1", "seed2", "mid", "newest"]), 2)
    # Too small for even the seeds: the seeds alone, which the request's own check then refuses.
    assert fit_examples(CharCounting(10), build, examples, 5, keep_first=2) == (build(["seed1", "seed2"]), 4)


# -- Tic-Tac-Toe: learned examples outgrow a small window -------------------------------------------
TTT = ["--X", "oracle:0.5", "--O", "oracle:0.4", "--O_MPC", "2", "--depth", "1", "--num_train_epochs", "2",
       "--num_eval_epochs", "1", "--verbose", "0", "--no-cache", "--seed", "3"]
# Room for the seed examples (the winner model's, the longest, need ~1,150 tokens with its
# answer) but not for many learned ones.
SMALL_WINDOW = "1400"


def left_out_entries(run: Path) -> list[dict]:
    found = []
    for line in (run / "episodes.jsonl").read_text().splitlines():
        episode = json.loads(line)
        for move in episode.get("transcript", []):
            for entry in (move.get("decision") or {}).get("model_log", []):
                if "examples_left_out" in entry:
                    found.append(entry)
    return found


def test_tictactoe_leaves_out_its_oldest_learned_examples_when_they_outgrow_the_window(tmp_path):
    roomy, small = tmp_path / "roomy", tmp_path / "small"
    assert tictactoe_main(TTT + ["--out", str(roomy)]) == 0
    assert tictactoe_main(TTT + ["--out", str(small), "--context-window", SMALL_WINDOW]) == 0
    assert not left_out_entries(roomy)
    entries = left_out_entries(small)
    assert entries and all(e["examples_left_out"] >= 1 and e["why"] == "context window" for e in entries)
    assert {e["model"] for e in entries} <= {"dynamics", "opponent", "winner", "availability"}


def test_tictactoe_refuses_a_window_too_small_for_its_seed_examples(tmp_path, capsys):
    assert tictactoe_main(TTT + ["--out", str(tmp_path / "run"), "--context-window", "300"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "300-token context window" in errors[0]
