"""The Game of 24 environment: exact arithmetic, safe parsing, an exhaustive solver.

Nothing here evaluates text with ``eval``: step lines are matched by a regular expression
over short lines, answer expressions by a small tokenizer and recursive-descent parser
that knows only numbers, ``+ - * /`` and parentheses. All arithmetic is in ``Fraction``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from itertools import combinations
from math import gcd
from typing import Any, Iterator

from ..environment import Closing

TARGET = Fraction(24)
MAX_LINE_CHARS = 200  # longer lines are rejected before any parsing
MAX_NUMBER_CHARS = 12  # a literal longer than this is not a Game-of-24 number
MAX_NESTING = 30

CORRECT, ILLEGAL, MISCALCULATED, DEAD_END, WRONG_ANSWER = (
    "correct", "illegal", "miscalculated", "dead end", "wrong answer",
)
STEP_REWARD, ANSWER_REWARD = 1.0, 10.0

_NUM = r"-?\d+(?:\.\d+)?(?:/\d+)?"
_STEP_LINE = re.compile(
    rf"^\s*({_NUM})\s*([-+*/×÷])\s*({_NUM})\s*=\s*({_NUM})\s*\(\s*left\s*:\s*([^()]*)\)\s*\.?\s*$",
    re.IGNORECASE,
)
_LEFT_PART = re.compile(r"\(\s*left\s*:\s*([^()]*)\)", re.IGNORECASE)
_ANSWER_PREFIX = re.compile(r"^\s*answer\s*:\s*", re.IGNORECASE)
_OPS = {"+": "+", "-": "-", "*": "*", "/": "/", "×": "*", "÷": "/"}


class ParseError(ValueError):
    """Text that is not a well-formed step line, number or expression."""


# -- numbers ---------------------------------------------------------------------------------
@lru_cache(maxsize=4096)  # a pure function (only short texts succeed): a run parses the same few numbers again and again
def parse_number(text: str) -> Fraction:
    """``12``, ``-3``, ``2.5`` or ``8/3`` as an exact fraction."""
    text = text.strip()
    if not text or len(text) > MAX_NUMBER_CHARS or not re.fullmatch(_NUM, text):
        raise ParseError(f"not a number: {text[:20]!r}")
    if "/" in text:
        top, bottom = text.split("/")
        if int(bottom) == 0:
            raise ParseError("zero denominator")
        return Fraction(top) / Fraction(bottom)
    return Fraction(text)


def parse_numbers(text: str) -> list[Fraction]:
    """Space- or comma-separated numbers (a puzzle, a "left:" list)."""
    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    if not parts or len(parts) > 8:
        raise ParseError(f"not a list of numbers: {text[:40]!r}")
    return [parse_number(p) for p in parts]


def fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def fmt_numbers(values: list[Fraction] | tuple[Fraction, ...]) -> str:
    return " ".join(fmt(v) for v in sorted(values))


def apply_op(a: Fraction, op: str, b: Fraction) -> Fraction | None:
    """``a op b``, or None for a division by zero."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return None if b == 0 else a / b


# -- the solver --------------------------------------------------------------------------------
def _key(numbers: list[Fraction] | tuple[Fraction, ...]) -> tuple[Fraction, ...]:
    return tuple(sorted(numbers))


def next_states(numbers: tuple[Fraction, ...]) -> Iterator[tuple[Fraction, str, Fraction, Fraction, tuple[Fraction, ...]]]:
    """Every (a, op, b, result, numbers left) one step can make: all pairs, all operators."""
    for i, j in combinations(range(len(numbers)), 2):
        rest = numbers[:i] + numbers[i + 1 : j] + numbers[j + 1 :]
        x, y = max(numbers[i], numbers[j]), min(numbers[i], numbers[j])
        seen: set[tuple[Fraction, str, Fraction]] = set()
        # Natural steps first (big - small, big / small): solutions read like a person's.
        for a, op, b in ((x, "+", y), (x, "*", y), (x, "-", y), (x, "/", y), (y, "-", x), (y, "/", x)):
            result = apply_op(a, op, b)
            if result is None or (a, op, b) in seen:
                continue
            seen.add((a, op, b))
            yield a, op, b, result, _key(rest + (result,))


