"""The natural-language layer: canonical rendering and tolerant parsing.

Rendering is canonical (one sentence per state, fixed fact order) so that equal states
give equal prompts.  Parsing never raises: it returns ``None`` (or an empty result) for
text it cannot use, and the caller turns that into an invalid transition.

A *change* sentence is what the world model is asked for: the facts that became true
("the hand is now holding the red block") and those that stopped holding ("the red block
is no longer on the table"), joined like a state sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from .domain import (
    COLOURS,
    HANDEMPTY,
    Action,
    Atom,
    State,
    block_order,
    blocks_of,
    is_consistent,
)

# -- rendering -----------------------------------------------------------------------------------
_FACT_RANK = {"clear": 0, "handempty": 1, "holding": 1, "on": 2, "ontable": 3}


def _atom_key(atom: Atom) -> tuple:
    return (_FACT_RANK.get(atom[0], 9), [block_order(b) for b in atom[1:]])


def render_fact(atom: Atom) -> str:
    kind = atom[0]
    if kind == "clear":
        return f"the {atom[1]} block is clear"
    if kind == "handempty":
        return "the hand is empty"
    if kind == "holding":
        return f"the hand is holding the {atom[1]} block"
    if kind == "on":
        return f"the {atom[1]} block is on top of the {atom[2]} block"
    if kind == "ontable":
        return f"the {atom[1]} block is on the table"
    raise ValueError(f"unknown fact {atom}")


def join_clauses(clauses: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(clauses) <= 1:
        return "".join(clauses)
    return ", ".join(clauses[:-1]) + " and " + clauses[-1]


def canonical_facts(atoms: Iterable[Atom]) -> list[Atom]:
    return sorted(atoms, key=_atom_key)


def render_state(state: Iterable[Atom]) -> str:
    """Clear blocks, the hand, stacked blocks, blocks on the table (each in colour order)."""
    return join_clauses([render_fact(a) for a in canonical_facts(state)])


def render_goal(goal: Iterable[Atom]) -> str:
    return render_state(goal)


def render_action(action: Action) -> str:
    a = action.args
    if action.kind == "pick-up":
        return f"pick up the {a[0]} block"
    if action.kind == "put-down":
        return f"put down the {a[0]} block"
    if action.kind == "stack":
        return f"stack the {a[0]} block on top of the {a[1]} block"
    return f"unstack the {a[0]} block from on top of the {a[1]} block"


_NOW = {
    "clear": "the {0} block is now clear",
    "handempty": "the hand is now empty",
    "holding": "the hand is now holding the {0} block",
    "on": "the {0} block is now on top of the {1} block",
    "ontable": "the {0} block is now on the table",
}
_NO_LONGER = {
    "clear": "the {0} block is no longer clear",
    "handempty": "the hand is no longer empty",
    "holding": "the hand is no longer holding the {0} block",
    "on": "the {0} block is no longer on top of the {1} block",
    "ontable": "the {0} block is no longer on the table",
}


def render_change(before: State, after: State) -> str:
    """What became true, then what stopped holding, each in canonical order."""
    added = [_NOW[a[0]].format(*a[1:]) for a in canonical_facts(after - before)]
    removed = [_NO_LONGER[a[0]].format(*a[1:]) for a in canonical_facts(before - after)]
    return join_clauses(added + removed) if (added or removed) else "nothing changes"


# -- parsing --------------------------------------------------------------------------------------
# Whole words only: a word matched from its middle would be a wrong name ("tired" -> "red"),
# and a long run of letters would be re-scanned from every position (quadratic time).
_WORD = r"\b([a-z]+)\b"
_BLOCK = rf"(?:the\s+)?{_WORD}(?:\s+block)?"
_FACT_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("holding", re.compile(rf"\bhand\s+is\s+(?:now\s+)?holding\s+{_BLOCK}")),
    ("holding", re.compile(rf"\bholding\s+{_BLOCK}")),
    ("handempty", re.compile(r"\bhand\s+is\s+(?:now\s+)?empty\b")),
    ("ontable", re.compile(rf"{_BLOCK}\s+is\s+(?:now\s+)?on\s+(?:the\s+)?table\b")),
    ("on", re.compile(rf"{_BLOCK}\s+is\s+(?:now\s+)?on(?:\s+the)?(?:\s+top\s+of)?\s+{_BLOCK}")),
    ("clear", re.compile(rf"{_BLOCK}\s+is\s+(?:now\s+)?clear\b")),
]
_NEGATION = re.compile(r"\b(?:no\s+longer|not|isn't|is\s+n't|anymore|nor)\b")
_CLAUSE_SPLIT = re.compile(r"\s*(?:[,;.]|\band\b|\n)\s*")
# No tag nests: a run of "[" without "]" stays linear to scan.
_TAG = re.compile(r"\[[^\[\]]*\]")
# An answer is read up to here: every sentence we parse is far shorter, and a runaway
# answer (100 kB of one clause) then costs milliseconds, not seconds.
MAX_TEXT_CHARS = 4000


def _normalise(text: str) -> str:
    text = _TAG.sub(" ", str(text)[:MAX_TEXT_CHARS].lower())
    text = text.replace("\u2019", "'")
    return re.sub(r"\s+", " ", text).strip()


def _clauses(text: str) -> list[str]:
    return [c for c in _CLAUSE_SPLIT.split(_normalise(text)) if c]


def parse_fact(clause: str, blocks: Sequence[str] | None = None) -> Atom | None:
    """The one fact a clause states, or None; names must be known blocks."""
    known = set(blocks) if blocks is not None else set(COLOURS)
    return _fact_in(_normalise(clause), known)


def _fact_in(clause: str, known: set[str]) -> Atom | None:
    """``parse_fact`` on an already normalised clause."""
    for kind, pattern in _FACT_PATTERNS:
        match = pattern.search(clause)
        if not match:
            continue
        args = tuple(g for g in match.groups())
        if kind == "handempty":
            return HANDEMPTY
        if all(a in known for a in args) and len(set(args)) == len(args):
            return (kind, *args)
    return None


def parse_facts(text: str, blocks: Sequence[str] | None = None) -> frozenset[Atom]:
    """Every positive fact stated in ``text`` (negated clauses are skipped)."""
    known = set(blocks) if blocks is not None else set(COLOURS)
    facts = set()
    for clause in _clauses(text):
        if _NEGATION.search(clause):
            continue
        fact = _fact_in(clause, known)
        if fact is not None:
            facts.add(fact)
    return frozenset(facts)


def parse_state(text: str, blocks: Sequence[str] | None = None) -> State | None:
    """A complete, physically possible state from a state sentence, else None."""
    facts = parse_facts(text, blocks)
    names = tuple(blocks) if blocks is not None else blocks_of(facts)
    if not facts or not is_consistent(facts, names):
        return None
    return facts


_ACTION_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("unstack", re.compile(rf"\bunstack\s+{_BLOCK}\s+(?:from\s+)?(?:on\s+)?(?:top\s+of\s+|off\s+(?:of\s+)?)?{_BLOCK}")),
    ("stack", re.compile(rf"\bstack\s+{_BLOCK}\s+(?:on\s+top\s+of|onto|on)\s+{_BLOCK}")),
    ("pick-up", re.compile(rf"\bpick\s+up\s+{_BLOCK}")),
    ("pick-up", re.compile(rf"\bpick\s+{_BLOCK}\s+up\b")),
    ("put-down", re.compile(rf"\bput\s+down\s+{_BLOCK}")),
    ("put-down", re.compile(rf"\bput\s+{_BLOCK}\s+down\b")),
]
_PDDL_ACTION = re.compile(r"\(\s*(pick-up|put-down|stack|unstack)((?:\s+[a-z0-9_-]+)+)\s*\)")


def parse_action(text: str, blocks: Sequence[str] | None = None) -> Action | None:
    """An action from English ("stack the red block on top of the blue block") or PDDL
    ("(stack red blue)"); None if the text names no action over known blocks."""
    known = set(blocks) if blocks is not None else set(COLOURS)
    raw = str(text)[:MAX_TEXT_CHARS].lower()
    candidates: list[tuple[str, tuple[str, ...]]] = []
    pddl = _PDDL_ACTION.search(raw)
    if pddl:
        candidates.append((pddl.group(1), tuple(pddl.group(2).split())))
    norm = _normalise(raw)
    for kind, pattern in _ACTION_PATTERNS:
        match = pattern.search(norm)
        if match:
            candidates.append((kind, tuple(match.groups())))
    for kind, args in candidates:
        if all(a in known for a in args) and len(set(args)) == len(args):
            try:
                return Action(kind, args)
            except ValueError:
                continue
    return None


# -- change sentences ----------------------------------------------------------------------------
_CHANGE_MARKER = re.compile(r"\b(?:now|no\s+longer|anymore|not|becomes?|became)\b")


@dataclass(frozen=True)
class Change:
    added: frozenset[Atom]
    removed: frozenset[Atom]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def parse_change(text: str, blocks: Sequence[str] | None = None) -> Change:
    """Facts said to become true and facts said to stop holding; unknown clauses ignored."""
    known = set(blocks) if blocks is not None else set(COLOURS)
    added, removed = set(), set()
    for clause in _clauses(text):
        fact = _fact_in(re.sub(r"\s+", " ", _NEGATION.sub(" ", clause)).strip(), known)
        if fact is None:
            continue
        (removed if _NEGATION.search(clause) else added).add(fact)
    return Change(frozenset(added), frozenset(removed - added))


def _displaced_by(fact: Atom, state: State) -> set[Atom]:
    """Facts of ``state`` that cannot hold together with ``fact`` (a block is in one place,
    the hand holds one block or none, nothing on a clear block)."""
    kind, args = fact[0], fact[1:]
    out: set[Atom] = set()
    for atom in state:
        if atom == fact:
            continue
        a_kind, a_args = atom[0], atom[1:]
        if kind in ("on", "ontable", "holding") and a_kind in ("on", "ontable", "holding") and a_args[0] == args[0]:
            out.add(atom)  # the block moved
        if kind == "holding" and (a_kind in ("holding", "handempty") or atom == ("clear", args[0])):
            out.add(atom)
        if kind == "handempty" and a_kind == "holding":
            out.add(atom)
        if kind == "on" and (atom == ("clear", args[1]) or (a_kind == "on" and a_args[1] == args[1])):
            out.add(atom)
        if kind == "clear" and a_kind == "on" and a_args[1] == args[0]:
            out.add(atom)
    return out


def apply_change(state: State, change: Change, blocks: Sequence[str] | None = None) -> State | None:
    """The state after ``change``; facts the change contradicts are dropped.  None when
    the change says nothing usable or the result is not a possible state."""
    if not change:
        return None
    names = tuple(blocks) if blocks is not None else blocks_of(state)
    result = set(state) - change.removed
    for fact in change.added:
        result -= _displaced_by(fact, frozenset(result))
        result.add(fact)
    new = frozenset(result)
    return new if is_consistent(new, names) else None


@dataclass(frozen=True)
class Prediction:
    """A world-model answer read against the previous state."""

    state: State | None
    how: str  # "change", "full state" or "unusable"

    @property
    def valid(self) -> bool:
        return self.state is not None


def read_world_model_answer(text: str, before: State, blocks: Sequence[str] | None = None) -> Prediction:
    """Interpret a world-model answer: a change sentence applied to ``before``, or, when the
    model wrote a whole state instead, that state.  Never raises."""
    try:
        names = tuple(blocks) if blocks is not None else blocks_of(before)
        # Every action moves a block, so an answer that changes nothing cannot be right.
        if _CHANGE_MARKER.search(_normalise(text)):
            state = apply_change(before, parse_change(text, names), names)
            if state is not None and state != before:
                return Prediction(state, "change")
        state = parse_state(text, names)
        if state is not None and state != before:
            return Prediction(state, "full state")
    except Exception:  # noqa: BLE001 - model text must never crash a run
        pass
    return Prediction(None, "unusable")
