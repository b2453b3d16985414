"""The LLM-backed task model for the Game of 24: proposer, critic, final answer, reflections.

The planner's state is a partial plan (:class:`Game24State`); an action is one line. The
transition is known (append the line), so ``predict`` needs no LLM. What RAFA learns is
carried by two lesson lists in the memory: step lessons go to the proposer, numbers
lessons to the critic, each as a context message before the prompt.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from ..llm.base import BaseLLM, Completion, Prompt, as_messages
from ..llm.draws import Draws
from ..llm.memo import Memo
from ..memory import Memory
from ..search.base import Plan
from . import prompts
from .improvements import Improvements
from .env import ParseError, fmt_numbers, is_answer_line, left_numbers_text, parse_number, parse_numbers

VALUE_OF_LABEL = {"sure": 20.0, "likely": 1.0, "impossible": 0.001}
VALUE_TEMPERATURE = 0.3
STEP_LESSONS, NUMBERS_LESSONS = "step_lessons", "numbers_lessons"
MAX_LESSONS = 40  # per list (--parsed-lessons): the context stays short however long an episode runs
# The original asked every request for up to 1000 tokens (G10).
ORIGINAL_MAX_TOKENS = 1000
# --short-answers: answer lengths per request kind: cheaper and faster on a small local
# model, but a verbose critic can be cut before its label.
SHORT_MAX_TOKENS = {"propose": 256, "plan": 256, "value": 160, "vote": 400, "reflect": 160}
# Stops at the start of the prompt's next example: a small model tends to continue the
# few-shot pattern of our prompts.
STOP_AT_NEXT_INPUT = ["\nInput:"]
STOP_AT_NEXT_NUMBERS = ["\nNumbers:"]
_LESSON = re.compile(r"^(.{1,120}?)\s*->\s*(sure|impossible)\b", re.IGNORECASE)
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
# Answers are read up to here (a plan or a reflection is a few hundred characters): a
# runaway answer costs milliseconds, whatever its length.
MAX_ANSWER_CHARS = 8000


@dataclass(frozen=True)
class Game24State:
    """A puzzle, the steps the environment accepted, and the lines planned after them."""

    puzzle: str
    committed: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()

    @property
    def all_lines(self) -> tuple[str, ...]:
        return self.committed + self.lines

    @cached_property  # asked for every prompt and value of a search; a state never changes
    def numbers(self) -> str:
        """The numbers left after the last line (as written, tidied), or the puzzle's."""
        if not self.all_lines:
            return self.puzzle
        text = left_numbers_text(self.all_lines[-1])
        if text is None:
            return ""
        try:
            return fmt_numbers(parse_numbers(text))
        except ParseError:
            return text

    @property
    def has_answer(self) -> bool:
        return bool(self.all_lines) and is_answer_line(self.all_lines[-1])


@dataclass
class Game24Settings:
    method_generate: str = "propose"  # or "sample"
    method_evaluate: str = "value"  # or "vote"
    prompt_sample: str = "cot"  # standard | cot, for method_generate == "sample"
    n_generate_sample: int = 10
    n_evaluate_sample: int = 1
    temperature: float = 0.7
    improved: Improvements = field(default_factory=Improvements)

    def max_tokens(self, kind: str) -> int:
        return SHORT_MAX_TOKENS[kind] if self.improved.short_answers else ORIGINAL_MAX_TOKENS


async def ask(llm: BaseLLM, settings: Game24Settings, draws: Draws, prompt: Prompt, n: int, *,
              temperature: float, kind: str, stop: list[str] | None, reused_first: int = 0) -> list[Completion]:
    """``n`` samples of a request. As the original, every call is a fresh draw; with
    ``--value-cache`` a repeated request reuses samples ``reused_first ..`` instead."""
    params = dict(temperature=temperature, max_tokens=settings.max_tokens(kind), stop=stop)
    if settings.improved.value_cache:
        first = reused_first
    else:
        first = draws.first_sample(prompt, n, **params)
    return await llm.generate(prompt, n=n, first_sample=first, **params)