def _reachable(numbers: tuple[Fraction, ...]) -> bool:
    return _reaches_24(tuple(sorted((v.numerator, v.denominator) for v in numbers)))


# The search itself runs on (numerator, denominator) pairs of ints: exact like Fraction, but
# hashing a Fraction (a modular inverse) made a fresh process's first searches cost milliseconds.
@lru_cache(maxsize=None)  # a pure function of its argument: memoisation only
def _reaches_24(numbers: tuple[tuple[int, int], ...]) -> bool:
    if len(numbers) == 1:
        return numbers[0] == (24, 1)
    for i, j in combinations(range(len(numbers)), 2):
        rest = numbers[:i] + numbers[i + 1 : j] + numbers[j + 1 :]
        if any(_reaches_24(tuple(sorted(rest + (r,)))) for r in _results(numbers[i], numbers[j])):
            return True
    return False


def _results(x: tuple[int, int], y: tuple[int, int]) -> list[tuple[int, int]]:
    """Every value one step makes of two numbers (as next_states: + * and - / both ways)."""
    (a, b), (c, d) = x, y
    results = [_ratio(a * d + c * b, b * d), _ratio(a * c, b * d), _ratio(a * d - c * b, b * d), _ratio(c * b - a * d, b * d)]
    if c:
        results.append(_ratio(a * d, b * c))
    if a:
        results.append(_ratio(c * b, d * a))
    return results


def _ratio(numerator: int, denominator: int) -> tuple[int, int]:
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    g = gcd(numerator, denominator)
    return numerator // g, denominator // g


def can_reach_24(numbers: list[Fraction] | tuple[Fraction, ...]) -> bool:
    """Exact: some order of pairings and operators turns ``numbers`` into exactly 24."""
    return bool(numbers) and _reachable(_key(numbers))


def solve(numbers: list[Fraction] | tuple[Fraction, ...]) -> list[str] | None:
    """A solution as step lines plus the answer line, or None. Deterministic."""
    exprs = [(v, fmt(v)) for v in sorted(numbers)]
    lines: list[str] = []
    while len(exprs) > 1:
        values = tuple(v for v, _ in exprs)
        for a, op, b, result, left in next_states(values):
            if _reachable(left):
                break
        else:
            return None
        ia = next(k for k, (v, _) in enumerate(exprs) if v == a)
        ea = exprs.pop(ia)[1]
        ib = next(k for k, (v, _) in enumerate(exprs) if v == b)
        eb = exprs.pop(ib)[1]
        lines.append(f"{fmt(a)} {op} {fmt(b)} = {fmt(result)} (left: {fmt_numbers(left)})")
        exprs.append((result, f"({ea} {op} {eb})"))
        exprs.sort(key=lambda e: e[0])
    if exprs[0][0] != TARGET:
        return None
    expr = exprs[0][1]
    if expr.startswith("(") and expr.endswith(")"):
        expr = expr[1:-1]
    lines.append(f"Answer: {expr} = 24")
    return lines


# -- expressions (answers) ---------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([-+*/×÷()]))")


def tokenize(text: str) -> list[str]:
    if len(text) > MAX_LINE_CHARS:
        raise ParseError("expression too long")
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].isspace():
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ParseError(f"unexpected character {text[pos]!r}")
        number, symbol = match.groups()
        if number is not None and len(number) > MAX_NUMBER_CHARS:
            raise ParseError("number too long")
        tokens.append(number if number is not None else _OPS.get(symbol, symbol))
        pos = match.end()
    return tokens


