"""Prompts for the Game of 24, in this project's own words.

Structures follow the spec (standard, chain-of-thought, propose, value, value of a final
answer, vote, two reflections). The worked examples are produced by our exact solver, so
every example is right by construction. Each prompt opens with its own first line
(``*_HEAD``): the simulated oracle recognises prompts by it.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from ..llm.base import Prompt
from .env import can_reach_24, fmt, fmt_numbers, next_states, parse_numbers, solve

STANDARD_HEAD = "Game of 24: combine the four input numbers with +, -, * and / to make exactly 24."
COT_HEAD = "Game of 24, step by step: make exactly 24 from the four input numbers with +, -, * and /."
PROPOSE_HEAD = "Game of 24, next moves: list possible next steps for the numbers given."
VALUE_HEAD = "Game of 24, judge the numbers: can these numbers still make exactly 24?"
VALUE_ANSWER_HEAD = "Game of 24, judge an answer: is this a correct solution?"
VOTE_HEAD = "Game of 24, choose a move: which of the choices below is most promising?"
REFLECT_FORMULA_HEAD = "Game of 24, lessons about steps: judge each step attempted below."
REFLECT_NUMBERS_HEAD = "Game of 24, lessons about numbers: judge each set of numbers left below."
PROPOSER_LESSONS_HEAD = "Lessons from your earlier attempts at this puzzle (steps):"
CRITIC_LESSONS_HEAD = "Lessons from earlier attempts at this puzzle (numbers left):"

STANDARD_EXAMPLES = ("4 4 6 8", "2 9 10 12", "4 9 10 13", "1 4 8 8", "5 5 5 9")
PROPOSE_EXAMPLE = "2 8 8 14"
VALUE_EXAMPLES = ("10 14", "11 12", "4 4 10", "4 9 11", "5 7 8", "1 3 3", "10 10 11", "2 2 6")
VOTE_CHOICE_PREFIX = "Choice"
BEST_CHOICE = "The best choice is"


# -- examples from the solver -------------------------------------------------------------
# Examples are pure functions of constants: computed once.
@lru_cache(maxsize=None)
def _solution(puzzle: str) -> tuple[str, ...]:
    lines = solve(parse_numbers(puzzle))
    assert lines is not None, puzzle
    return tuple(lines)


@lru_cache(maxsize=None)
def _standard_examples() -> str:
    return "\n".join(f"Input: {p}\n{_solution(p)[-1]}" for p in STANDARD_EXAMPLES)


@lru_cache(maxsize=None)
def _cot_examples() -> str:
    return "\n\n".join(f"Input: {p}\nSteps:\n" + "\n".join(_solution(p)) for p in STANDARD_EXAMPLES)


def step_line(a: Fraction, op: str, b: Fraction, result: Fraction, left: tuple[Fraction, ...]) -> str:
    return f"{fmt(a)} {op} {fmt(b)} = {fmt(result)} (left: {fmt_numbers(left)})"


def all_next_steps(numbers: list[Fraction] | tuple[Fraction, ...]) -> list[str]:
    """Every distinct next step line from ``numbers`` (arithmetic and "left" always right)."""
    seen: set[str] = set()
    lines = []
    for a, op, b, result, left in next_states(tuple(sorted(numbers))):
        line = step_line(a, op, b, result, left)
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines


def _value_reasoning(numbers: str) -> tuple[str, str]:
    values = parse_numbers(numbers)
    if len(values) == 1 or not can_reach_24(values):
        tried = all_next_steps(values)[:3]
        shown = ", ".join(t.split(" (left")[0] for t in tried) or f"{numbers} is not 24"
        return f"{shown}; no way reaches 24.", "impossible"
    steps = [line.split(" (left")[0] for line in (solve(values) or [])[:-1]]
    return ", ".join(steps) + ".", "sure"


@lru_cache(maxsize=None)
def _value_examples() -> str:
    blocks = []
    for numbers in VALUE_EXAMPLES:
        reasoning, label = _value_reasoning(numbers)
        blocks.append(f"Numbers: {numbers}\n{reasoning}\n{label}")
    blocks.append(
        "Numbers: 10 12 13\n10 + 12 + 13 = 35, 13 - 10 = 3, 3 * 12 = 36; not found yet, "
        "but big numbers can often be brought to 24.\nlikely"
    )
    return "\n\n".join(blocks)


# -- the prompts ------------------------------------------------------------------------------
def standard_prompt(puzzle: str, steps: list[str] | tuple[str, ...] = ()) -> str:
    return (
        f"{STANDARD_HEAD}\nUse every input number exactly once. Reply with one line "
        f"`Answer: <expression> = 24`.\n\n{_standard_examples()}\n\nInput: {puzzle}\n"
        + "".join(f"{s}\n" for s in steps)
    )


def cot_prompt(puzzle: str, steps: list[str] | tuple[str, ...] = ()) -> str:
    return (
        f"{COT_HEAD}\nEach step takes two of the numbers still left and combines them; write it as "
        "`a op b = c (left: numbers still left)`. After three steps only 24 is left: then write "
        "`Answer: <one expression using the four inputs> = 24`.\n\n"
        f"{_cot_examples()}\n\nInput: {puzzle}\nSteps:\n" + "".join(f"{s}\n" for s in steps)
    )


@lru_cache(maxsize=None)
def _propose_example() -> str:
    return "\n".join(all_next_steps(parse_numbers(PROPOSE_EXAMPLE))[:8])


def propose_prompt(numbers: str) -> str:
    example = _propose_example()
    return (
        f"{PROPOSE_HEAD}\nEach step combines two of the numbers; write one step per line as "
        "`a op b = c (left: numbers still left)` and nothing else.\n\n"
        f"Input: {PROPOSE_EXAMPLE}\nPossible next steps:\n{example}\n\n"
        f"Input: {numbers}\nPossible next steps:\n"
    )


def value_prompt(numbers: str) -> str:
    return (
        f"{VALUE_HEAD}\nTry a few combinations, then end with one word on the last line: "
        "sure (you found a way), likely (not found yet but plausible) or impossible.\n\n"
        f"{_value_examples()}\n\nNumbers: {numbers}\n"
    )


def value_answer_prompt(puzzle: str, answer: str) -> str:
    good = _solution("4 4 6 8")[-1]
    return (
        f"{VALUE_ANSWER_HEAD}\nA correct answer uses each input number exactly once, no other "
        "numbers, and equals 24. End with one word on the last line: sure or impossible.\n\n"
        f"Input: 4 4 6 8\n{good}\nIt uses 4, 4, 6, 8 once each and makes 24.\nsure\n\n"
        "Input: 2 9 10 12\nAnswer: 2 * 12 = 24\nIt leaves out 9 and 10.\nimpossible\n\n"
        "Input: 4 9 10 13\nAnswer: (13 - 9) * (10 - 4) + 0 = 24\nIt adds a 0 that is not an input.\nimpossible\n\n"
        f"Input: {puzzle}\n{answer}\n"
    )


def vote_prompt(puzzle: str, choices: list[str]) -> str:
    listed = "\n".join(f"{VOTE_CHOICE_PREFIX} {i}:\n{c}" for i, c in enumerate(choices, 1))
    return (
        f"{VOTE_HEAD}\nEach choice is a partial solution for the input. Think about each, then write "
        f'"{BEST_CHOICE} N" on the last line, N being its number.\n\n'
        f"Input: {puzzle}\n{listed}\n"
    )


def reflect_formula_prompt(puzzle: str, plan: str, feedback: str) -> str:
    return (
        f"{REFLECT_FORMULA_HEAD}\nFor every step line of the attempt write one line "
        "`<step> -> sure` if the checker found it correct, or `<step> -> impossible` if it was "
        "wrong or cannot lead to 24. Write nothing else.\n\n"
        f"Input: {puzzle}\nAttempt:\n{plan}\nChecker:\n{feedback}\nLessons:\n"
    )


def reflect_numbers_prompt(puzzle: str, plan: str, feedback: str) -> str:
    return (
        f"{REFLECT_NUMBERS_HEAD}\nFor the numbers left after every step of the attempt write one "
        "line `<numbers> -> sure` if they can still make 24, or `<numbers> -> impossible` if not. "
        "Write nothing else.\n\n"
        f"Input: {puzzle}\nAttempt:\n{plan}\nChecker:\n{feedback}\nLessons:\n"
    )


GAME_INTRO = "We are playing the Game of 24: make 24 from four numbers with + - * /."


def with_reflections(prompt: str, head: str, reflections: list[str] | tuple[str, ...], intro: bool = False) -> Prompt:
    """The original's context structure: the reflection texts so far, as they came, in a
    user message before the prompt, present even when there are none yet (the proposer's
    is preceded by a short game intro)."""
    messages = [{"role": "user", "content": GAME_INTRO}] if intro else []
    messages.append({"role": "user", "content": head + "\n" + "\n".join(reflections)})
    messages.append({"role": "user", "content": prompt})
    return messages


def with_lessons(prompt: str, head: str, lessons: list[str] | tuple[str, ...]) -> Prompt:
    """The prompt after a context message that carries the lessons (none: the plain prompt)."""
    if not lessons:
        return prompt
    return [
        {"role": "system", "content": head + "\n" + "\n".join(lessons)},
        {"role": "user", "content": prompt},
    ]
