"""Number walk: from a start number reach the target exactly with the moves +1, +3 and x2.

The ground truth, with no LLM in it.  Numbers only grow, so a walk that passes the target
has failed.  Observations are plain dicts (they go into episodes.jsonl as they are).
"""

from __future__ import annotations

from typing import Any

from rafa_core.environment import Closing

MOVES = ("+1", "+3", "x2")
# (start, target): each solvable in at most four moves.
PUZZLES = [(1, 5), (2, 8), (3, 10), (1, 12), (4, 11), (5, 22), (2, 14), (3, 24), (6, 16), (7, 30)]


def apply(value: int, move: str) -> int:
    if move == "+1":
        return value + 1
    if move == "+3":
        return value + 3
    if move == "x2":
        return value * 2
    raise ValueError(f"not a move: {move!r}")


def moves_to_target(value: int, target: int) -> list[str]:
    """A shortest sequence of moves from ``value`` to ``target`` (breadth-first); [] if none."""
    frontier, seen = [(value, [])], {value}
    while frontier:
        nxt = []
        for number, path in frontier:
            if number == target:
                return path
            for move in MOVES:
                after = apply(number, move)
                if after <= target and after not in seen:
                    seen.add(after)
                    nxt.append((after, path + [move]))
        frontier = nxt
    return []


def reachable(value: int, target: int) -> bool:
    return value == target or bool(moves_to_target(value, target))


class NumberWalkEnv(Closing):
    """``reset(index)`` -> (observation, info); ``step(move)`` -> (observation, reward, done, info)."""

    def __init__(self, puzzles: list[tuple[int, int]] = PUZZLES) -> None:
        self.puzzles = puzzles
        self.value = self.target = 0

    def observation(self) -> dict[str, int]:
        return {"value": self.value, "target": self.target}

    def reset(self, index: int) -> tuple[dict[str, int], dict[str, Any]]:
        self.value, self.target = self.puzzles[index]
        return self.observation(), {}

    def step(self, move: Any) -> tuple[dict[str, int], float, bool, dict[str, Any]]:
        if move not in MOVES:  # a move the model made up: a failed step, nothing changes
            return self.observation(), 0.0, False, {"success": False, "error": f"not a move: {str(move)[:40]!r}"}
        self.value = apply(self.value, move)
        success = self.value == self.target
        done = self.value >= self.target
        return self.observation(), float(success), done, {"success": success}
