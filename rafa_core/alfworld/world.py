"""What a transcript says about the world: tasks, receptacles, what was seen, held and done.

This is text-level bookkeeping over ALFWorld's observations (no engine, no LLM). The model
uses it to derive candidate commands at *imagined* states; the simulated oracle uses it to
act, predict and judge like a careful player would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .prompts import HIDDEN_ACTION, put_syntax

# Short names of the six task types (the prefixes of the game folders map onto them).
TASK_PREFIXES = {
    "pick_and_place": "put",
    "pick_clean_then_place": "clean",
    "pick_heat_then_place": "heat",
    "pick_cool_then_place": "cool",
    "look_at_obj": "examine",
    "pick_two_obj": "puttwo",
}
TASK_KINDS = tuple(TASK_PREFIXES.values())

APPLIANCES = {"clean": "sinkbasin", "heat": "microwave", "cool": "fridge"}
VERBS = {"clean": "clean", "heat": "heat", "cool": "cool"}
OPENABLE = {"cabinet", "drawer", "fridge", "microwave", "safe"}

_SEE = re.compile(r"you see (.*?)\.\s*$", re.IGNORECASE)
_ITEM = re.compile(r"^(?:a|an|some|the)\s+", re.IGNORECASE)


def task_kind_of_folder(name: str) -> str:
    """``pick_two_obj_and_place-CD-None-Shelf-461`` -> ``puttwo``."""
    for prefix, kind in TASK_PREFIXES.items():
        if name.startswith(prefix):
            return kind
    raise ValueError(f"not an ALFWorld task folder: {name!r}")


def kind_of(name: str) -> str:
    """``countertop 2`` -> ``countertop``."""
    return re.sub(r"\s*\d+$", "", name.strip())


def parse_list(text: str) -> list[str]:
    """``a desk 1, a drawer 1, and a shelf 1`` -> ``['desk 1', 'drawer 1', 'shelf 1']``."""
    if text.strip().lower() in {"nothing", ""}:
        return []
    parts = re.split(r",\s*(?:and\s+)?|\s+and\s+", text)
    return [_ITEM.sub("", p.strip()).strip() for p in parts if p.strip() and p.strip() != "nothing"]


@dataclass
class Task:
    kind: str  # one of TASK_KINDS
    obj: str  # object type, e.g. "apple"
    target: str  # receptacle type ("" for examine)
    lamp: str = ""  # "desklamp" for examine

    @property
    def subgoals(self) -> list[str]:
        if self.kind == "examine":
            return [f"take a {self.obj}", f"turn on a {self.lamp} while holding it"]
        if self.kind == "puttwo":
            return [f"take a first {self.obj}", f"put it in a {self.target}",
                    f"take a second {self.obj}", f"put it in the {self.target}"]
        steps = [f"take a {self.obj}"]
        if self.kind in APPLIANCES:
            steps.append(f"{VERBS[self.kind]} it with a {APPLIANCES[self.kind]}")
        return steps + [f"put it in a {self.target}"]


_TASK_PATTERNS = [
    ("clean", r"put a clean (\w+) (?:in|on) (\w+)"),
    ("clean", r"clean some (\w+) and put it (?:in|on) (\w+)"),
    ("heat", r"put a hot (\w+) (?:in|on) (\w+)"),
    ("heat", r"heat some (\w+) and put it (?:in|on) (\w+)"),
    ("cool", r"put a cool (\w+) (?:in|on) (\w+)"),
    ("cool", r"cool some (\w+) and put it (?:in|on) (\w+)"),
    ("puttwo", r"put two (\w+) (?:in|on) (\w+)"),
    ("puttwo", r"find two (\w+) and put them (?:in|on) (\w+)"),
    ("examine", r"look at (\w+) under the (\w+)"),
    ("examine", r"examine the (\w+) with the (\w+)"),
    ("put", r"put (?:a|an|some) (\w+) (?:in|on) (\w+)"),
]


def parse_task(text: str) -> Task | None:
    match = re.search(r"your task is to:\s*(.*)", text, re.IGNORECASE)
    if not match:
        return None
    sentence = match.group(1).strip().lower()
    for kind, pattern in _TASK_PATTERNS:
        m = re.search(pattern, sentence)
        if m:
            if kind == "examine":
                return Task(kind, m.group(1), "", lamp=m.group(2))
            return Task(kind, m.group(1), m.group(2))
    return None


@dataclass
class World:
    """The world as a transcript describes it."""

    receptacles: list[str] = field(default_factory=list)
    task: Task | None = None
    location: str = ""
    holding: str = ""
    contents: dict[str, list[str]] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    opened: set[str] = field(default_factory=set)
    visited: list[str] = field(default_factory=list)
    treated: set[str] = field(default_factory=set)  # cleaned / heated / cooled objects
    placed: list[str] = field(default_factory=list)  # objects moved into a target receptacle
    lamp_on: bool = False
    lamp_on_holding: str = ""

    @classmethod
    def from_transcript(cls, intro: str, turns: list[tuple[str, str]]) -> "World":
        world = cls()
        world.read_intro(intro)
        for action, observation in turns:
            world.apply(action, observation)
        return world

    def read_intro(self, intro: str) -> None:
        m = re.search(r"looking quickly around you, you see (.*?)\.\s*(?:\n|$)", intro, re.IGNORECASE)
        if m:
            self.receptacles = parse_list(m.group(1))
        self.task = parse_task(intro)

    # -- transitions as the game reports them --------------------------------------------
    def apply(self, action: str, observation: str) -> None:
        action, obs = action.strip().lower(), observation.strip()
        low = obs.lower()
        if low.startswith("nothing happens"):
            return
        if action == HIDDEN_ACTION.lower():  # a critic history: read the command off its answer
            action = implied_action(low)
        if action.startswith("go to ") and low.startswith("you arrive at"):
            self.location = action[len("go to "):].strip()
            if self.location not in self.visited:
                self.visited.append(self.location)
        if action.startswith("open ") and low.startswith("you open"):
            self.closed.discard(action[5:].strip())
            self.opened.add(action[5:].strip())
        if action.startswith("close ") and low.startswith("you close"):
            self.closed.add(action[6:].strip())
            self.opened.discard(action[6:].strip())
        self._read_view(low)
        self._read_effect(low)

    def _read_view(self, low: str) -> None:
        here = self.location
        if not here:
            return
        if f"the {here} is closed" in low:
            self.closed.add(here)
            return
        m = _SEE.search(low)
        if m and (f"on the {here}" in low or f"the {here} is open" in low):
            self.contents[here] = parse_list(m.group(1))
            task = self.task
            if task and task.kind in ("put", "puttwo") and kind_of(here) == task.target:
                # already where the task wants it: it counts (a treated one would still need treating)
                self.placed += [o for o in self.contents[here] if self.is_task_object(o) and o not in self.placed]

    def _read_effect(self, low: str) -> None:
        m = re.match(r"you pick up the (.+?) from the (.+?)\.", low)
        if m:
            self.holding = m.group(1)
            items = self.contents.get(m.group(2), [])
            if m.group(1) in items:
                items.remove(m.group(1))
            if m.group(1) in self.placed:
                self.placed.remove(m.group(1))
            return
        m = re.match(r"you (?:move|put) the (.+?) (?:to|in|on) the (.+?)\.", low)
        if m:
            obj, recep = m.group(1), m.group(2)
            self.holding = ""
            self.contents.setdefault(recep, []).append(obj)
            if self.task and kind_of(recep) == self.task.target and obj not in self.placed:
                self.placed.append(obj)
            return
        m = re.match(r"you (clean|heat|cool) the (.+?) using the (.+?)\.", low)
        if m:
            self.treated.add(f"{m.group(1)}:{m.group(2)}")
            return
        m = re.match(r"you turn on the (.+?)\.", low)
        if m:
            self.lamp_on = True
            self.lamp_on_holding = self.holding

    # -- questions -----------------------------------------------------------------------
    def is_task_object(self, name: str) -> bool:
        return bool(self.task) and kind_of(name) == self.task.obj

    def progress(self) -> tuple[int, int]:
        """(sub-goals met, sub-goals) of the task, as far as the transcript shows."""
        task = self.task
        if task is None:
            return 0, 1
        total = len(task.subgoals)
        held = self.is_task_object(self.holding)
        if task.kind == "examine":
            return (1 if held else 0) + (1 if held and self.lamp_on and self.lamp_on_holding == self.holding else 0), total
        placed = [o for o in self.placed if self.is_task_object(o)]
        if task.kind == "puttwo":
            return min(total, 2 * len(placed) + (1 if held else 0)), total
        if task.kind in APPLIANCES:
            verb = VERBS[task.kind]
            good = [o for o in placed if f"{verb}:{o}" in self.treated]
            if good:
                return total, total
            if held:
                return (2 if f"{verb}:{self.holding}" in self.treated else 1), total
            return (1 if placed else 0), total
        if placed:
            return total, total
        return (1 if held else 0), total

    def candidates(self) -> list[str]:
        """Commands that make sense in this (possibly imagined) state."""
        out = [f"go to {r}" for r in self.receptacles if r != self.location]
        here = self.location
        if here:
            if kind_of(here) in OPENABLE:
                out.append(f"close {here}" if here in self.opened else f"open {here}")
            if not self.holding and here not in self.closed:
                out += [f"take {o} from {here}" for o in self.contents.get(here, []) if "lamp" not in o]
            if self.holding:
                out.append(f"move {self.holding} to {here}")
                for verb, appliance in APPLIANCES.items():
                    if kind_of(here) == appliance:
                        out.append(f"{VERBS[verb]} {self.holding} with {here}")
            out += [f"use {o}" for o in self.contents.get(here, []) if "lamp" in o]
            out.append(f"examine {here}")
        if self.holding:
            out.append(f"examine {self.holding}")
        return out + ["inventory", "look"]


def implied_action(low: str) -> str:
    """The command behind an observation (lower case), for transcripts that hide commands."""
    for pattern, command in ((r"you arrive at (.+?)\.", "go to {}"), (r"on the (.+?), you see", "go to {}"),
                             (r"the (.+?) is closed\.", "go to {}"), (r"you open the (.+?)\.", "open {}"),
                             (r"you close the (.+?)\.", "close {}")):
        m = re.match(pattern, low)
        if m:
            return command.format(m.group(1))
    return ""


_NAMED = re.compile(r"(\b\w+\b)\s+(\d+)")
TREATMENTS = {"fridge": "cool", "microwave": "heat", "sinkbasin": "clean"}


def mentions(text: str, name: str) -> bool:
    """``name`` ("cabinet 1") occurs in ``text`` as a whole name (not inside "cabinet 10")."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\d)", text) is not None