class _Parser:
    """expr := term (('+'|'-') term)*; term := unary (('*'|'/') unary)*;
    unary := '-' unary | atom; atom := number | '(' expr ')'."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0
        self.literals: list[Fraction] = []

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ParseError("expression ends too early")
        self.pos += 1
        return token

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            value = apply_op(value, op, self.term())  # type: ignore[assignment]
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            result = apply_op(value, op, self.unary())
            if result is None:
                raise ZeroDivisionError("division by zero")
            value = result
        return value

    def unary(self) -> Fraction:
        if self.peek() == "-":
            self.take()
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise ParseError("nested too deeply")
            value = -self.unary()
            self.depth -= 1
            return value
        return self.atom()

    def atom(self) -> Fraction:
        token = self.take()
        if token == "(":
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise ParseError("nested too deeply")
            value = self.expr()
            if self.take() != ")":
                raise ParseError("unbalanced parentheses")
            self.depth -= 1
            return value
        if token[0].isdigit():
            value = Fraction(token)
            self.literals.append(value)
            return value
        raise ParseError(f"unexpected {token!r}")


def evaluate_expression(text: str) -> tuple[Fraction, list[Fraction]]:
    """The exact value of an arithmetic expression and the number literals it uses.

    Raises ParseError for anything but numbers, + - * / and parentheses, and
    ZeroDivisionError for a division by zero.
    """
    parser = _Parser(tokenize(text))
    value = parser.expr()
    if parser.peek() is not None:
        raise ParseError(f"unexpected {parser.peek()!r}")
    return value, parser.literals


# -- lines -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepLine:
    a: Fraction
    op: str
    b: Fraction
    result: Fraction
    left: tuple[Fraction, ...]


def parse_step_line(line: str) -> StepLine:
    if len(line) > MAX_LINE_CHARS:
        raise ParseError("line too long")
    match = _STEP_LINE.match(line)
    if match is None:
        raise ParseError("not a step line `a op b = c (left: ...)`")
    a, op, b, c, left = match.groups()
    return StepLine(parse_number(a), _OPS[op], parse_number(b), parse_number(c), tuple(parse_numbers(left)))


def is_answer_line(line: str) -> bool:
    return bool(_ANSWER_PREFIX.match(line))


def answer_expression(line: str) -> str:
    """The expression of ``Answer: <expr> = 24`` (the part before the first ``=``)."""
    return _ANSWER_PREFIX.sub("", line, count=1).split("=", 1)[0].strip()


def left_numbers_text(line: str) -> str | None:
    """The text of a line's ``(left: ...)`` part, or None."""
    match = _LEFT_PART.search(line[:MAX_LINE_CHARS])
    return match.group(1).strip() if match else None


@dataclass
class Verdict:
    line: str
    verdict: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"line": self.line, "verdict": self.verdict, "reason": self.reason}

    def sentence(self, number: int) -> str:
        return f"Line {number} `{self.line}`: {self.verdict} — {self.reason}."


def judge_answer(line: str, puzzle: tuple[Fraction, ...]) -> Verdict:
    expr = answer_expression(line)
    try:
        value, literals = evaluate_expression(expr)
    except ZeroDivisionError:
        return Verdict(line, WRONG_ANSWER, "it divides by zero")
    except ParseError as exc:
        return Verdict(line, WRONG_ANSWER, f"it is not an arithmetic expression ({exc})")
    if sorted(literals) != sorted(puzzle):
        return Verdict(line, WRONG_ANSWER, f"it must use each of {fmt_numbers(puzzle)} exactly once")
    if value != TARGET:
        return Verdict(line, WRONG_ANSWER, f"it evaluates to {fmt(value)}, not 24")
    return Verdict(line, CORRECT, "it uses every number once and makes 24")