def clean_line(line: str) -> str:
    """A model's line without list marks, bullets or surrounding quotes."""
    return _LIST_MARK.sub("", line.strip()).strip().strip("`").strip()


def plan_lines(text: str, limit: int = 4) -> list[str]:
    """The step and answer lines in a model's free text (headers and chatter dropped)."""
    lines = []
    for raw in text[:MAX_ANSWER_CHARS].splitlines():
        line = clean_line(raw)
        if line and (left_numbers_text(line) is not None or is_answer_line(line)):
            lines.append(line)
            if is_answer_line(line) or len(lines) >= limit:
                break
    return lines


_BARE_STEP = re.compile(r"^\s*(-?\d+(?:/\d+)?)\s*([-+*/])\s*(-?\d+(?:/\d+)?)\s*=\s*(-?\d+(?:\.\d+)?(?:/\d+)?)\s*\.?$")


def complete_left(line: str, numbers: str) -> str:
    """``a op b = c`` without its ``(left: ...)`` part gets it from the numbers it started
    from (small models often drop it); the claimed result ``c`` is kept, right or wrong."""
    match = _BARE_STEP.match(line[:80])
    if match is None:
        return line
    try:
        pool = parse_numbers(numbers)
        a, b, c = (parse_number(match.group(i)) for i in (1, 3, 4))
        for operand in (a, b):
            pool.remove(operand)
    except (ParseError, ValueError):
        return line
    return f"{line.strip().rstrip('.')} (left: {fmt_numbers(pool + [c])})"


_WORD = re.compile(r"[a-z]+")


def label_value(text: str) -> float:
    """The value of one critic answer: the label on its last non-empty line (else 0)."""
    lines = text.strip().splitlines()  # stripped: its last line, if any, is not blank
    if not lines:
        return 0.0
    for word in reversed(_WORD.findall(lines[-1].lower())):
        if word in VALUE_OF_LABEL:
            return VALUE_OF_LABEL[word]
    return 0.0


def parse_vote(text: str, n_choices: int) -> int | None:
    """The 0-based choice named by ``The best choice is N`` (the last such phrase)."""
    found = re.findall(r"best choice is\s*(?:choice\s*)?(\d+)", text, re.IGNORECASE)
    # A choice number has a few digits; int() refuses numbers over 4,300 digits (ValueError).
    if found and len(found[-1]) <= 6 and 1 <= int(found[-1]) <= n_choices:
        return int(found[-1]) - 1
    return None


# Critic answers per exact critic request (--value-cache): one episode's memo. The key
# holds the lessons the critic sees and the candidate's numbers (or answer), so a repeated
# evaluation in the same memory state costs nothing and concurrent duplicates make one call.
ValueCache = Memo[str, float]


def critic_key(prompt: Prompt) -> str:
    return json.dumps(as_messages(prompt), sort_keys=True)


