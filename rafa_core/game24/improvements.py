"""This project's changes to the original Game-of-24 algorithm, each behind its own flag.

The default is the algorithm as the original code runs it (audit rows in
``../shared/specs/faithfulness-audit.md`` §1); ``--improved`` turns every change below on.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Improvements:
    # G4: a repeated request reuses its answer (critic: per episode and lessons; the rest:
    # per attempt). The original re-sampled every call (no value cache).
    value_cache: bool = False
    # G2: an episode is at most --max_step submissions. The original allowed one more.
    exact_max_step: bool = False
    # G10: answers capped at 160-400 tokens per request kind. The original asked for 1000.
    short_answers: bool = False
    # G12: naive/cot draw one sample (the original drew n_generate_sample and used the
    # first) and see the committed steps (the original's prompt never showed them).
    lean_naive: bool = False
    # G5: reflections are parsed into `item -> sure|impossible` lessons, deduplicated,
    # capped, and shown as one system message when there are any. The original showed the
    # raw reflection texts as a user message, always.
    parsed_lessons: bool = False

    @classmethod
    def all_on(cls) -> "Improvements":
        return cls(**{f.name: True for f in fields(cls)})


# flag, field, audit row, help
FLAGS: tuple[tuple[str, str, str, str], ...] = (
    ("--value-cache", "value_cache", "G4",
     "reuse the answer of a repeated request: a critic value once per episode and lessons, other "
     "requests once per attempt (default: every call is a fresh draw, as the original)"),
    ("--exact-max-step", "exact_max_step", "G2",
     "at most --max_step submissions per puzzle (default: --max_step + 1, as the original's cur_step > max_steps)"),
    ("--short-answers", "short_answers", "G10",
     "cap answers at 160-400 tokens by request kind (default: 1000 tokens, as the original)"),
    ("--lean-naive", "lean_naive", "G12",
     "naive/cot: draw one sample and show the committed steps (default: draw n_generate_sample, "
     "use the first, no steps in the prompt, as the original)"),
    ("--parsed-lessons", "parsed_lessons", "G5",
     "keep only `item -> sure|impossible` lines of reflections, deduplicated, as one system message "
     "(default: the raw reflection texts as a user message, as the original)"),
)


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("this project's improvements (default: the original's behaviour)")
    group.add_argument("--improved", action="store_true", help="turn on every improvement below")
    for flag, field_name, row, text in FLAGS:
        group.add_argument(flag, dest=field_name, action="store_true", help=f"[{row}] {text}")


def from_args(args: argparse.Namespace) -> Improvements:
    if getattr(args, "improved", False):
        return Improvements.all_on()
    return Improvements(**{name: bool(getattr(args, name, False)) for _, name, _, _ in FLAGS})
