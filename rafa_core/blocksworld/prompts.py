"""Prompts, in this project's own words; few-shot examples come from our own simulator.

Three kinds:
- the world model, one few-shot prompt per action kind: given a state and an action, say
  what *changes* (the answer is applied to the previous state by the text layer);
- the prior prompt (the default, structured as the original's PlanBench-style prompt):
  solved problems, each a ``[STATEMENT]`` (start state and goal) and a ``[PLAN]`` of plain
  action lines ending in ``[PLAN END]``; then the current problem stated from the state at
  the last *even* depth, whose plan lines (the last one or two actions) are scored;
- the trajectory prompt (``--prior_context trajectory``): solved trajectories (a goal line,
  ``[STATE 0]``, ``[ACTION 1]``, ``[STATE 1]``, ...), then the current trajectory ending in
  ``[ACTION k]``; the log-likelihood of each legal action as the continuation gives the priors.

The examples use blocks of other colours (magenta, black, cyan, green, violet) than the
instances (red, blue, orange, yellow, white), so no example is ever a copy of the task.
``--prompt_path`` replaces the whole set with a JSON file of the shape ``PromptSet.to_json``
writes (``python -m rafa_core.blocksworld.prompts > prompts.json`` dumps the default).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..llm.errors import UserError
from .domain import ACTION_KINDS, Action, Atom, State, apply, pick_up, put_down, shortest_plan, stack, state_from_stacks, unstack
from .text import render_action, render_change, render_goal, render_state

RULES = (
    "I am playing with a set of blocks. I can pick up a block only if it is clear (nothing "
    "is on it), it is on the table and my hand is empty. I can unstack a block from on top "
    "of another block only if it is clear and my hand is empty. I can put down or stack "
    "only the block I am holding, and I can stack it only on top of a clear block. After "
    "picking up or unstacking, my hand holds that block; after putting down or stacking, "
    "my hand is empty again."
)

WORLD_INTRO = RULES + (
    "\n\nFor each action below I write down what changes: the facts that become true "
    "(\"now\") and the facts that stop being true (\"no longer\"). Complete the last "
    "[CHANGE] line in the same style, on one line, and write nothing else."
)

PRIOR_INTRO = RULES + (
    "\n\nBelow, each problem gives the blocks at the start and the goal, then a plan that "
    "reaches the goal, one action per line."
)

PLAN_INTRO = RULES + (
    "\n\nBelow are plans that reach a goal. Each lists the goal, then the states and the "
    "actions in order."
)


@dataclass
class WorldExample:
    state: str
    action: str
    change: str


@dataclass
class PromptSet:
    world_intro: str = WORLD_INTRO
    world_examples: dict[str, list[WorldExample]] = field(default_factory=dict)
    plan_intro: str = PLAN_INTRO
    plan_examples: list[str] = field(default_factory=list)
    prior_intro: str = PRIOR_INTRO
    prior_examples: list[str] = field(default_factory=list)

    @classmethod
    def default(cls) -> "PromptSet":
        return cls(world_examples=default_world_examples(), plan_examples=default_plan_examples(),
                   prior_examples=default_prior_examples())

    def to_json(self) -> dict[str, Any]:
        return {
            "world_intro": self.world_intro,
            "world_examples": {
                kind: [[e.state, e.action, e.change] for e in examples]
                for kind, examples in self.world_examples.items()
            },
            "plan_intro": self.plan_intro,
            "plan_examples": list(self.plan_examples),
            "prior_intro": self.prior_intro,
            "prior_examples": list(self.prior_examples),
        }

    @classmethod
    def from_json(cls, data: Any, source: str = "prompt file") -> "PromptSet":
        try:
            world = {
                str(kind): [WorldExample(str(s), str(a), str(c)) for s, a, c in examples]
                for kind, examples in data["world_examples"].items()
            }
            prompts = cls(
                world_intro=str(data.get("world_intro", WORLD_INTRO)),
                world_examples=world,
                plan_intro=str(data.get("plan_intro", PLAN_INTRO)),
                plan_examples=[str(t) for t in data["plan_examples"]],
                prior_intro=str(data.get("prior_intro", PRIOR_INTRO)),
                # A prompt file from before the PlanBench-style prior gets the default examples.
                prior_examples=[str(t) for t in data.get("prior_examples", default_prior_examples())],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"{source}: not a BlocksWorld prompt set ({type(exc).__name__}: {exc})")
        missing = [k for k in ACTION_KINDS if not prompts.world_examples.get(k)]
        if missing:
            raise UserError(f"{source}: no world-model examples for {', '.join(missing)}")
        return prompts


def load_prompts(path: str | Path | None) -> PromptSet:
    if path is None:
        return PromptSet.default()
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read --prompt_path {path}: {exc.strerror or exc}")
    except ValueError as exc:
        raise UserError(f"--prompt_path {path}: not valid JSON ({exc})")
    return PromptSet.from_json(data, str(path))


# -- the default examples, computed by the simulator -------------------------------------------
def _world_example(state: State, action: Action) -> WorldExample:
    return WorldExample(render_state(state), render_action(action), render_change(state, apply(state, action)))


def default_world_examples() -> dict[str, list[WorldExample]]:
    s1 = state_from_stacks([["magenta", "black"], ["cyan"]])
    s2 = state_from_stacks([["green"], ["violet", "magenta", "cyan"], ["black"]])
    h1 = state_from_stacks([["magenta"], ["green", "black"]], holding="cyan")
    h2 = state_from_stacks([["violet", "cyan"], ["magenta"]], holding="green")
    return {
        "pick-up": [_world_example(s1, pick_up("cyan")), _world_example(s2, pick_up("black"))],
        "put-down": [_world_example(h1, put_down("cyan")), _world_example(h2, put_down("green"))],
        "stack": [_world_example(h1, stack("cyan", "black")), _world_example(h2, stack("green", "magenta"))],
        "unstack": [_world_example(s1, unstack("black", "magenta")), _world_example(s2, unstack("cyan", "magenta"))],
    }


def trajectory_text(goal: frozenset[Atom], states: Sequence[State], actions: Sequence[Action]) -> str:
    """``[GOAL]``, ``[STATE 0]``, then ``[ACTION i]`` / ``[STATE i]`` pairs."""
    lines = [f"[GOAL] {render_goal(goal)}", f"[STATE 0] {render_state(states[0])}"]
    for i, action in enumerate(actions, 1):
        lines.append(f"[ACTION {i}] {render_action(action)}")
        if i < len(states):
            lines.append(f"[STATE {i}] {render_state(states[i])}")
    return "\n".join(lines)


def solved_example(init: State, goal: frozenset[Atom]) -> str:
    plan = shortest_plan(init, goal) or []
    states = [init]
    for action in plan:
        states.append(apply(states[-1], action))
    return trajectory_text(goal, states, plan) + "\n[GOAL REACHED]"


def default_plan_examples() -> list[str]:
    return [
        solved_example(state_from_stacks([["cyan", "magenta"], ["black"]]), frozenset({("on", "cyan", "black")})),
        solved_example(
            state_from_stacks([["green", "violet"], ["magenta"], ["black", "cyan"]]),
            frozenset({("on", "magenta", "cyan"), ("on", "violet", "green")}),
        ),
    ]


def statement(state: State, goal: frozenset[Atom]) -> str:
    """A ``[STATEMENT]`` block: the start state and the goal."""
    return f"[STATEMENT]\nAt the start, {render_state(state)}.\nThe goal is that {render_goal(goal)}.\n\nPlan:\n[PLAN]\n"


def prior_example(init: State, goal: frozenset[Atom]) -> str:
    plan = shortest_plan(init, goal) or []
    return statement(init, goal) + "".join(f"{render_action(a)}\n" for a in plan) + "[PLAN END]"


def default_prior_examples() -> list[str]:
    return [
        prior_example(state_from_stacks([["cyan", "magenta"], ["black"]]), frozenset({("on", "cyan", "black")})),
        prior_example(
            state_from_stacks([["green", "violet"], ["magenta"], ["black", "cyan"]]),
            frozenset({("on", "magenta", "cyan"), ("on", "violet", "green")}),
        ),
        prior_example(
            state_from_stacks([["black"], ["magenta", "cyan", "green"]]),
            frozenset({("on", "magenta", "black"), ("on", "cyan", "green")}),
        ),
    ]


# -- building prompts -------------------------------------------------------------------------------
def world_model_prompt(prompts: PromptSet, state: State, action: Action) -> str:
    """The per-kind few-shot prompt; the model continues after ``[CHANGE]`` (one line)."""
    shots = "\n\n".join(
        f"[STATE] {e.state}\n[ACTION] {e.action}\n[CHANGE] {e.change}"
        for e in prompts.world_examples.get(action.kind, [])
    )
    return (
        f"{prompts.world_intro}\n\n{shots}\n\n"
        f"[STATE] {render_state(state)}\n[ACTION] {render_action(action)}\n[CHANGE]"
    )


def plan_prefix(prompts: PromptSet, goal: frozenset[Atom], states: Sequence[State], actions: Sequence[Action]) -> str:
    """The plan prompt up to ``[ACTION k]``, where the next action's text is scored."""
    shots = "\n\n".join(prompts.plan_examples)
    current = trajectory_text(goal, states, actions)
    return f"{prompts.plan_intro}\n\n{shots}\n\n{current}\n[ACTION {len(actions) + 1}]"


def prior_prefix(prompts: PromptSet, goal: frozenset[Atom], state: State) -> str:
    """The prior prompt up to ``[PLAN]``: solved problems, then the current one stated from
    ``state`` (the state at the last even depth); the plan lines that follow are scored."""
    shots = "\n\n".join(prompts.prior_examples)
    return f"{prompts.prior_intro}\n\n{shots}\n\n{statement(state, goal)}"


def action_continuation(action: Action) -> str:
    """The scored continuation: a leading space (it follows ``]``) and the line's end."""
    return f" {render_action(action)}\n"


if __name__ == "__main__":
    print(json.dumps(PromptSet.default().to_json(), indent=1))
