"""The Game of 24 environment: exact verdicts, rewards, feedback, safe parsing, data."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest

from rafa_core.game24 import env as g
from rafa_core.game24.data import load_puzzles, select_indices
from rafa_core.llm.base import UserError


def make_env(puzzle: str = "4 4 6 8", feedback: bool = True, max_step: int = 20) -> g.Game24Env:
    environment = g.Game24Env([puzzle], feedback=feedback, max_step=max_step)
    environment.reset(0)
    return environment


def test_every_puzzle_of_the_csv_is_solvable_and_its_solution_is_accepted():
    puzzles = load_puzzles()
    assert len(puzzles) == 1362
    environment = g.Game24Env(puzzles, feedback=True)
    for index, puzzle in enumerate(puzzles):
        lines = g.solve(g.parse_numbers(puzzle))
        assert lines is not None, puzzle
        environment.reset(index)
        _, reward, done, info = environment.step("\n".join(lines))
        assert info["success"] and done and reward == 13.0, (puzzle, info)


def test_solver_is_exact_where_floats_and_three_bracket_shapes_fail():
    # 8 / (3 - 8/3) = 24 needs a fraction; 1 1 1 1 cannot reach 24.
    assert g.can_reach_24([Fraction(3), Fraction(3), Fraction(8), Fraction(8)])
    assert not g.can_reach_24([Fraction(1)] * 4)
    assert g.can_reach_24([Fraction(24)]) and not g.can_reach_24([Fraction(23)])


@pytest.mark.parametrize(
    "line, verdict, reward",
    [
        ("4 + 8 = 12 (left: 4 6 12)", g.CORRECT, 1.0),
        ("6 - 4 = 2 (left: 2 4 8)", g.CORRECT, 1.0),
        ("9 + 8 = 17 (left: 4 4 17)", g.ILLEGAL, 0.0),  # 9 is not there
        ("4 + 8 = 12 (left: 4 12)", g.ILLEGAL, 0.0),  # the left numbers are wrong
        ("4 / 0 = 0 (left: 0 4 6)", g.ILLEGAL, 0.0),
        ("hello there", g.ILLEGAL, 0.0),
        ("4 + 8 = 13 (left: 4 6 13)", g.MISCALCULATED, 0.0),
        ("4 - 4 = 0 (left: 0 6 8)", g.DEAD_END, 0.0),  # 0 6 8 cannot make 24
        ("Answer: (4 + 8) * (6 - 4) = 24", g.CORRECT, 10.0),
        ("Answer: 4 * 6 = 24", g.WRONG_ANSWER, 0.0),  # not every number
        ("Answer: (4 + 8) * (6 - 4) + 1 = 25", g.WRONG_ANSWER, 0.0),
        ("Answer: 4 * 4 + 6 + 8 = 24", g.WRONG_ANSWER, 0.0),  # evaluates to 30
    ],
)
def test_each_line_gets_its_verdict_and_reward(line, verdict, reward):
    environment = make_env()
    _, got_reward, _, info = environment.step(line)
    assert info["verdicts"][0]["verdict"] == verdict
    assert got_reward == reward
    assert info["success"] == (verdict == g.CORRECT and line.startswith("Answer"))


def test_checking_stops_at_the_first_wrong_line_and_commits_the_right_ones():
    environment = make_env()
    plan = "4 + 8 = 12 (left: 4 6 12)\n6 - 4 = 2 (left: 2 12)\n2 * 12 = 25 (left: 25)\nAnswer: (4 + 8) * (6 - 4) = 24"
    obs, reward, done, info = environment.step(plan)
    assert [v["verdict"] for v in info["verdicts"]] == [g.CORRECT, g.CORRECT, g.MISCALCULATED]
    assert reward == 2.0 and not done
    assert obs["history"] == ["4 + 8 = 12 (left: 4 6 12)", "6 - 4 = 2 (left: 2 12)"]
    assert "miscalculated" in obs["feedback"] and "Line 3" in obs["feedback"]
    # The next plan continues from the committed steps.
    obs, reward, done, info = environment.step("2 * 12 = 24 (left: 24)\nAnswer: (4 + 8) * (6 - 4) = 24")
    assert info["success"] and done and reward == 11.0


def test_feedback_off_commits_nothing_and_returns_no_text():
    environment = make_env(feedback=False)
    obs, reward, done, info = environment.step("4 + 8 = 12 (left: 4 6 12)\n4 - 6 = 5 (left: 5 12)")
    assert obs["history"] == [] and obs["feedback"] == ""
    assert reward == 1.0 and not done and info["committed"] == []
    # The state did not move: the same first step is judged from the start again.
    _, _, _, info = environment.step("4 + 8 = 12 (left: 4 6 12)")
    assert info["verdicts"][0]["verdict"] == g.CORRECT


def test_feedback_text_names_each_verdict():
    environment = make_env()
    obs, *_ = environment.step("4 - 4 = 0 (left: 0 6 8)")
    assert "cannot lead to 24" in obs["feedback"]
    obs, *_ = environment.step("Answer: 4 * 6 = 24")
    assert "wrong answer" in obs["feedback"]


def test_episode_ends_after_max_step_submissions():
    environment = make_env(max_step=3)
    dones = [environment.step("garbage")[2] for _ in range(3)]
    assert dones == [False, False, True]


def test_empty_and_garbage_plans_are_failed_steps():
    environment = make_env()
    for plan in ("", "   \n\n", "\x00\x01", "Answer:", "Answer: = 24", "((((", "left: left: (("):
        obs, reward, done, info = environment.step(plan)
        assert reward == 0.0 and not info["success"] and info["verdicts"]


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('x')", "9**9**9**9", "1/0", "9" * 10_000, "(" * 5000 + "1" + ")" * 5000,
     "-" * 150 + "24", "2^100", "1e999", "24 if 1 else 0"],
)
def test_malicious_and_huge_answers_are_rejected_fast(expression, tmp_path):
    marker = tmp_path / "x"
    environment = g.Game24Env(["4 4 6 8"])
    environment.reset(0)
    start = time.perf_counter()
    _, reward, _, info = environment.step(f"Answer: {expression} = 24")
    assert time.perf_counter() - start < 0.05
    assert info["verdicts"][0]["verdict"] == g.WRONG_ANSWER and reward == 0.0
    assert not marker.exists()


def test_huge_step_lines_are_rejected_fast():
    environment = make_env()
    start = time.perf_counter()
    _, _, _, info = environment.step("9" * 10_000 + " + 1 = 10 (left: 1)")
    assert time.perf_counter() - start < 0.05
    assert info["verdicts"][0]["verdict"] == g.ILLEGAL


def test_expression_parser_is_exact():
    value, literals = g.evaluate_expression("8 / (3 - 8 / 3)")
    assert value == 24 and sorted(literals) == [3, 3, 8, 8]
    assert g.evaluate_expression("-(2 - 26)")[0] == 24
    assert g.evaluate_expression("6 × 4")[0] == 24


def test_fraction_steps_are_accepted():
    environment = make_env("3 3 8 8")
    plan = "8 / 3 = 8/3 (left: 3 8 8/3)\n3 - 8/3 = 1/3 (left: 1/3 8)\n8 / 1/3 = 24 (left: 24)\nAnswer: 8 / (3 - 8 / 3) = 24"
    _, _, _, info = environment.step(plan)
    assert info["success"], info["verdicts"]


def test_bad_data_files_are_user_errors(tmp_path):
    missing = tmp_path / "none.csv"
    with pytest.raises(UserError, match="not found"):
        load_puzzles(missing)
    no_column = tmp_path / "a.csv"
    no_column.write_text("Rank,Numbers\n1,1 2 3 4\n")
    with pytest.raises(UserError, match="Puzzles"):
        load_puzzles(no_column)
    bad_row = tmp_path / "b.csv"
    bad_row.write_text("Rank,Puzzles\n1,1 2 3 4\n2,one two\n")
    with pytest.raises(UserError, match="b.csv:3"):
        load_puzzles(bad_row)
    good = tmp_path / "c.csv"
    good.write_text("Puzzles\n1 2 3 4\n4 4 6 8\n")
    assert load_puzzles(good) == ["1 2 3 4", "4 4 6 8"]
    with pytest.raises(UserError, match="index range"):
        select_indices(["1 2 3 4"], 0, 5)
    assert select_indices(["a"] * 5, 1, 4) == [3, 2, 1]
    assert select_indices(["a"] * 5, 1, 4, descending=False) == [1, 2, 3]


def test_missing_wheel_names_the_install_command(monkeypatch):
    import importlib.util

    from rafa_core.game24 import data

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="pip install --no-deps tree-of-thoughts-llm==0.1.0"):
        data.load_puzzles()
