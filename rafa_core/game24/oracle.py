"""A simulated model for the Game of 24 (backend ``oracle`` / ``oracle:<rate>``).

It answers our prompts by the rules, using the exact solver: the proposer lists correct
next steps, the critic labels numbers by whether they can reach 24, the reflections read
the checker's feedback. With an error rate ``r`` each proposed step is miscalculated with
probability ``r``, each critic label of two or more numbers is wrong with probability
``r``, and so is each vote, answer judgement and sampled plan. Lessons in the context are heeded: a step the
proposer was told is impossible is not proposed again, and the critic answers a numbers
set it has a lesson about by that lesson. It is a test double: always labelled simulated.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from ..llm.registry import BackendOptions
from ..llm.scripted import ScriptedLLM, ScriptedRequest, oracle_backend
from . import prompts
from .env import (
    CORRECT,
    ParseError,
    apply_op,
    can_reach_24,
    fmt,
    fmt_numbers,
    is_answer_line,
    judge_answer,
    left_numbers_text,
    next_states,
    parse_numbers,
    parse_step_line,
)

PROPOSALS_PER_ANSWER = 8
MEMO_SIZE = 4096  # numbers sets remembered by the solver memos below (a run sees a few hundred)


_FIELD_VALUE = re.compile(r"\s*(.*)")


def _last_field(text: str, name: str) -> str:
    """The rest of the last line starting with ``name`` (``Input:``, ``Numbers:``).

    Found from the end (the prompt's own fields come last): the few-shot examples before
    them are never scanned, which made this a tenth of the simulated server's CPU."""
    start = text.rfind("\n" + name) + 1
    if start == 0 and not text.startswith(name):
        return ""
    return _FIELD_VALUE.match(text, start + len(name)).group(1).strip()


def _section(text: str, start: str, end: str | None) -> list[str]:
    """The non-empty lines between the last ``start`` line and the next ``end`` line."""
    after = text.rsplit(start, 1)[-1] if start in text else ""
    if end and end in after:
        after = after.split(end, 1)[0]
    return [ln.strip() for ln in after.splitlines() if ln.strip()]


_PROMPT_START = re.compile(r"^Game of 24", re.MULTILINE)


def _lessons(text: str, head: str) -> dict[str, str]:
    """``item -> label`` lessons of the context that starts with ``head`` (it runs to the
    prompt proper: raw reflection texts may hold blank lines)."""
    if head not in text:
        return {}
    after = text.split(head, 1)[1]
    start = _PROMPT_START.search(after)
    block = after[: start.start()] if start else after
    lessons = {}
    for line in block.splitlines():
        item, arrow, label = line.rpartition("->")
        if arrow:
            lessons[item.strip()] = label.strip()
    return lessons


# The solver's work depends on the numbers only, and a run asks about the same few hundred
# numbers sets thousands of times: remembered per set (pure functions: memoisation only).
@lru_cache(maxsize=MEMO_SIZE)
def _next_steps(numbers: tuple[Fraction, ...]) -> tuple[tuple[str, ...], frozenset[str]]:
    """Every next step line from these (sorted) numbers, and the ones that can still reach 24."""
    steps = tuple(prompts.all_next_steps(numbers))
    return steps, frozenset(s for s in steps if can_reach_24(parse_step_line(s).left))


@lru_cache(maxsize=MEMO_SIZE)
def _numbers_verdict(field: str) -> tuple[str, int, bool]:
    """A ``Numbers:`` field tidied, how many numbers it holds, whether they can reach 24."""
    numbers = fmt_numbers(parse_numbers(field))
    values = parse_numbers(numbers)
    return numbers, len(values), can_reach_24(values)


def _corrupt(line: str, rng: random.Random) -> str:
    """A plausible but miscalculated version of a step line."""
    step = parse_step_line(line)
    wrong = step.result + rng.choice((1, -1, 2))
    pool = list(step.left)
    pool.remove(step.result)
    return f"{fmt(step.a)} {step.op} {fmt(step.b)} = {fmt(wrong)} (left: {fmt_numbers(pool + [wrong])})"


def _flip(label: str, rng: random.Random) -> str:
    return rng.choice(["impossible", "likely"]) if label == "sure" else rng.choice(["sure", "likely"])


@dataclass
class Game24Oracle:
    """The rule behind the simulated backend: ``(prompt text, request) -> answers``."""

    error_rate: float = 0.0

    def __call__(self, text: str, request: ScriptedRequest) -> list[str]:
        handlers = (
            (prompts.VALUE_ANSWER_HEAD, self.judge_answer),
            (prompts.VALUE_HEAD, self.value),
            (prompts.VOTE_HEAD, self.vote),
            (prompts.REFLECT_FORMULA_HEAD, self.reflect_steps),
            (prompts.REFLECT_NUMBERS_HEAD, self.reflect_numbers),
            (prompts.PROPOSE_HEAD, self.propose),
            (prompts.COT_HEAD, self.solve_cot),
            (prompts.STANDARD_HEAD, self.solve_standard),
        )
        for head, handler in handlers:
            if head in text:
                answers = []
                for _ in range(request.n):
                    try:
                        answers.append(handler(text, request.rng))
                    except (ParseError, ValueError, IndexError):
                        answers.append("I am not sure.")
                return answers
        return ["I do not understand the question."] * request.n

    def wrong(self, rng: random.Random) -> bool:
        return rng.random() < self.error_rate

    # -- proposer --------------------------------------------------------------------------
    def propose(self, text: str, rng: random.Random) -> str:
        numbers = parse_numbers(_last_field(text, "Input:"))
        avoid = {k for k, v in _lessons(text, prompts.PROPOSER_LESSONS_HEAD).items() if v == "impossible"}
        all_steps, reaching = _next_steps(tuple(sorted(numbers)))
        steps = list(all_steps)
        rng.shuffle(steps)
        shown = steps[:PROPOSALS_PER_ANSWER]
        good = [s for s in steps if s in reaching and s not in avoid]
        if good and not any(s in good for s in shown):
            shown[rng.randrange(len(shown))] = rng.choice(good)  # a good model sees one way on
        lines = [_corrupt(s, rng) if self.wrong(rng) else s for s in shown]
        return "\n".join(ln for ln in lines if ln not in avoid)

    # -- critic ----------------------------------------------------------------------------
    def value(self, text: str, rng: random.Random) -> str:
        numbers, count, reachable = _numbers_verdict(_last_field(text, "Numbers:"))
        known = _lessons(text, prompts.CRITIC_LESSONS_HEAD).get(numbers)
        if known in ("sure", "impossible"):
            return f"I was told about {numbers} before.\n{known}"
        label = "sure" if reachable else "impossible"
        # Whether one number is 24 needs no judgement: errors only where there is a choice.
        # (The prompt holds only the numbers, so a fixed mislabel of "24" would sink every puzzle.)
        if count > 1 and self.wrong(rng):
            label = _flip(label, rng)
        return f"Trying combinations of {numbers}.\n{label}"

    def judge_answer(self, text: str, rng: random.Random) -> str:
        puzzle = tuple(parse_numbers(_last_field(text, "Input:")))
        answer = _last_field(text, "Answer:")
        ok = judge_answer(f"Answer: {answer}", puzzle).verdict == CORRECT
        if self.wrong(rng):
            ok = not ok
        return "Checking the numbers and the result.\n" + ("sure" if ok else "impossible")

    def vote(self, text: str, rng: random.Random) -> str:
        choices = re.split(rf"^{prompts.VOTE_CHOICE_PREFIX} \d+:\n", text, flags=re.MULTILINE)[1:]
        puzzle = tuple(parse_numbers(_last_field(text.split(f"{prompts.VOTE_CHOICE_PREFIX} 1:")[0], "Input:")))
        best = 0
        for i, choice in enumerate(choices):
            if self._promising(choice.strip().splitlines()[-1] if choice.strip() else "", puzzle):
                best = i
                break
        if self.wrong(rng) and choices:
            best = rng.randrange(len(choices))
        return f"Comparing the choices.\n{prompts.BEST_CHOICE} {best + 1}"

    @staticmethod
    def _promising(line: str, puzzle: tuple[Fraction, ...]) -> bool:
        if is_answer_line(line):
            return judge_answer(line, puzzle).verdict == CORRECT
        left = left_numbers_text(line)
        try:
            return left is not None and can_reach_24(parse_numbers(left))
        except ParseError:
            return False

    # -- reflections (they read the checker, so they are right) --------------------------------
    def reflect_steps(self, text: str, rng: random.Random) -> str:
        return "\n".join(
            f"{line} -> {'sure' if verdict == CORRECT else 'impossible'}"
            for line, verdict in _checked_lines(text)
            if not is_answer_line(line)
        )

    def reflect_numbers(self, text: str, rng: random.Random) -> str:
        lessons = []
        for line, _ in _checked_lines(text):
            left = left_numbers_text(line)
            try:
                numbers = parse_numbers(left) if left else None
            except ParseError:
                numbers = None
            if numbers:
                lessons.append(f"{fmt_numbers(numbers)} -> {'sure' if can_reach_24(numbers) else 'impossible'}")
        return "\n".join(lessons)

    # -- whole plans and final answers -------------------------------------------------------
    def solve_cot(self, text: str, rng: random.Random) -> str:
        lines = self._continue(text, rng)
        return "\n".join(lines)

    def solve_standard(self, text: str, rng: random.Random) -> str:
        return self._continue(text, rng)[-1]

    def _continue(self, text: str, rng: random.Random) -> list[str]:
        """The rest of a solution after the steps already in the prompt, steps and answer."""
        puzzle = parse_numbers(_last_field(text, "Input:"))
        query = text.rsplit("\nInput:", 1)[-1]
        done = [ln.strip() for ln in query.splitlines() if left_numbers_text(ln) is not None]
        exprs = [(v, fmt(v)) for v in puzzle]
        for line in done:
            exprs = _replay(exprs, line) or exprs
        avoid = {k for k, v in _lessons(text, prompts.PROPOSER_LESSONS_HEAD).items() if v == "impossible"}
        lines: list[str] = []
        while len(exprs) > 1:
            values = tuple(sorted(v for v, _ in exprs))
            options = [prompts.step_line(a, op, b, r, left) for a, op, b, r, left in next_states(values)]
            good = [o for o in options if can_reach_24(parse_step_line(o).left) and o not in avoid]
            line = rng.choice(good or options)
            if self.wrong(rng):
                line = _corrupt(line, rng)
            lines.append(line)
            exprs = _replay(exprs, line) or exprs[:1]
        expr = exprs[0][1]
        if expr.startswith("(") and expr.endswith(")"):
            expr = expr[1:-1]
        if self.wrong(rng):
            expr = expr.replace("+", "-", 1) if "+" in expr else expr + " + 1"
        return lines + [f"Answer: {expr} = 24"]


def _checked_lines(text: str) -> list[tuple[str, str]]:
    """(line, verdict) pairs from the checker's feedback in a reflection prompt."""
    checker = "\n".join(_section(text, "\nChecker:\n", "\nLessons:"))
    return re.findall(r"^Line \d+ `([^`]*)`: ([a-z ]+?) —", checker, re.MULTILINE)


def _replay(exprs: list[tuple[Fraction, str]], line: str) -> list[tuple[Fraction, str]] | None:
    """Apply a step line to (value, expression) pairs; None if its operands are not there."""
    try:
        step = parse_step_line(line)
    except ParseError:
        return None
    pool = list(exprs)
    picked = []
    for operand in (step.a, step.b):
        match = next((k for k, (v, _) in enumerate(pool) if v == operand), None)
        if match is None:
            return None
        picked.append(pool.pop(match)[1])
    value = apply_op(step.a, step.op, step.b)
    if value is None:
        return None
    return pool + [(value, f"({picked[0]} {step.op} {picked[1]})")]


def oracle_llm(error_rate: float, options: BackendOptions) -> ScriptedLLM:
    """The registry's oracle factory for this benchmark."""
    return oracle_backend(Game24Oracle(error_rate), error_rate, options)