def judge_step(line: str, remaining: list[Fraction]) -> tuple[Verdict, list[Fraction] | None]:
    """The verdict on one step line and, when correct, the numbers left after it."""
    try:
        step = parse_step_line(line)
    except (ParseError, ValueError) as exc:
        return Verdict(line, ILLEGAL, f"not a valid step ({exc})"), None
    pool = list(remaining)
    for operand in (step.a, step.b):
        if operand not in pool:
            return Verdict(line, ILLEGAL, f"{fmt(operand)} is not among the remaining numbers {fmt_numbers(remaining)}"), None
        pool.remove(operand)
    actual = apply_op(step.a, step.op, step.b)
    if actual is None:
        return Verdict(line, ILLEGAL, "it divides by zero"), None
    if actual != step.result:
        return Verdict(line, MISCALCULATED, f"{fmt(step.a)} {step.op} {fmt(step.b)} is {fmt(actual)}, not {fmt(step.result)}"), None
    left = pool + [actual]
    if sorted(step.left) != sorted(left):
        return Verdict(line, ILLEGAL, f"the numbers left should be {fmt_numbers(left)}, not {fmt_numbers(step.left)}"), None
    if not can_reach_24(left):
        return Verdict(line, DEAD_END, f"{fmt_numbers(left)} cannot lead to 24"), None
    return Verdict(line, CORRECT, f"{fmt_numbers(left)} can still reach 24"), left


# -- the environment ---------------------------------------------------------------------------
@dataclass
class Game24Env(Closing):
    """One puzzle at a time. ``step`` takes a multi-line plan and judges it line by line.

    With ``feedback`` the correct step lines are committed (the next plan continues from
    them) and a text evaluation is returned; without it nothing is committed and the
    observation carries no text (only reward and success reach the agent).
    """

    puzzles: list[str]
    feedback: bool = True
    max_step: int = 20
    index: int | None = None
    puzzle: tuple[Fraction, ...] = ()
    history: list[str] = field(default_factory=list)
    remaining: list[Fraction] = field(default_factory=list)
    steps_taken: int = 0
    solved: bool = False

    def reset(self, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        self.index = index
        self.puzzle = tuple(parse_numbers(self.puzzles[index]))
        self.history = []
        self.remaining = list(self.puzzle)
        self.steps_taken = 0
        self.solved = False
        return self.observation(""), {}

    def observation(self, text: str) -> dict[str, Any]:
        return {"puzzle": self.puzzles[self.index], "history": list(self.history), "feedback": text}

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, dict[str, Any]]:
        self.steps_taken += 1
        verdicts, accepted, remaining = self.judge(str(action or ""))
        reward = sum(ANSWER_REWARD if is_answer_line(v.line) else STEP_REWARD for v in verdicts if v.verdict == CORRECT)
        self.solved = any(v.verdict == CORRECT and is_answer_line(v.line) for v in verdicts)
        if self.feedback:
            self.history.extend(accepted)
            self.remaining = remaining
        text = self.feedback_text(verdicts) if self.feedback else ""
        done = self.solved or self.steps_taken >= self.max_step
        info = {
            "success": self.solved,
            "verdicts": [v.to_json() for v in verdicts],
            "committed": accepted if self.feedback else [],
            "steps_left": self.max_step - self.steps_taken,
        }
        return self.observation(text), reward, done, info

    def judge(self, plan: str) -> tuple[list[Verdict], list[str], list[Fraction]]:
        """Check the plan's lines in order from the current state; stop at the first wrong one."""
        remaining = list(self.remaining)
        lines = [line.strip() for line in plan.splitlines() if line.strip()]
        if not lines:
            return [Verdict("", ILLEGAL, "the plan is empty")], [], remaining
        verdicts: list[Verdict] = []
        accepted: list[str] = []
        for line in lines:
            if is_answer_line(line):
                verdicts.append(judge_answer(line, self.puzzle))
                break
            verdict, left = judge_step(line, remaining)
            verdicts.append(verdict)
            if left is None:
                break
            accepted.append(line)
            remaining = left
        return verdicts, accepted, remaining

    @staticmethod
    def feedback_text(verdicts: list[Verdict]) -> str:
        return "\n".join(v.sentence(i) for i, v in enumerate(verdicts, 1))
