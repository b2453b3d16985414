"""Every parser that reads model text, fuzzed: arbitrary unicode, 100 kB inputs, and near
misses of the valid grammar.  Properties: no undocumented exception escapes, the result
has the documented type, one call stays under a generous time bound, and no input gets
evaluated as code.

The parsers are listed once in ``PARSERS`` (per benchmark); ``scripts/bench_reliability.py``
fuzzes the same table.  A new benchmark adds its parsers there.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rafa_core.alfworld import model as alf_model
from rafa_core.alfworld import prompts as alf
from rafa_core.blocksworld import text as bw
from rafa_core.blocksworld.domain import Action, State, apply, applicable_actions, state_from_stacks
from rafa_core.game24 import env as g24
from rafa_core.game24 import model as g24m
from rafa_core.llm.base import MAX_COMPLETION_CHARS
from rafa_core.llm.scripted import ScriptedLLM
from rafa_core.memory import Memory
from rafa_core.tictactoe import game as ttt
from rafa_core.tictactoe import players as tttp
from rafa_core.tictactoe import prompts as tttq

# A safety bound per call, not a speed benchmark: slow only under pathological input (a
# quadratic parser takes seconds on 100 kB). Measured in this process's CPU time, so other
# work on a busy machine does not count.
PARSE_BOUND_S = 0.25
HUGE_CHARS = 100_000
FUZZ = settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,  # timing is checked per call below, with re-tries against load spikes
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


# -- the parsers --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParserSpec:
    """One parser of model text: how to call it, what it may return or raise, valid inputs."""

    name: str
    parse: Callable[[str], Any]
    returns: Callable[[Any], bool]
    valid: tuple[str, ...]
    raises: tuple[type[BaseException], ...] = ()  # documented failures (everything else is a bug)


def is_fraction_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, Fraction) for v in value)


def is_verdict(value: Any) -> bool:
    return isinstance(value, g24.Verdict) and value.verdict in {
        g24.CORRECT, g24.ILLEGAL, g24.MISCALCULATED, g24.DEAD_END, g24.WRONG_ANSWER}


def is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def is_position_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and 1 <= v <= 9 for v in value)


def optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


# Game of 24 -----------------------------------------------------------------------------------
PUZZLE = (Fraction(4), Fraction(9), Fraction(10), Fraction(13))
G24_SOLUTION = tuple(g24.solve(PUZZLE) or ())
G24_VALID = G24_SOLUTION + (
    "4 + 8 = 12 (left: 2 8 12)", "10 - 4 = 6 (left: 6 9 13)", "13 / 2 = 13/2 (left: 13/2 4)",
    "Answer: (10 - 4) * (13 - 9) = 24", "1. 4 * 6 = 24 (left: 24)", "sure", "likely", "impossible",
    "10 14: 10 + 14 = 24\nsure", "The best choice is 2", "4 9 -> impossible", "10 - 4 = 6 -> sure",
    "2.5 1/3 -7", "Input: 4 9 10 13\nPossible next steps:\n4 + 9 = 13 (left: 10 13 13)",
)


def g24_env_step(text: str) -> tuple[float, bool]:
    env = g24.Game24Env(["4 9 10 13"], feedback=True, max_step=3)
    env.reset(0)
    _, reward, done, info = env.step(text)
    assert isinstance(info["verdicts"], list) and info["verdicts"]
    return reward, done


def g24_state_numbers(text: str) -> str:
    return g24m.Game24State(puzzle="4 9 10 13", lines=(text,)).numbers


G24_PARSERS = [
    ParserSpec("game24.parse_number", g24.parse_number, lambda v: isinstance(v, Fraction), G24_VALID, (g24.ParseError,)),
    ParserSpec("game24.parse_numbers", g24.parse_numbers, is_fraction_list, G24_VALID, (g24.ParseError,)),
    ParserSpec("game24.parse_step_line", g24.parse_step_line, lambda v: isinstance(v, g24.StepLine), G24_VALID,
               (g24.ParseError,)),
    ParserSpec("game24.evaluate_expression", g24.evaluate_expression,
               lambda v: isinstance(v[0], Fraction) and is_fraction_list(v[1]), G24_VALID,
               (g24.ParseError, ZeroDivisionError)),
    ParserSpec("game24.is_answer_line", g24.is_answer_line, lambda v: isinstance(v, bool), G24_VALID),
    ParserSpec("game24.answer_expression", g24.answer_expression, lambda v: isinstance(v, str), G24_VALID),
    ParserSpec("game24.left_numbers_text", g24.left_numbers_text, optional(lambda v: isinstance(v, str)), G24_VALID),
    ParserSpec("game24.judge_answer", lambda t: g24.judge_answer(t, PUZZLE), is_verdict, G24_VALID),
    ParserSpec("game24.judge_step", lambda t: g24.judge_step(t, list(PUZZLE)),
               lambda v: is_verdict(v[0]) and (v[1] is None or is_fraction_list(v[1])), G24_VALID),
    ParserSpec("game24.env_step", g24_env_step,
               lambda v: isinstance(v[0], (int, float)) and v[0] >= 0 and isinstance(v[1], bool), G24_VALID),
    ParserSpec("game24.clean_line", g24m.clean_line, lambda v: isinstance(v, str), G24_VALID),
    ParserSpec("game24.plan_lines", g24m.plan_lines, lambda v: is_str_list(v) and len(v) <= 4, G24_VALID),
    ParserSpec("game24.label_value", g24m.label_value,
               lambda v: isinstance(v, float) and v in set(g24m.VALUE_OF_LABEL.values()) | {0.0}, G24_VALID),
    ParserSpec("game24.parse_vote", lambda t: g24m.parse_vote(t, 5), optional(lambda v: isinstance(v, int) and 0 <= v < 5),
               G24_VALID),
    ParserSpec("game24.parse_lessons", g24m.parse_lessons, is_str_list, G24_VALID),
    ParserSpec("game24.state_numbers", g24_state_numbers, lambda v: isinstance(v, str), G24_VALID),
]

# Tic-Tac-Toe ----------------------------------------------------------------------------------
TTT_BOARD = ttt.Board.from_moves([("X", 5), ("O", 1), ("X", 9)])
TTT_VALID = (
    TTT_BOARD.render(), ttt.Board.from_moves([]).render(), f"```\n{TTT_BOARD.render()}\n```",
    "| X | O | 3 |\n| 4 | X | 6 |\n| 7 | 8 | O |", "5", "I play 7.", "3, 7, 2", "Winner: X", "Winner: O",
    "Winner: none", "nobody has won", "Empty positions: 2, 3, 4", "none, the board is full", "X . O\n. X .\nO . X",
)


def ttt_dynamics_check(text: str) -> bool:
    """What the RAFA player does with a predicted board: parse it, check one more mark."""
    after = ttt.parse_board(text)
    return after is not None and tttp._one_more_mark(TTT_BOARD, after, "O")


TTT_PARSERS = [
    ParserSpec("tictactoe.parse_board", ttt.parse_board, optional(lambda v: isinstance(v, ttt.Board)), TTT_VALID),
    ParserSpec("tictactoe.first_position", tttq.first_position, optional(lambda v: isinstance(v, int) and 1 <= v <= 9),
               TTT_VALID),
    ParserSpec("tictactoe.first_only", tttp.first_only, lambda v: is_position_list(v) and len(v) <= 1, TTT_VALID),
    ParserSpec("tictactoe.position_list", tttq.position_list, lambda v: is_position_list(v) and len(set(v)) == len(v),
               TTT_VALID),
    ParserSpec("tictactoe.parse_winner", tttq.parse_winner, lambda v: v in (None, "X", "O", "none"), TTT_VALID),
    ParserSpec("tictactoe.parse_empty_positions", tttq.parse_empty_positions,
               optional(lambda v: isinstance(v, frozenset) and all(1 <= p <= 9 for p in v)), TTT_VALID),
    ParserSpec("tictactoe.dynamics_check", ttt_dynamics_check, lambda v: isinstance(v, bool), TTT_VALID),
]

# BlocksWorld ----------------------------------------------------------------------------------
BW_BLOCKS = ("red", "blue", "orange", "yellow")
BW_STATE: State = state_from_stacks([["red", "blue"], ["orange"], ["yellow"]])


def bw_valid() -> tuple[str, ...]:
    """Renderings of real states, actions and changes: the grammar the parsers read."""
    texts = [bw.render_state(BW_STATE), "(stack red blue)", "(pick-up orange)", "nothing changes"]
    for action in applicable_actions(BW_STATE):
        after = apply(BW_STATE, action)
        texts += [bw.render_action(action), bw.render_change(BW_STATE, after), bw.render_state(after),
                  f"[STATE 1] {bw.render_state(after)}", f"[ACTION] {bw.render_action(action)}"]
    return tuple(texts)


BW_VALID = bw_valid()


def is_atom_set(value: Any) -> bool:
    return isinstance(value, frozenset) and all(isinstance(a, tuple) and a and isinstance(a[0], str) for a in value)


def bw_apply_change(text: str) -> State | None:
    return bw.apply_change(BW_STATE, bw.parse_change(text, BW_BLOCKS), BW_BLOCKS)


BW_PARSERS = [
    ParserSpec("blocksworld.parse_action", lambda t: bw.parse_action(t, BW_BLOCKS),
               optional(lambda v: isinstance(v, Action) and set(v.args) <= set(BW_BLOCKS)), BW_VALID),
    ParserSpec("blocksworld.parse_action_any_colour", bw.parse_action, optional(lambda v: isinstance(v, Action)), BW_VALID),
    ParserSpec("blocksworld.parse_fact", lambda t: bw.parse_fact(t, BW_BLOCKS),
               optional(lambda v: isinstance(v, tuple) and isinstance(v[0], str)), BW_VALID),
    ParserSpec("blocksworld.parse_facts", lambda t: bw.parse_facts(t, BW_BLOCKS), is_atom_set, BW_VALID),
    ParserSpec("blocksworld.parse_state", lambda t: bw.parse_state(t, BW_BLOCKS), optional(is_atom_set), BW_VALID),
    ParserSpec("blocksworld.parse_change", lambda t: bw.parse_change(t, BW_BLOCKS),
               lambda v: isinstance(v, bw.Change) and is_atom_set(v.added) and is_atom_set(v.removed), BW_VALID),
    ParserSpec("blocksworld.apply_change", bw_apply_change, optional(is_atom_set), BW_VALID),
    ParserSpec("blocksworld.read_world_model_answer", lambda t: bw.read_world_model_answer(t, BW_STATE, BW_BLOCKS),
               lambda v: isinstance(v, bw.Prediction) and v.how in {"change", "full state", "unusable"}
               and (v.state is None or is_atom_set(v.state)), BW_VALID),
]

# ALFWorld ------------------------------------------------------------------------------------
ALF_COMMANDS = ["go to countertop 1", "go to cabinet 3", "open cabinet 3", "take apple 1 from countertop 1",
                "move apple 1 to fridge 1", "heat apple 1 with microwave 1", "examine desk 1", "inventory", "look"]
ALF_VALID = (
    "> go to countertop 1", "go to cabinet 3.", "Action: take apple 1 from countertop 1", "`open cabinet 3`",
    "put apple 1 in/on fridge 1", "move apple 1 to fridge 1", "Observation: You arrive at countertop 1. On it, you see"
    " an apple 1.", "Critic: I found the apple, 1/3 of the task is done.", "2/4", "Critic: 3 / 3 done",
    "Plan: I should have looked in the fridge first.\n\nThen heat it.", "Nothing happens.",
)


def alf_proposer_choice(text: str) -> list[str]:
    """What the proposer does with a sampled answer: parse it, rank the admissible commands."""
    return alf_model.closest(alf_model.rank_samples([(alf.parse_action(text), -1.0)]), ALF_COMMANDS)


ALFWORLD_PARSERS = [
    ParserSpec("alfworld.first_line", alf.first_line, lambda v: isinstance(v, str) and "\n" not in v.strip(), ALF_VALID),
    ParserSpec("alfworld.parse_action", alf.parse_action, lambda v: isinstance(v, str) and len(v) <= 400, ALF_VALID),
    ParserSpec("alfworld.parse_observation", alf.parse_observation, lambda v: isinstance(v, str), ALF_VALID),
    ParserSpec("alfworld.parse_critic", alf.parse_critic,
               lambda v: isinstance(v[0], str) and (v[1] is None or 0.0 <= v[1] <= 1.0), ALF_VALID),
    ParserSpec("alfworld.parse_reflection", alf.parse_reflection, lambda v: isinstance(v, str) and len(v) <= 600,
               ALF_VALID),
    ParserSpec("alfworld.proposer_choice", alf_proposer_choice, lambda v: sorted(v) == sorted(ALF_COMMANDS), ALF_VALID),
]

PARSERS = G24_PARSERS + TTT_PARSERS + BW_PARSERS + ALFWORLD_PARSERS
PARSER_IDS = [p.name for p in PARSERS]


# -- strategies --------------------------------------------------------------------------------
NOISE = st.sampled_from([
    "", " ", "\n", "\t", "\r\n", "\u00a0", "\u200b", "\ufeff", "\x00", "\u2028", "=", "(", ")", "|", ":", ",", ".",
    "-", "->", "/", "*", "**", "//", "0", "9", "24", "-0", "1e9", "١٢", "𝟗", "½", "∞", "NaN", "x", "X", "O",
    "the", "block", "now", "not", "no longer", "and", "[", "]", "left:", "Answer:", "Winner:", "sure", "```",
    "\\", "'", '"', "{", "}", "__import__('os')", "é", "ß", "İ", "👍", "\U0010ffff",
])


@st.composite
def near_miss(draw: st.DrawFn, valid: tuple[str, ...]) -> str:
    """A valid answer with a few edits: insert, delete, replace, duplicate, case, join."""
    text = draw(st.sampled_from(valid))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "case", "join", "truncate"]))
        pos = draw(st.integers(0, len(text)))
        if kind == "insert":
            text = text[:pos] + draw(NOISE) + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 5)):]
        elif kind == "replace":
            text = text[:pos] + draw(NOISE) + text[pos + 1:]
        elif kind == "duplicate":
            text = text[:pos] + text[pos:] * draw(st.integers(2, 4))
        elif kind == "case":
            text = text.swapcase()
        elif kind == "join":
            text = text + draw(st.sampled_from(["\n", " ", ", ", " and "])) + draw(st.sampled_from(valid))
        else:
            text = text[:pos]
    return text


def huge(valid: tuple[str, ...]) -> st.SearchStrategy[str]:
    """About 100 kB: one token, valid answer or near miss repeated, or one giant line."""
    unit = st.one_of(NOISE.filter(bool), st.sampled_from(valid), near_miss(valid), st.text(min_size=1, max_size=20))
    separator = st.sampled_from(["", " ", "\n", ", ", " and "])
    return st.builds(lambda u, s: ((u + s) * (HUGE_CHARS // max(1, len(u + s)) + 1))[:HUGE_CHARS], unit, separator)


def inputs(spec: ParserSpec) -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=300), st.text(alphabet=st.characters(codec="utf-8"), max_size=3000),
                     near_miss(spec.valid), huge(spec.valid))


# A pathological parser (quadratic regex) would otherwise hang the suite instead of failing it.
pytestmark = pytest.mark.timeout(120)


# -- the property --------------------------------------------------------------------------------
def check_one(spec: ParserSpec, text: str) -> float:
    """Parse ``text``; assert the contract; returns the call's duration (best of up to 3)."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        try:
            result = spec.parse(text)
        except spec.raises as exc:  # documented failure: a reason fit for one line of the log
            reason = str(exc)
            assert reason.strip() and len(reason) <= 1000, f"{spec.name} failed with {reason[:200]!r}"
        else:
            assert spec.returns(result), f"{spec.name} returned {result!r:.200}"
        best = min(best, time.process_time() - started)
        if best <= PARSE_BOUND_S or best > 2.0:
            break  # fine, or far too slow to be noise
    assert best <= PARSE_BOUND_S, f"{spec.name} took {best * 1000:.0f} ms on {len(text)} chars: {text[:80]!r}"
    return best