@dataclass
class Game24Model:
    """One planning call's view of the task: the LLM, the settings, what memory holds."""

    llm: BaseLLM
    settings: Game24Settings
    memory: Memory = field(default_factory=Memory)
    values: ValueCache = field(default_factory=ValueCache)
    # Which attempt of this episode plans now (--value-cache: a repeated request within
    # one attempt reuses its answer, a later attempt draws fresh samples).
    attempt: int = 0
    # The episode's draws: without --value-cache every request is a fresh draw.
    draws: Draws = field(default_factory=lambda: Draws("game24"))

    # -- context from memory ---------------------------------------------------------------
    def proposer_prompt(self, text: str, intro: bool = True) -> Prompt:
        lessons = self.memory.examples_for(STEP_LESSONS)
        if self.settings.improved.parsed_lessons:
            return prompts.with_lessons(text, prompts.PROPOSER_LESSONS_HEAD, lessons)
        return prompts.with_reflections(text, prompts.PROPOSER_LESSONS_HEAD, lessons, intro=intro)

    def critic_prompt(self, text: str) -> Prompt:
        lessons = self.memory.examples_for(NUMBERS_LESSONS)
        if self.settings.improved.parsed_lessons:
            return prompts.with_lessons(text, prompts.CRITIC_LESSONS_HEAD, lessons)
        return prompts.with_reflections(text, prompts.CRITIC_LESSONS_HEAD, lessons)

    async def _ask(self, prompt: Prompt, n: int, *, temperature: float, kind: str, stop: list[str] | None,
                   reused_first: int = 0) -> list[str]:
        completions = await ask(self.llm, self.settings, self.draws, prompt, n, temperature=temperature,
                                kind=kind, stop=stop, reused_first=reused_first)
        return [c.text or "" for c in completions]

    async def sample(self, prompt: Prompt, n: int, stop: list[str] | None = None, kind: str = "plan") -> list[str]:
        return await self._ask(prompt, n, temperature=self.settings.temperature, kind=kind,
                               stop=stop or STOP_AT_NEXT_INPUT, reused_first=self.attempt * n)

    # -- TaskModel ---------------------------------------------------------------------------
    async def propose(self, state: Game24State) -> list[str]:
        s = self.settings
        if state.numbers == "24":
            # Only 24 is left: ask for the answer line, with the steps so far.
            n = 1 if s.method_generate == "propose" else s.n_generate_sample
            texts = await self.sample(self.proposer_prompt(prompts.cot_prompt(state.puzzle, state.all_lines)), n)
            answers = [next((ln for ln in plan_lines(t) if is_answer_line(ln)), "") for t in texts]
            return _unique(a for a in answers if a)
        if s.method_generate == "propose":
            [text] = await self.sample(self.proposer_prompt(prompts.propose_prompt(state.numbers)), 1, kind="propose")
            steps = [complete_left(clean_line(ln), state.numbers) for ln in text.splitlines()]
            return _unique(ln for ln in steps if left_numbers_text(ln) is not None)[: s.n_generate_sample]
        wrap = prompts.cot_prompt if s.prompt_sample == "cot" else prompts.standard_prompt
        texts = await self.sample(
            self.proposer_prompt(wrap(state.puzzle, state.all_lines)), s.n_generate_sample, stop=["\n"]
        )
        return _unique(ln for t in texts for ln in plan_lines(t, limit=1))

    async def predict(self, state: Game24State, action: str) -> Game24State:
        return replace(state, lines=state.lines + (action,))

    async def evaluate(self, state: Game24State) -> float:
        if not state.lines:
            return 0.0
        if len(state.all_lines) >= 4 and not state.has_answer:
            return 0.0  # four lines and still no answer: a failed plan
        if state.has_answer:
            text, stop = prompts.value_answer_prompt(state.puzzle, state.all_lines[-1]), STOP_AT_NEXT_INPUT
        elif state.numbers:
            text, stop = prompts.value_prompt(state.numbers), STOP_AT_NEXT_NUMBERS
        else:
            return 0.0  # the line says nothing about the numbers left
        prompt = self.critic_prompt(text)
        if self.settings.improved.value_cache:
            return await self.values.get(critic_key(prompt), lambda: self._value(prompt, stop))
        return await self._value(prompt, stop)  # the original: no value cache, a fresh draw

    async def _value(self, prompt: Prompt, stop: list[str]) -> float:
        texts = await self._ask(prompt, self.settings.n_evaluate_sample, temperature=VALUE_TEMPERATURE,
                                kind="value", stop=stop)
        return sum(label_value(t) for t in texts)

    async def evaluate_all(self, states: list[Game24State]) -> list[float] | None:
        """Votes (``--method_evaluate vote``): one prompt over all candidates; else None."""
        if self.settings.method_evaluate != "vote" or not states:
            return None
        choices = ["\n".join(s.all_lines) for s in states]
        prompt = self.critic_prompt(prompts.vote_prompt(states[0].puzzle, choices))
        n = self.settings.n_evaluate_sample
        texts = await self._ask(prompt, n, temperature=self.settings.temperature, kind="vote", stop=None,
                                reused_first=self.attempt * n)
        votes = [0.0] * len(states)
        for text in texts:
            choice = parse_vote(text, len(states))
            if choice is not None:
                votes[choice] += 1
        return votes

    def is_terminal(self, state: Game24State) -> bool:
        return state.has_answer or len(state.all_lines) >= 4

    # -- without search (naive / cot) ----------------------------------------------------------
    async def whole_plan(self, state: Game24State, style: str) -> list[str]:
        """A sampled answer of the standard or chain-of-thought prompt. As the original:
        ``n_generate_sample`` samples of the prompt without the committed steps, the first
        one used; ``--lean-naive``: one sample, the committed steps in the prompt."""
        wrap = prompts.cot_prompt if style == "cot" else prompts.standard_prompt
        if self.settings.improved.lean_naive:
            n, shown, limit = 1, state.all_lines, 4 - len(state.committed) + 1
        else:
            n, shown, limit = self.settings.n_generate_sample, (), 5
        texts = await self.sample(self.proposer_prompt(wrap(state.puzzle, shown), intro=False), n)
        return plan_lines(texts[0], limit=limit)


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass
class OneShotPlanner:
    """No look-ahead (``--planning naive|cot``): the model's one sampled answer is the plan."""

    style: str = "standard"

    async def plan(self, model: Game24Model, state: Game24State) -> Plan:
        lines = await model.whole_plan(state, self.style)
        return Plan(actions=lines, value=0.0, tree={"style": self.style, "sampled": lines})


