"""The three prompts of the number walk (proposer, world model, critic) and their parsers.

Model text is untrusted: the parsers only pick known words and digits out of it.
"""

from __future__ import annotations

import re

PROPOSE_HEAD = "Number walk: choose moves."
PREDICT_HEAD = "Number walk: apply a move."
VALUE_HEAD = "Number walk: judge a position."
RULES = "The moves are +1 (add one), +3 (add three) and x2 (double). Numbers never go down."
VALUES = {"sure": 1.0, "likely": 0.5, "impossible": 0.0}


def propose_prompt(value: int, target: int, notes: list[str]) -> str:
    memory = "".join(f"Earlier: {note}\n" for note in notes)
    return (f"{PROPOSE_HEAD}\n{RULES}\n{memory}Now at {value}, the target is {target}.\n"
            "List the best moves, one per line, best first.\nMoves:\n")


def predict_prompt(value: int, move: str) -> str:
    return f"{PREDICT_HEAD}\n{RULES}\nNumber: {value}\nMove: {move}\nResult:"


def value_prompt(value: int, target: int) -> str:
    return (f"{VALUE_HEAD}\n{RULES}\nNow at {value}, the target is {target}.\n"
            "Can the target still be reached exactly? Answer sure, likely or impossible.\nAnswer:")


def parse_moves(text: str) -> list[str]:
    """The moves named in ``text``, in order, each once."""
    found: list[str] = []
    for token in re.findall(r"\+1|\+3|x2", text):
        if token not in found:
            found.append(token)
    return found


def parse_number(text: str) -> int | None:
    match = re.search(r"-?\d{1,9}", text)
    return int(match.group()) if match else None


def parse_value(text: str) -> float | None:
    """The judgement's value; None when the answer names none (the planner keeps the last value)."""
    words = re.findall(r"[a-z]+", text.lower())
    return next((VALUES[w] for w in words if w in VALUES), None)
