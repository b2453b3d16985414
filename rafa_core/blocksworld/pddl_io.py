"""Standard PDDL domain / problem files, read through the maintained ``pddl`` package.

Objects named by colours keep their names; other object names (``a b c d`` in published
sets) are mapped, in sorted order, to the colours red, blue, orange, yellow, white, ...
Instance *sets* are JSON lists of ``{"instance": <problem file relative to the JSON>,
"gold_plan": [...], "optimal_length": N}``, the format of the published step-4 / step-6 sets
and of the files our generator writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..llm.base import UserError
from .domain import ACTION_KINDS, COLOURS, HANDEMPTY, Action, Atom, State, sort_blocks
from .text import parse_action

_PREDICATES = {"clear": 1, "ontable": 1, "handempty": 0, "holding": 1, "on": 2}


@dataclass(frozen=True)
class Problem:
    name: str
    blocks: tuple[str, ...]
    init: State
    goal: frozenset[Atom]


@dataclass
class Instance:
    """One instance of a set: the problem, and the set's gold plan / optimal length if given."""

    index: int
    source: str
    problem: Problem
    gold_plan: list[Action] | None = None
    optimal_length: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class PddlReader:
    """Keeps one parser per file kind: building the grammar is the slow part."""

    def __init__(self) -> None:
        from pddl.parser.domain import DomainParser
        from pddl.parser.problem import ProblemParser

        self._domain_parser = DomainParser()
        self._problem_parser = ProblemParser()

    def check_domain(self, path: Path) -> None:
        """Refuse a domain that is not the four-operator blocks world our simulator runs."""
        domain = self._parse(self._domain_parser, path, "domain")
        actions = {a.name for a in domain.actions}
        predicates = {p.name: p.arity for p in domain.predicates}
        if actions != set(ACTION_KINDS) or any(predicates.get(k) != n for k, n in _PREDICATES.items()):
            raise UserError(
                f"{path}: not the four-operator blocks world (actions {sorted(actions)}); "
                f"expected {', '.join(ACTION_KINDS)}"
            )

    def read_problem(self, path: Path) -> Problem:
        problem = self._parse(self._problem_parser, path, "problem")
        names = {getattr(o, "name", str(o)) for o in problem.objects}
        mapping = colour_mapping(names)
        init = frozenset(self._atom(p, mapping, path) for p in problem.init)
        goal = frozenset(self._atom(p, mapping, path) for p in _conjuncts(problem.goal, path))
        if HANDEMPTY not in init and not any(a[0] == "holding" for a in init):
            raise UserError(f"{path}: the initial state says nothing about the hand")
        return Problem(str(problem.name), sort_blocks(mapping.values()), init, goal)

    @staticmethod
    def _parse(parser, path: Path, kind: str):
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot read PDDL {kind} file {path}: {exc.strerror or exc}")
        try:
            return parser(text)
        except Exception as exc:  # the parser raises lark / pddl errors of many types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"{path}: not a valid PDDL {kind} ({first[:120]})")

    @staticmethod
    def _atom(predicate, mapping: dict[str, str], path: Path) -> Atom:
        name = getattr(predicate, "name", None)
        terms = getattr(predicate, "terms", None)
        if name is None or terms is None:
            raise UserError(f"{path}: unsupported formula {predicate} (plain atoms only)")
        args = tuple(mapping.get(getattr(t, "name", str(t)), "") for t in terms)
        if _PREDICATES.get(str(name)) != len(args) or not all(args):
            raise UserError(f"{path}: unknown atom {predicate}")
        return (str(name), *args)


def _conjuncts(goal, path: Path) -> list:
    if hasattr(goal, "operands"):  # (and ...)
        if type(goal).__name__ != "And":
            raise UserError(f"{path}: goal must be a conjunction of atoms")
        return list(goal.operands)
    return [goal]


def colour_mapping(objects: Sequence[str] | set[str]) -> dict[str, str]:
    names = sorted(objects)
    if all(n in COLOURS for n in names):
        return {n: n for n in names}
    if len(names) > len(COLOURS):
        raise UserError(f"too many blocks ({len(names)}); at most {len(COLOURS)} are supported")
    return {n: COLOURS[i] for i, n in enumerate(names)}


def load_instance_set(path: str | Path, reader: PddlReader | None = None) -> list[Instance]:
    """The instances listed in a set file; bad files give one clear UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"instance set not found: {path}")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})")
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{path}: expected a non-empty JSON list of instances")
    reader = reader or PddlReader()
    domain = path.parent / "domain.pddl"
    if domain.is_file():
        reader.check_domain(domain)
    instances = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("instance"), str):
            raise UserError(f"{path}: entry {i} has no \"instance\" file name")
        problem = reader.read_problem(path.parent / entry["instance"])
        gold = entry.get("gold_plan")
        plan = _read_plan(gold, problem, path, i) if gold is not None else None
        length = entry.get("optimal_length")
        if length is not None and not isinstance(length, int):
            raise UserError(f"{path}: entry {i}: optimal_length must be an integer")
        extra = {k: v for k, v in entry.items() if k not in {"instance", "gold_plan", "optimal_length"}}
        instances.append(Instance(i, entry["instance"], problem, plan, length, extra))
    return instances


def _read_plan(gold: Any, problem: Problem, path: Path, i: int) -> list[Action]:
    if not isinstance(gold, list):
        raise UserError(f"{path}: entry {i}: gold_plan must be a list of actions")
    plan = []
    for step in gold:
        action = parse_action(str(step), problem.blocks)
        if action is None:
            raise UserError(f"{path}: entry {i}: cannot read gold plan action {step!r}")
        plan.append(action)
    return plan