@pytest.mark.parametrize("spec", PARSERS, ids=PARSER_IDS)
def test_parser_contract_on_fuzzed_text(spec: ParserSpec):
    @FUZZ
    @given(inputs(spec))
    def run(text: str) -> None:
        check_one(spec, text)

    run()


@pytest.mark.parametrize("spec", PARSERS, ids=PARSER_IDS)
def test_parser_accepts_its_own_grammar(spec: ParserSpec):
    """Sanity for the fuzzing: the valid examples parse without an undocumented error."""
    for text in spec.valid:
        check_one(spec, text)


def test_the_valid_grammar_really_parses():
    """The seeds for the near misses are valid: otherwise mutating them tests little."""
    assert [g24.judge_step(line, list(PUZZLE))[0].verdict for line in G24_SOLUTION[:1]] == [g24.CORRECT]
    assert g24.judge_answer(G24_SOLUTION[-1], PUZZLE).verdict == g24.CORRECT
    assert ttt.parse_board(TTT_BOARD.render()) == TTT_BOARD
    assert tttq.parse_winner("Winner: none") == "none"
    assert bw.parse_state(bw.render_state(BW_STATE), BW_BLOCKS) == BW_STATE
    action = applicable_actions(BW_STATE)[0]
    assert bw.parse_action(bw.render_action(action), BW_BLOCKS) == action
    prediction = bw.read_world_model_answer(bw.render_change(BW_STATE, apply(BW_STATE, action)), BW_STATE, BW_BLOCKS)
    assert prediction.state == apply(BW_STATE, action)
    assert alf.parse_action("> Go to countertop 1.") == "go to countertop 1"
    assert alf.parse_critic("Critic: 1/3 of the task is done.")[1] == pytest.approx(1 / 3)
    assert alf_proposer_choice("go to cabinet 3")[0] == "go to cabinet 3"