# -- learning from feedback ------------------------------------------------------------------
def parse_lessons(text: str) -> list[str]:
    """``<item> -> sure|impossible`` lines of a reflection; anything else is dropped."""
    lessons = []
    for raw in text[:MAX_ANSWER_CHARS].splitlines():
        match = _LESSON.match(clean_line(raw))
        if match:
            lessons.append(f"{match.group(1).strip()} -> {match.group(2).lower()}")
    return lessons


def checked_lines(plan: str, checked: int) -> str:
    """The lines of a plan the checker judged (it stops at the first wrong one): what the
    original showed its reflections (G6); lines after a wrong one have no verdict."""
    lines = [line.strip() for line in plan.splitlines() if line.strip()]
    return "\n".join(lines[:checked] if checked else lines)


@dataclass
class Reflector:
    """After each step with feedback: two reflections turn it into lessons (RAFA's learning)."""

    llm: BaseLLM
    settings: Game24Settings
    puzzle: str
    concurrent: bool = True  # False: one reflection after the other (the original's pattern)
    draws: Draws = field(default_factory=lambda: Draws("game24"))

    async def learn(self, memory: Memory, action: str, obs: dict[str, Any], reward: float, info: dict[str, Any]) -> None:
        memory.add_feedback(obs.get("feedback", ""), reward, {"verdicts": info.get("verdicts", [])})
        feedback = obs.get("feedback") or ""
        episode_over = info.get("success") or info.get("steps_left", 1) <= 0
        if not feedback or not str(action).strip() or episode_over:
            return  # nothing to learn from, or no later plan to use the lessons
        plan = checked_lines(str(action), len(info.get("verdicts", [])))
        asks = [prompts.reflect_formula_prompt(self.puzzle, plan, feedback),
                prompts.reflect_numbers_prompt(self.puzzle, plan, feedback)]
        if self.concurrent:
            outputs = await asyncio.gather(*(self._ask(a) for a in asks))
        else:
            outputs = [await self._ask(a) for a in asks]
        for kind, text in zip((STEP_LESSONS, NUMBERS_LESSONS), outputs):
            if not self.settings.improved.parsed_lessons:
                memory.add_example(kind, text.strip())  # the original kept the raw text
                continue
            known = set(memory.examples_for(kind))
            for lesson in parse_lessons(text):
                if lesson not in known and len(known) < MAX_LESSONS:
                    memory.add_example(kind, lesson)
                    known.add(lesson)

    async def _ask(self, prompt: str) -> str:
        [completion] = await ask(self.llm, self.settings, self.draws, prompt, 1,
                                 temperature=self.settings.temperature, kind="reflect", stop=STOP_AT_NEXT_INPUT)
        return completion.text or ""
