"""A simulated model for ALFWorld (for tests and benchmarks; always labelled simulated).

It reads our prompts back (``prompts.read_game_section``) and answers each role the way a
careful player would, from the transcript alone (no hidden game state):

- actor: the next command of a systematic player (search receptacles in order, take the
  object, treat it, put it away). With ``error_rate`` > 0 a call is "confused" with that
  probability: every sample is a wrong command (or a sentence that is no command).
  Each reflection in the prompt's memory halves the confusion, and places the memory
  names are searched first -- so memory helps, as it should.
- world model: the game's answer, predicted from what the transcript has shown (asked with
  the world model's own prompt, or with the actor's prompt continued after "> command").
- critic: sub-goals met so far, ``k/N``; "OK." when the prompt allows it and the last
  critic line already says so.
- reflection: where the objects were seen, and a plan (or a corrected critic, when asked
  for one as the original did).
"""

from __future__ import annotations

import re

from ..llm.base import BaseLLM, Completion
from ..llm.registry import BackendOptions
from ..llm.scripted import ScriptedRequest, oracle_backend
from .prompts import (
    ACTOR_HEAD,
    CRITIC_HEAD,
    FEEDBACK_MARK,
    HIDDEN_ACTION,
    OK_OPTION,
    REFLECT_HEAD,
    WORLD_HEAD,
    GameSection,
    Turn,
    parse_critic,
    read_game_section,
)
from .world import APPLIANCES, VERBS, World, kind_of

SAMPLE_LOGPROB = -0.05  # per token, for the player's command
CONFUSED_LOGPROB = -0.02  # a confused sample ranks first


def world_of(section: GameSection) -> World:
    return World.from_transcript(section.intro, [(t.action, t.observation) for t in section.turns])


def memory_hints(memory: list[str]) -> list[str]:
    """Receptacles a memory says objects were seen at ("... is at the desk 1")."""
    found = re.findall(r"\bat the (\w+ \d+)", " ".join(memory).lower())
    return list(dict.fromkeys(found))


# -- the player ------------------------------------------------------------------------------
def next_command(world: World, hints: list[str] | None = None) -> str:
    task = world.task
    if task is None:
        return "look"
    held = world.holding
    if task.kind == "examine":
        if world.is_task_object(held):
            lamp_home = next((r for r, items in world.contents.items() if any(kind_of(i) == task.lamp for i in items)), "")
            if lamp_home:
                if world.location != lamp_home:
                    return f"go to {lamp_home}"
                lamp = next(i for i in world.contents[lamp_home] if kind_of(i) == task.lamp)
                return f"use {lamp}"
            return search(world, hints, prefer_lamp=True)
        return fetch(world, hints)
    if world.is_task_object(held):
        if task.kind in APPLIANCES and f"{VERBS[task.kind]}:{held}" not in world.treated:
            appliance = next((r for r in world.receptacles if kind_of(r) == APPLIANCES[task.kind]), "")
            if not appliance:
                return "look"
            if world.location != appliance:
                return f"go to {appliance}"
            return f"{VERBS[task.kind]} {held} with {appliance}"
        targets = [r for r in world.receptacles if kind_of(r) == task.target]
        if not targets:
            return "look"
        target = next((r for r in targets if any(o in world.placed for o in world.contents.get(r, []))), targets[0])
        return at_open(world, target, f"move {held} to {target}")
    return fetch(world, hints)


def at_open(world: World, recep: str, command: str) -> str:
    """``command``, once the player stands at ``recep`` and it is open."""
    if world.location != recep:
        return f"go to {recep}"
    if recep in world.closed:
        return f"open {recep}"
    return command


def fetch(world: World, hints: list[str] | None) -> str:
    """Go to a seen task object and take it; else search. One already in a receptacle of the
    target type is taken last (a clean / heat / cool task still needs it treated)."""
    task = world.task
    assert task is not None
    seen = [(recep, item) for recep, items in world.contents.items() for item in items
            if world.is_task_object(item) and item not in world.placed]
    seen.sort(key=lambda found: kind_of(found[0]) == task.target)
    for recep, item in seen:
        return at_open(world, recep, f"take {item} from {recep}")
    return search(world, hints)


def search(world: World, hints: list[str] | None, prefer_lamp: bool = False) -> str:
    here = world.location
    if here and here in world.closed:
        return f"open {here}"
    task = world.task
    order = [r for r in (hints or []) if r in world.receptacles]
    rest = [r for r in world.receptacles if r not in order]
    if prefer_lamp:
        rest.sort(key=lambda r: kind_of(r) not in {"desk", "sidetable", "dresser", "nightstand"})
    else:
        rest.sort(key=lambda r: task is not None and kind_of(r) == task.target)
    for recep in order + rest:
        if recep not in world.visited:
            return f"go to {recep}"
    return "look"