# Repeated to 100 kB, each of these once took seconds or tens of milliseconds somewhere: runs
# of one letter (a regex re-scanning a word from each position), of "[" (a tag never closed),
# of short lines (every line examined), of digits, of the grammar itself.
ADVERSARIAL_UNITS = ["a", "X", "9", "1", "[", "(", "|", "-", " ", "\n", "x\n", " \n", "1. \n", "sure\n", "now ", "the ",
                     "| X | O | 3 |\n", "the red block is clear and ", "4 + 8 = 12 (left: 2 8 12)\n", "Answer: (",
                     "best choice is 1 ", "4 9 -> impossible\n", "\u200b", "é"]


def repeated_to_huge(unit: str) -> str:
    return (unit * (HUGE_CHARS // len(unit) + 1))[:HUGE_CHARS]


@pytest.mark.parametrize("spec", PARSERS, ids=PARSER_IDS)
def test_adversarial_100kb_inputs(spec: ParserSpec):
    for unit in ADVERSARIAL_UNITS:
        check_one(spec, repeated_to_huge(unit))


# -- nothing is evaluated ----------------------------------------------------------------------
def code_payloads(sentinel: Path) -> list[str]:
    touch = f"__import__('os').system('touch {sentinel}')"
    opener = f"open('{sentinel}', 'w').write('x')"
    return [
        touch, opener, f"Answer: {touch} = 24", f"Answer: ({opener}) * 1 = 24", f"{touch} (left: 24)",
        f"1 + 1 = 2 (left: {touch})", f"Winner: {touch}", f"| {touch} | O | 3 |",
        f"the {touch} block is on the table", f"(stack {touch} red)", f"{{{{ {touch} }}}}", f"${{{touch}}}",
        f"`{touch}`", f"eval({touch!r})", f"exec({touch!r})", f"[{touch}]",
    ]


@pytest.mark.parametrize("spec", PARSERS, ids=PARSER_IDS)
def test_no_parser_evaluates_code(spec: ParserSpec, tmp_path):
    sentinel = tmp_path / "SENTINEL"
    for payload in code_payloads(sentinel):
        check_one(spec, payload)
    assert not sentinel.exists()


POWER_TOWERS = ["9**9**9**9", "Answer: 9**9**9**9 = 24", "Answer: 9^9^9^9 = 24", "Answer: (9**9)**(9**9) = 24",
                "9**9**9**9 = 24 (left: 24)", "Answer: " + "9*" * 60 + "9 = 24", "Answer: " + "(" * 5000 + "1" + ")" * 5000,
                "Answer: " + "-" * 5000 + "1 = 24", "Answer: 999999999999999999999999 / 0.000000000001 = 24"]


@pytest.mark.parametrize("spec", PARSERS, ids=PARSER_IDS)
def test_power_towers_and_deep_nesting_return_fast(spec: ParserSpec):
    for text in POWER_TOWERS:
        check_one(spec, text)


def test_answer_expressions_are_never_computed_beyond_the_grammar():
    for text in ("9**9**9**9", "9^9", "2 ** 3", "(4+4)(3)", "pow(2, 3)", "24 if 1 else 0"):
        with pytest.raises(g24.ParseError):
            g24.evaluate_expression(text)
    assert g24.judge_answer("Answer: 9**9**9**9 = 24", PUZZLE).verdict == g24.WRONG_ANSWER


def test_fuzzing_leaves_no_files_behind(tmp_path, monkeypatch):
    """Parsers do no I/O: run the whole table in an empty working directory."""
    monkeypatch.chdir(tmp_path)
    for spec in PARSERS:
        for text in spec.valid + tuple(code_payloads(Path("SENTINEL"))):
            check_one(spec, text)
    assert os.listdir(tmp_path) == []


# -- point 7 of issue 18: huge numbers, runaway answers, one bound in the LLM layer -------------
DIGITS_5000 = "9" * 5000  # over Python's int-string limit (4,300 digits): int() raises ValueError
HUGE_NUMBERS = [DIGITS_5000, f"The best choice is {DIGITS_5000}", f"The best choice is choice {DIGITS_5000}",
                f"Answer: {DIGITS_5000} - {DIGITS_5000} = 24", f"{DIGITS_5000} + 1 = {DIGITS_5000} (left: 24)",
                f"4 + 9 = 13 (left: {DIGITS_5000} 13)", f"Winner: {DIGITS_5000}", f"{DIGITS_5000} -> sure",
                f"Critic: {DIGITS_5000}/{DIGITS_5000} done", f"| {DIGITS_5000} | O | 3 |"]


@pytest.mark.parametrize("spec", PARSERS, ids=PARSER_IDS)
def test_numbers_beyond_the_int_string_limit(spec: ParserSpec):
    for text in HUGE_NUMBERS:
        check_one(spec, text)


def test_parse_vote_on_a_5000_digit_choice_is_no_vote():
    assert g24m.parse_vote(f"The best choice is {DIGITS_5000}", 5) is None
    assert g24m.parse_vote(f"The best choice is {DIGITS_5000}. No: the best choice is 2", 5) == 1


def game24_model(answer: str, **settings: Any) -> g24m.Game24Model:
    llm = ScriptedLLM(lambda prompt, request: answer)
    return g24m.Game24Model(llm, g24m.Game24Settings(**settings), Memory(), g24m.ValueCache())


def test_evaluate_all_survives_a_5000_digit_vote():
    model = game24_model(f"The best choice is {DIGITS_5000}", method_evaluate="vote", n_evaluate_sample=2)
    states = [g24m.Game24State(puzzle="4 9 10 13", lines=(line,)) for line in ("4 + 9 = 13 (left: 10 13 13)",
                                                                               "10 - 4 = 6 (left: 6 9 13)")]
    assert asyncio.run(model.evaluate_all(states)) == [0.0, 0.0]


def test_every_completion_is_cut_once_where_it_enters(capsys):
    """1 MB from a server that ignores max_tokens reaches no parser: the LLM layer cuts it."""
    runaway = "\n" * 1_000_000
    [completion] = asyncio.run(ScriptedLLM(lambda prompt, request: runaway).generate("propose", max_tokens=256))
    assert len(completion.text) == MAX_COMPLETION_CHARS and completion.finish_reason == "length"
    assert "1,000,000-character answer" in capsys.readouterr().err
    [short] = asyncio.run(ScriptedLLM(lambda prompt, request: "4 + 9 = 13 (left: 10 13 13)").generate("p"))
    assert short.text == "4 + 9 = 13 (left: 10 13 13)" and short.finish_reason != "length"


def test_game24_proposer_reads_a_runaway_answer_up_to_the_bound():
    step = "4 + 9 = 13 (left: 10 13 13)\n"
    model = game24_model(step + "\n" * 1_000_000 + "10 - 4 = 6 (left: 6 9 13)\n")
    proposals = asyncio.run(model.propose(g24m.Game24State(puzzle="4 9 10 13", lines=())))
    assert proposals == ["4 + 9 = 13 (left: 10 13 13)"]  # the line past the bound was never read


def test_tictactoe_winner_parser_reads_a_runaway_answer_up_to_the_bound():
    llm = ScriptedLLM(lambda prompt, request: "none\n" * 200_000 + "Winner: O")
    [completion] = asyncio.run(llm.generate("who won?"))
    assert len(completion.text) == MAX_COMPLETION_CHARS
    assert tttq.parse_winner(completion.text) == "none"  # "Winner: O", past the bound, was never read
