"""Standard PDDL domain / problem files, read through the maintained ``pddl`` package.

Objects named by colours keep their names; other object names (``a b c d`` in published
sets) are mapped, in sorted order, to the colours red, blue, orange, yellow, white, ...
(PlanBench's own mapping).  A gold plan may name blocks either way.

Instance *sets* are JSON lists in one of two formats:
- ours: ``{"instance": <problem file>, "gold_plan": [...], "optimal_length": N}``;
- the original RAP/RAFA code's: ``[<problem file>, "<gold plan, one PDDL action a line>", N]``.
A problem file's path is read relative to the set's folder, then to each folder above it,
then to the working directory (the original's paths are relative to its BlocksWorld folder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..llm.errors import UserError
from .domain import ACTION_KINDS, COLOURS, HANDEMPTY, Action, Atom, State, sort_blocks
from .text import parse_action

_PREDICATES = {"clear": 1, "ontable": 1, "handempty": 0, "holding": 1, "on": 2}


@dataclass(frozen=True)
class Problem:
    name: str
    blocks: tuple[str, ...]
    init: State
    goal: frozenset[Atom]
    renamed: tuple[tuple[str, str], ...] = ()  # (name in the file, colour) when objects were renamed


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
        renamed = tuple(sorted((k, v) for k, v in mapping.items() if k != v))
        return Problem(str(problem.name), sort_blocks(mapping.values()), init, goal, renamed)

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
    for i, raw in enumerate(entries):
        entry = _entry(raw, path, i)
        problem = reader.read_problem(resolve_problem_file(entry["instance"], path))
        gold = entry.get("gold_plan")
        plan = _read_plan(gold, problem, path, i) if gold is not None else None
        length = entry.get("optimal_length")
        if length is not None and not isinstance(length, int):
            raise UserError(f"{path}: entry {i}: optimal_length must be an integer")
        extra = {k: v for k, v in entry.items() if k not in {"instance", "gold_plan", "optimal_length"}}
        instances.append(Instance(i, entry["instance"], problem, plan, length, extra))
    return instances


def _entry(raw: Any, path: Path, i: int) -> dict[str, Any]:
    """One entry as ``{"instance", "gold_plan", "optimal_length"}``, from either format."""
    if isinstance(raw, list) and 1 <= len(raw) <= 3 and isinstance(raw[0], str):
        gold = raw[1] if len(raw) > 1 else None
        if isinstance(gold, str):  # the original: one PDDL action a line
            gold = [line for line in gold.splitlines() if line.strip()]
        return {"instance": raw[0], "gold_plan": gold, "optimal_length": raw[2] if len(raw) > 2 else None}
    if isinstance(raw, dict) and isinstance(raw.get("instance"), str):
        return raw
    raise UserError(f"{path}: entry {i} is neither {{\"instance\": ...}} nor [problem file, gold plan, length]")


def resolve_problem_file(name: str, set_path: Path) -> Path:
    """``name`` relative to the set's folder, then each folder above it, then the working directory."""
    relative = Path(name)
    if relative.is_absolute():
        return relative
    bases = [set_path.parent, *set_path.parent.resolve().parents, Path.cwd()]
    for base in bases:
        if (base / relative).is_file():
            return base / relative
    return set_path.parent / relative  # not found: the reader names this path


def _read_plan(gold: Any, problem: Problem, path: Path, i: int) -> list[Action]:
    if not isinstance(gold, list):
        raise UserError(f"{path}: entry {i}: gold_plan must be a list of actions")
    plan = []
    for step in gold:
        action = parse_action(str(step), problem.blocks) or _renamed_action(str(step), problem)
        if action is None:
            raise UserError(f"{path}: entry {i}: cannot read gold plan action {step!r}")
        plan.append(action)
    return plan


def _renamed_action(step: str, problem: Problem) -> Action | None:
    """A PDDL action over the problem file's own object names (``(unstack b c)``)."""
    mapping = dict(problem.renamed)
    words = step.strip().strip("()").split()
    if len(words) < 2 or not all(w.lower() in mapping for w in words[1:]):
        return None
    return parse_action(f"({' '.join([words[0], *(mapping[w.lower()] for w in words[1:])])})", problem.blocks)