def original_candidates(initial: tuple[str, ...] | list[str], turns: list) -> list[str]:
    """The original's candidate commands at a (real or imagined) state: the game's first
    admissible list without its last two entries, plus, once something happened, commands
    read off the transcript at the receptacle mentioned last: open it; take each numbered
    thing seen there (use a desklamp) when the hands are empty; else put the held object
    there and cool / heat / clean it when the receptacle is a fridge / microwave / sinkbasin;
    use each desklamp seen there.
    In the installed command syntax (``move X to Y`` on alfworld 0.4)."""
    out = list(initial)
    if not turns:
        return out
    receptacles = [c[len("go to "):] for c in initial if c.startswith("go to ")]
    entries = [text for t in turns for text in (t.action, t.observation)]
    here = next((found[-1] for text in reversed(entries)
                 if (found := [r for r in receptacles if mentions(text, r)])), None)
    if here is None:
        return out
    observations = [t.observation for t in turns]
    things = [f"{w} {n}" for w, n in _NAMED.findall(entries[-1].replace(here, ""))]
    out.append(f"open {here}")
    picked = [o for o in observations if o.startswith("You pick up the")]
    dropped = [o for o in observations if o.startswith(("You put the", "You move the"))]
    holding = len(picked) > len(dropped)
    for thing in things:
        if thing.startswith("desklamp"):
            out.append(f"use {thing}")
        elif not holding:
            out.append(f"take {thing} from {here}")
    if holding:
        held = picked[-1][len("You pick up the"):].split(" from ")[0].strip()
        out.append(f"move {held} to {here}" if put_syntax() == "move" else f"put {held} in/on {here}")
        verb = TREATMENTS.get(kind_of(here))
        if verb:
            out.append(f"{verb} {held} with {here}")
    return out