# -- the other roles ---------------------------------------------------------------------------
def predict_observation(world: World, action: str) -> str:
    """The game's answer as far as the transcript lets one know."""
    words = action.strip().lower()
    m = re.match(r"go to (.+)$", words)
    if m and m.group(1) in world.receptacles and m.group(1) != world.location:
        recep = m.group(1)
        if kind_of(recep) in {"fridge", "microwave", "cabinet", "drawer", "safe"} and recep not in world.opened:
            return f"You arrive at {recep}. The {recep} is closed."
        items = world.contents.get(recep, [])
        seen = ", ".join(f"a {i}" for i in items) if items else "nothing"
        return f"You arrive at {recep}. On the {recep}, you see {seen}."
    m = re.match(r"open (.+)$", words)
    if m and m.group(1) == world.location and m.group(1) in world.closed:
        items = world.contents.get(m.group(1), [])
        seen = ", ".join(f"a {i}" for i in items) if items else "nothing"
        return f"You open the {m.group(1)}. The {m.group(1)} is open. In it, you see {seen}."
    m = re.match(r"take (.+?) from (.+)$", words)
    if m and not world.holding and m.group(2) == world.location and m.group(1) in world.contents.get(m.group(2), []):
        return f"You pick up the {m.group(1)} from the {m.group(2)}."
    m = re.match(r"move (.+?) to (.+)$", words)
    if m and m.group(1) == world.holding and m.group(2) == world.location:
        return f"You move the {m.group(1)} to the {m.group(2)}."
    m = re.match(r"(clean|heat|cool) (.+?) with (.+)$", words)
    if m and m.group(2) == world.holding and m.group(3) == world.location and kind_of(m.group(3)) == APPLIANCES[m.group(1)]:
        return f"You {m.group(1)} the {m.group(2)} using the {m.group(3)}."
    m = re.match(r"use (.+)$", words)
    if m and m.group(1) in world.contents.get(world.location, []):
        return f"You turn on the {m.group(1)}."
    if words == "inventory":
        return f"You are carrying: a {world.holding}." if world.holding else "You are not carrying anything."
    return "Nothing happens."


def critic_line(world: World) -> str:
    met, total = world.progress()
    task = world.task
    goals = task.subgoals if task else ["finish the task"]
    listed = "; ".join(f"({i}) {g}" for i, g in enumerate(goals, 1))
    done = ", ".join(str(i) for i in range(1, met + 1)) or "none"
    return f"Critic: sub-goals: {listed}. Met: {done}. Value: {met}/{total}"


def reflection_text(world: World, turns: list[Turn]) -> str:
    task = world.task
    seen = []
    if task is not None:
        for recep, items in world.contents.items():
            seen += [f"The {i} is at the {recep}." for i in items if world.is_task_object(i) or kind_of(i) == task.lamp]
    wasted = [t for t in turns if t.observation.startswith("Nothing happens")]
    parts = [f"I used {len(turns)} steps without finishing."]
    if wasted:
        parts.append(f"{len(wasted)} commands did nothing.")
    parts += seen or ["I did not find the object; next time I search the receptacles I did not visit."]
    if task is not None:
        parts.append("Next time I go there first and finish: " + "; ".join(task.subgoals) + ".")
    return " ".join(parts)


def critic_feedback(world: World, turns: list[Turn]) -> str:
    """A corrected critic for the next attempt (the original's kind of reflection)."""
    met, total = world.progress()
    last = next((t.critic for t in reversed(turns) if t.critic), None)
    said = f"my last critic line said {parse_critic(last)[0].split('Value:')[-1].strip() or 'nothing'}" if last else \
        "I wrote no critic line after the start"
    task = world.task
    goals = task.subgoals if task else ["finish the task"]
    plan = "; ".join(f"{k}/{total} after I {g}" for k, g in enumerate(goals, 1))
    return (f"In this attempt {said} and I reached {met}/{total} by the end. "
            f"{reflection_text(world, turns)} The critic should give {plan}.")


# -- the rule -------------------------------------------------------------------------------------
def _completion(text: str, logprob: float) -> Completion:
    tokens = text.split() or [""]
    return Completion(text=text, finish_reason="stop", tokens=tokens, token_logprobs=[logprob] * len(tokens))


def confusion(world: World, good: str, rng) -> str:
    """A plausible wrong command, or sometimes a sentence that is no command at all."""
    if rng.random() < 0.2:
        return "I should think about where to look next."
    wrong = [c for c in world.candidates() if c != good and not c.startswith(("examine", "close"))]
    return rng.choice(wrong) if wrong else "look"


def make_rule(error_rate: float = 0.0):
    def rule(prompt: str, request: ScriptedRequest):
        section = read_game_section(prompt)
        world = world_of(section)
        if prompt.startswith(ACTOR_HEAD) and section.pending:  # the actor's prompt as the world model
            return predict_observation(world, section.pending)
        if prompt.startswith(ACTOR_HEAD):
            good = next_command(world, memory_hints(section.memory))
            rate = error_rate * (0.5 ** len(section.memory))
            answers = [_completion(good, SAMPLE_LOGPROB) for _ in range(request.n)]
            if rng_hit(request, rate):  # a confused call: no sample is the right command
                answers = [_completion(confusion(world, good, request.rng), CONFUSED_LOGPROB) for _ in range(request.n)]
            return answers
        if prompt.startswith(WORLD_HEAD):
            return predict_observation(world, section.pending)
        if prompt.startswith(CRITIC_HEAD):
            line = critic_line(world)
            last = next((t.critic for t in reversed(section.turns) if t.critic), None)
            if OK_OPTION in prompt and last and parse_critic(last)[1] == parse_critic(line)[1]:
                return HIDDEN_ACTION
            return line[len("Critic: "):]
        if prompt.startswith(REFLECT_HEAD) and prompt.rstrip().endswith(FEEDBACK_MARK):
            return critic_feedback(world, section.turns)
        if prompt.startswith(REFLECT_HEAD):
            return reflection_text(world, section.turns)
        return "look"

    return rule


def rng_hit(request: ScriptedRequest, rate: float) -> bool:
    return rate > 0 and request.rng.random() < rate


def oracle_llm(error_rate: float, options: BackendOptions) -> BaseLLM:
    """The ``oracle[:rate]`` backend of the ALFWorld entry point (simulated)."""
    return oracle_backend(make_rule(error_rate), error_rate, options)