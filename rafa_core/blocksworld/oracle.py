"""Simulated backends for tests and dry runs (always labelled simulated).

The world-model rule reads the last ``[STATE]`` / ``[ACTION]`` of a world-model prompt and
answers with the simulator's change sentence.  Variants:
- ``error_rate``: with that probability (seeded from the prompt) the answer is wrong: half
  the time the change of another legal action, half the time unusable text;
- ``false_goal``: the world model claims the goal: it answers with the change to the
  nearest state where every goal atom holds, whatever the action was.
The prior rule scores action continuations: ``flat`` gives every action 0 (uniform priors),
``informative`` gives 0 to actions that start an optimal plan and -3 to the others.  It reads
both prior prompts: the trajectory one (last ``[STATE]``, ``[GOAL]``) and the PlanBench-style
one (the last ``[STATEMENT]``'s start state and goal, then the plan lines already written).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..llm.registry import BackendOptions
from ..llm.scripted import ScriptedLLM, ScriptedRequest
from .domain import Atom, DistanceTable, State, applicable_actions, apply, is_applicable
from .text import parse_action, parse_facts, parse_state, render_change

GARBAGE = "I think something about the blocks changed, maybe."
_LAST_STATE = re.compile(r"\[STATE(?: \d+)?\]([^\n]*)")
_LAST_ACTION = re.compile(r"\[ACTION(?: \d+)?\]([^\n]*)")
_LAST_GOAL = re.compile(r"\[GOAL\]([^\n]*)")
_STATEMENT_START = re.compile(r"At the start, ([^\n]*)")
_STATEMENT_GOAL = re.compile(r"The goal is that ([^\n]*)")


def _last(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.findall(text)
    return found[-1] if found else None


def nearest_goal_state(state: State, goal: frozenset[Atom], table: DistanceTable) -> State | None:
    distances = table.distances(state)
    candidates = [(d, sorted(s)) for s, d in distances.items() if goal <= s and s != state]
    return frozenset(tuple(a) for a in min(candidates)[1]) if candidates else None


@dataclass
class WorldModelRule:
    error_rate: float = 0.0
    false_goal: bool = False
    goal: frozenset[Atom] = frozenset()  # what the false-goal variant claims
    table: DistanceTable = field(default_factory=DistanceTable)  # BFS cache

    def __call__(self, prompt: str, request: ScriptedRequest) -> str:
        state_text, action_text = _last(_LAST_STATE, prompt), _last(_LAST_ACTION, prompt)
        state = parse_state(state_text or "")
        action = parse_action(action_text or "")
        if state is None or action is None or not is_applicable(state, action):
            return GARBAGE
        if self.false_goal:
            target = nearest_goal_state(state, self.goal, self.table)
            if target is not None:
                return render_change(state, target)
        if self.error_rate and request.rng.random() < self.error_rate:
            others = [a for a in applicable_actions(state) if a != action]
            if others and request.rng.random() < 0.5:
                return render_change(state, apply(state, request.rng.choice(others)))
            return GARBAGE
        return render_change(state, apply(state, action))


@dataclass
class PriorRule:
    informative: bool = False
    table: DistanceTable = field(default_factory=DistanceTable)  # BFS cache

    def __call__(self, prefix: str, continuation: str) -> float:
        if not self.informative:
            return 0.0
        if "[STATEMENT]" in prefix:
            state, goal = _statement_state_and_goal(prefix)
        else:
            state = parse_state(_last(_LAST_STATE, prefix) or "")
            goal = parse_facts(_last(_LAST_GOAL, prefix) or "")
        action = parse_action(continuation)
        if state is None or action is None or not goal or not is_applicable(state, action):
            return -3.0
        now, after = self.table.optimal_length(state, goal), self.table.optimal_length(apply(state, action), goal)
        return 0.0 if now is not None and after is not None and after < now else -3.0


def _statement_state_and_goal(prefix: str) -> tuple[State | None, frozenset[Atom]]:
    """The last ``[STATEMENT]``: its start state advanced by the plan lines already written."""
    block = prefix.rsplit("[STATEMENT]", 1)[1]
    head, _, plan = block.partition("[PLAN]")
    start = _STATEMENT_START.search(head)
    wanted = _STATEMENT_GOAL.search(head)
    state = parse_state(start.group(1)) if start else None
    goal = parse_facts(wanted.group(1)) if wanted else frozenset()
    for line in plan.strip().splitlines():
        action = parse_action(line)
        if state is None or action is None or not is_applicable(state, action):
            return None, goal
        state = apply(state, action)
    return state, goal


def make_oracle(
    error_rate: float = 0.0,
    options: BackendOptions | None = None,
    *,
    priors: str = "flat",
    false_goal: frozenset[Atom] | None = None,
) -> ScriptedLLM:
    """The simulated BlocksWorld backend (``--backend oracle[:error rate]``: flat priors)."""
    options = options or BackendOptions()
    rule = WorldModelRule(error_rate=error_rate, false_goal=false_goal is not None, goal=false_goal or frozenset())
    return ScriptedLLM(
        rule,
        name="oracle" if not error_rate else f"oracle:{float(error_rate):g}",
        loglik_rule=PriorRule(informative=priors == "informative"),
        seed=options.seed,
        usage=options.usage,
        cache=options.cache,
        concurrency=options.concurrency,
        counts_as=options.counts_as,
    )
