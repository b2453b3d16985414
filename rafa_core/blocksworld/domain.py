"""The four-operator blocks world as STRIPS on frozensets of atoms: the ground truth.

An atom is a tuple: ``("clear", "red")``, ``("ontable", "red")``, ``("on", "red", "blue")``,
``("holding", "red")`` or ``("handempty",)``.  A state is a frozenset of atoms; a goal is a
frozenset of atoms that must all hold.  The project validates plans with this simulator
(the original shelled out to the VAL binary).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Sequence

Atom = tuple[str, ...]
State = frozenset[Atom]

#: Block names in the order instances use them (the first four or five in practice).
COLOURS: tuple[str, ...] = (
    "red", "blue", "orange", "yellow", "white",
    "magenta", "black", "cyan", "green", "violet", "silver", "gold",
)

_COLOUR_RANK = {name: i for i, name in enumerate(COLOURS)}
HANDEMPTY: Atom = ("handempty",)
ACTION_KINDS: tuple[str, ...] = ("pick-up", "put-down", "stack", "unstack")
_ARITY = {"pick-up": 1, "put-down": 1, "stack": 2, "unstack": 2}


@dataclass(frozen=True, order=True)
class Action:
    """A ground action: ``kind`` is one of ACTION_KINDS, ``args`` its blocks."""

    kind: str
    args: tuple[str, ...]

    def __post_init__(self) -> None:
        if _ARITY.get(self.kind) != len(self.args):
            raise ValueError(f"bad action {self.kind} {self.args}")

    def __str__(self) -> str:  # the PDDL form, as plans are written in instance files
        return f"({self.kind} {' '.join(self.args)})"


def pick_up(x: str) -> Action:
    return Action("pick-up", (x,))


def put_down(x: str) -> Action:
    return Action("put-down", (x,))


def stack(x: str, y: str) -> Action:
    return Action("stack", (x, y))


def unstack(x: str, y: str) -> Action:
    return Action("unstack", (x, y))


_INVERSE_KIND = {"pick-up": "put-down", "put-down": "pick-up", "stack": "unstack", "unstack": "stack"}


def inverse(action: Action) -> Action:
    """The action that undoes ``action`` (pick-up x <-> put-down x, stack x y <-> unstack x y)."""
    return Action(_INVERSE_KIND[action.kind], action.args)


def block_order(block: str) -> tuple[int, str]:
    """Colours in COLOURS order first, then any other name alphabetically."""
    rank = _COLOUR_RANK.get(block)
    return (rank, "") if rank is not None else (len(COLOURS), block)


def sort_blocks(blocks: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(blocks), key=block_order))


def blocks_of(state: Iterable[Atom]) -> tuple[str, ...]:
    return sort_blocks(name for atom in state for name in atom[1:])


# -- the operators -----------------------------------------------------------------------------
def _effects(action: Action) -> tuple[frozenset[Atom], frozenset[Atom], frozenset[Atom]]:
    """(preconditions, add list, delete list) of a ground action."""
    k, a = action.kind, action.args
    if k == "pick-up":
        x = a[0]
        pre = {("clear", x), ("ontable", x), HANDEMPTY}
        return frozenset(pre), frozenset({("holding", x)}), frozenset(pre)
    if k == "put-down":
        x = a[0]
        return (frozenset({("holding", x)}), frozenset({("clear", x), HANDEMPTY, ("ontable", x)}),
                frozenset({("holding", x)}))
    if k == "stack":
        x, y = a
        return (frozenset({("holding", x), ("clear", y)}),
                frozenset({HANDEMPTY, ("clear", x), ("on", x, y)}),
                frozenset({("holding", x), ("clear", y)}))
    x, y = a  # unstack
    pre = frozenset({("on", x, y), ("clear", x), HANDEMPTY})
    return pre, frozenset({("holding", x), ("clear", y)}), pre


def is_applicable(state: State, action: Action) -> bool:
    if len(set(action.args)) != len(action.args):
        return False
    return _effects(action)[0] <= state


def apply(state: State, action: Action) -> State:
    """The successor state; raises ValueError when the action is not applicable."""
    if not is_applicable(state, action):
        raise ValueError(f"{action} is not applicable")
    _, add, delete = _effects(action)
    return (state - delete) | add


def applicable_actions(state: State) -> list[Action]:
    """Every legal action in canonical order (by kind as in ACTION_KINDS, then blocks)."""
    blocks = blocks_of(state)
    held = [x for x in blocks if ("holding", x) in state]
    clear = [x for x in blocks if ("clear", x) in state]
    actions: list[Action] = []
    if HANDEMPTY in state:
        actions += [pick_up(x) for x in clear if ("ontable", x) in state]
        actions += [unstack(x, y) for x in clear for y in blocks if ("on", x, y) in state]
    for x in held:
        actions.append(put_down(x))
        actions += [stack(x, y) for y in clear if y != x]
    return actions


def goal_reached(state: State, goal: frozenset[Atom]) -> bool:
    return goal <= state


def goal_progress(state: State, goal: frozenset[Atom]) -> float:
    """Fraction of goal atoms that hold (1.0 for an empty goal)."""
    return sum(1 for g in goal if g in state) / len(goal) if goal else 1.0


def is_consistent(state: State, blocks: Sequence[str] | None = None) -> bool:
    """A physically possible complete state: every block in exactly one place, no cycles,
    ``clear`` exactly for the blocks with nothing on them and not held, and the hand empty
    exactly when it holds nothing."""
    names = tuple(blocks) if blocks is not None else blocks_of(state)
    known = set(names)
    below: dict[str, str] = {}
    places: dict[str, int] = {x: 0 for x in names}
    held: list[str] = []
    for atom in state:
        if any(arg not in known for arg in atom[1:]):
            return False
        kind = atom[0]
        if kind == "on":
            x, y = atom[1], atom[2]
            if x == y:
                return False
            below[x] = y
            places[x] += 1
        elif kind == "ontable":
            places[atom[1]] += 1
        elif kind == "holding":
            places[atom[1]] += 1
            held.append(atom[1])
        elif kind not in ("clear", "handempty"):
            return False
    if any(n != 1 for n in places.values()) or len(held) > 1:
        return False
    if (HANDEMPTY in state) == bool(held):
        return False
    supporters = list(below.values())
    if len(supporters) != len(set(supporters)):
        return False  # two blocks on one
    for x in names:  # no cycles: walking down always reaches the table
        seen, y = set(), x
        while y in below:
            if y in seen:
                return False
            seen.add(y)
            y = below[y]
    covered = set(supporters) | set(held)
    return all((("clear", x) in state) == (x not in covered) for x in names)


# -- plans ---------------------------------------------------------------------------------------
@dataclass
class PlanCheck:
    """Result of validating a plan: ``valid`` = every action applicable and goal at the end."""

    executable: bool
    goal_reached: bool
    steps_executed: int
    failed_action: str | None = None
    final_state: State = field(default_factory=frozenset)

    @property
    def valid(self) -> bool:
        return self.executable and self.goal_reached


def validate_plan(init: State, goal: frozenset[Atom], plan: Sequence[Action]) -> PlanCheck:
    state = init
    for i, action in enumerate(plan):
        if not is_applicable(state, action):
            return PlanCheck(False, goal_reached(state, goal), i, str(action), state)
        state = apply(state, action)
    return PlanCheck(True, goal_reached(state, goal), len(plan), None, state)


def shortest_plan(init: State, goal: frozenset[Atom], max_length: int = 40) -> list[Action] | None:
    """A shortest plan by breadth-first search (actions tried in canonical order)."""
    if goal_reached(init, goal):
        return []
    parent: dict[State, tuple[State, Action]] = {}
    frontier = deque([(init, 0)])
    seen = {init}
    while frontier:
        state, depth = frontier.popleft()
        if depth >= max_length:
            continue
        for action in applicable_actions(state):
            nxt = apply(state, action)
            if nxt in seen:
                continue
            seen.add(nxt)
            parent[nxt] = (state, action)
            if goal_reached(nxt, goal):
                plan = []
                while nxt != init:
                    nxt, act = parent[nxt]
                    plan.append(act)
                return plan[::-1]
            frontier.append((nxt, depth + 1))
    return None


def optimal_length(init: State, goal: frozenset[Atom]) -> int | None:
    plan = shortest_plan(init, goal)
    return None if plan is None else len(plan)


class DistanceTable:
    """Breadth-first distances over the whole state graph of a block set, cached.

    The graph of every state of the blocks (866 states for five) and its edges is built
    once per block set; each start state then costs one BFS over integer indices.  The
    generator asks for many goals from the same initial states, so both are cached.
    """

    def __init__(self) -> None:
        self._graphs: dict[tuple[str, ...], tuple[list[State], dict[State, int], list[list[int]]]] = {}
        self._tables: dict[State, list[int]] = {}

    def _graph(self, blocks: tuple[str, ...]):
        graph = self._graphs.get(blocks)
        if graph is None:
            states = all_states(blocks)
            index = {s: i for i, s in enumerate(states)}
            edges = [[index[apply(s, a)] for a in applicable_actions(s)] for s in states]
            graph = self._graphs[blocks] = (states, index, edges)
        return graph

    def distances(self, start: State) -> dict[State, int]:
        states, _, _ = self._graph(blocks_of(start))
        table = self._distances(start)
        return {states[i]: d for i, d in enumerate(table) if d >= 0}

    def _distances(self, start: State) -> list[int]:
        table = self._tables.get(start)
        if table is None:
            states, index, edges = self._graph(blocks_of(start))
            table = [-1] * len(states)
            table[index[start]] = 0
            frontier = deque([index[start]])
            while frontier:
                i = frontier.popleft()
                for j in edges[i]:
                    if table[j] < 0:
                        table[j] = table[i] + 1
                        frontier.append(j)
            self._tables[start] = table
        return table

    def optimal_length(self, init: State, goal: frozenset[Atom]) -> int | None:
        states, _, _ = self._graph(blocks_of(init))
        table = self._distances(init)
        best = [table[i] for i, s in enumerate(states) if table[i] >= 0 and goal <= s]
        return min(best) if best else None


# -- building states -------------------------------------------------------------------------------
def state_from_stacks(stacks: Sequence[Sequence[str]], holding: str | None = None) -> State:
    """A complete state from stacks listed bottom to top (and the block in hand, if any)."""
    atoms: set[Atom] = set()
    for column in stacks:
        if not column:
            continue
        atoms.add(("ontable", column[0]))
        for below, above in zip(column, column[1:]):
            atoms.add(("on", above, below))
        atoms.add(("clear", column[-1]))
    if holding is None:
        atoms.add(HANDEMPTY)
    else:
        atoms.add(("holding", holding))
    return frozenset(atoms)


def all_configurations(blocks: Sequence[str]) -> list[State]:
    """Every hand-empty arrangement of ``blocks`` into stacks, in a deterministic order."""
    found: dict[State, None] = {}

    def place(i: int, stacks: list[list[str]]) -> None:
        if i == len(blocks):
            found[state_from_stacks(stacks)] = None
            return
        block = blocks[i]
        stacks.append([block])  # a stack of its own
        place(i + 1, stacks)
        stacks.pop()
        for column in stacks:  # anywhere in an existing stack, bottom to top
            for pos in range(len(column) + 1):
                column.insert(pos, block)
                place(i + 1, stacks)
                column.pop(pos)

    place(0, [])
    return sorted(found, key=lambda s: sorted(s))


def all_states(blocks: Sequence[str]) -> list[State]:
    """Every state, hand empty or holding one block (what the text layer must round-trip)."""
    states = list(all_configurations(blocks))
    for held in blocks:
        rest = [b for b in blocks if b != held]
        for config in all_configurations(rest) if rest else [frozenset({HANDEMPTY})]:
            atoms = set(config) - {HANDEMPTY}
            states.append(frozenset(atoms | {("holding", held)}))
    return states
