"""Seeded instance generator: the project's own step-4 and step-6 sets.

An instance takes a uniformly drawn initial configuration and a uniformly drawn goal
configuration of 4 or 5 colour-named blocks, keeps 1-3 of the goal's ``on`` atoms that do
not already hold, and is kept when its breadth-first optimal plan has exactly N actions.
The sets have the paper's sizes: step 4 = 57 instances, step 6 = 114, about 90% of them
with four blocks.

    python -m rafa_core.blocksworld.generate --out blocksworld/data
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..cli import ArgumentParser
from .domain import (
    COLOURS,
    Action,
    Atom,
    DistanceTable,
    State,
    all_configurations,
    shortest_plan,
)
from .text import canonical_facts


@dataclass(frozen=True)
class SetSpec:
    name: str
    length: int
    size: int
    five_block: int  # how many of ``size`` have five blocks (the rest four)


#: The paper's two sets (sizes of the published PlanBench-derived sets).
PAPER_SETS = (SetSpec("step_4", 4, 57, 6), SetSpec("step_6", 6, 114, 11))
DEFAULT_SEED = 2024


@dataclass(frozen=True)
class Generated:
    blocks: tuple[str, ...]
    init: State
    goal: frozenset[Atom]
    plan: tuple[Action, ...]


class Generator:
    """Draws instances of a given optimal length; one BFS per initial state (cached)."""

    def __init__(self, seed: int, max_draws: int = 20_000) -> None:
        self.rng = random.Random(seed)
        self.max_draws = max_draws
        self.table = DistanceTable()
        self._configs: dict[int, list[State]] = {}
        self._exhausted: set[tuple[int, int, int]] = set()  # (blocks, length, goal size) not found

    def configurations(self, n_blocks: int) -> list[State]:
        if n_blocks not in self._configs:
            self._configs[n_blocks] = all_configurations(COLOURS[:n_blocks])
        return self._configs[n_blocks]

    def draw(self, n_blocks: int, length: int, k: int, exclude: set[tuple[State, frozenset[Atom]]]) -> Generated:
        """An instance with ``k`` goal atoms whose optimal plan has ``length`` actions."""
        configs = self.configurations(n_blocks)
        for _ in range(self.max_draws):
            init = self.rng.choice(configs)
            target = self.rng.choice(configs)
            candidates = sorted(a for a in target if a[0] == "on" and a not in init)
            if len(candidates) < k:
                continue
            goal = frozenset(self.rng.sample(candidates, k))
            if (init, goal) in exclude or self.table.optimal_length(init, goal) != length:
                continue
            plan = shortest_plan(init, goal)
            assert plan is not None and len(plan) == length
            return Generated(COLOURS[:n_blocks], init, goal, tuple(plan))
        raise LookupError(f"no {n_blocks}-block instance with {k} goal atoms and length {length}")

    def _draw_some_goal_size(self, n_blocks: int, length: int, k: int, exclude) -> Generated:
        """Goal size ``k`` if such instances exist (a 4-block 3-atom goal is a whole tower,
        rarely exactly N steps away), else the next smaller size."""
        for size in range(k, 0, -1):
            if (n_blocks, length, size) in self._exhausted:
                continue
            try:
                return self.draw(n_blocks, length, size, exclude)
            except LookupError:
                self._exhausted.add((n_blocks, length, size))
        raise LookupError(f"no {n_blocks}-block instance of length {length}")

    def make_set(self, spec: SetSpec) -> list[Generated]:
        seen: set[tuple[State, frozenset[Atom]]] = set()
        out = []
        for n_blocks in [4] * (spec.size - spec.five_block) + [5] * spec.five_block:
            # The goal size is drawn first: drawing it after the configurations would make
            # nearly every short instance a one-atom goal.
            inst = self._draw_some_goal_size(n_blocks, spec.length, self.rng.randint(1, 3), seen)
            seen.add((inst.init, inst.goal))
            out.append(inst)
        return out


# -- writing files ------------------------------------------------------------------------------
def _pddl_atom(atom: Atom) -> str:
    return "(" + " ".join(atom) + ")"


def domain_pddl() -> str:
    """Our own rendering of the standard four-operator domain."""
    return """; The four-operator blocks world (untyped STRIPS), written by rafa_core.blocksworld.generate.
(define (domain blocksworld)
  (:requirements :strips)
  (:predicates (clear ?x) (ontable ?x) (handempty) (holding ?x) (on ?x ?y))

  (:action pick-up
    :parameters (?x)
    :precondition (and (clear ?x) (ontable ?x) (handempty))
    :effect (and (holding ?x) (not (clear ?x)) (not (ontable ?x)) (not (handempty))))

  (:action put-down
    :parameters (?x)
    :precondition (holding ?x)
    :effect (and (clear ?x) (ontable ?x) (handempty) (not (holding ?x))))

  (:action stack
    :parameters (?x ?y)
    :precondition (and (holding ?x) (clear ?y))
    :effect (and (on ?x ?y) (clear ?x) (handempty) (not (holding ?x)) (not (clear ?y))))

  (:action unstack
    :parameters (?x ?y)
    :precondition (and (on ?x ?y) (clear ?x) (handempty))
    :effect (and (holding ?x) (clear ?y) (not (on ?x ?y)) (not (clear ?x)) (not (handempty)))))
"""


def problem_pddl(name: str, inst: Generated) -> str:
    init = "\n".join(f"    {_pddl_atom(a)}" for a in canonical_facts(inst.init))
    goal = " ".join(_pddl_atom(a) for a in canonical_facts(inst.goal))
    return (
        f"(define (problem {name})\n"
        f"  (:domain blocksworld)\n"
        f"  (:objects {' '.join(inst.blocks)})\n"
        f"  (:init\n{init})\n"
        f"  (:goal (and {goal})))\n"
    )


def write_sets(out: Path, seed: int = DEFAULT_SEED, specs: Sequence[SetSpec] = PAPER_SETS) -> dict[str, dict]:
    """Write domain.pddl, instances/<set>/*.pddl and <set>.json; returns per-set stats."""
    generator = Generator(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "domain.pddl").write_text(domain_pddl(), encoding="utf-8")
    stats = {}
    for spec in specs:
        folder = out / "instances" / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        instances = generator.make_set(spec)
        entries = []
        for i, inst in enumerate(instances, 1):
            rel = f"instances/{spec.name}/instance-{i:03d}.pddl"
            (out / rel).write_text(problem_pddl(f"{spec.name}-{i:03d}", inst), encoding="utf-8")
            entries.append({"instance": rel, "gold_plan": [str(a) for a in inst.plan], "optimal_length": len(inst.plan)})
        (out / f"{spec.name}.json").write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
        stats[spec.name] = set_stats(instances)
    return stats


def set_stats(instances: Sequence[Generated]) -> dict:
    sizes = [len(i.blocks) for i in instances]
    goals = [len(i.goal) for i in instances]
    return {
        "instances": len(instances),
        "four_block": sizes.count(4),
        "five_block": sizes.count(5),
        "goal_atoms": {str(k): goals.count(k) for k in (1, 2, 3)},
        "optimal_length": sorted({len(i.plan) for i in instances}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description="Generate the step-4 and step-6 BlocksWorld sets.")
    parser.add_argument("--out", default="blocksworld/data", help="output folder (default blocksworld/data)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    stats = write_sets(Path(args.out), args.seed)
    for name, s in stats.items():
        print(f"{name}: {s['instances']} instances ({s['four_block']} four-block, {s['five_block']} five-block), "
              f"goal atoms {s['goal_atoms']}, optimal length {s['optimal_length']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
