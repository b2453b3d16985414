"""Game of 24 puzzles: the Tree-of-Thoughts ``24.csv`` (from its wheel) or any CSV with a ``Puzzles`` column."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

from ..llm.errors import UserError
from .env import ParseError, parse_numbers

INSTALL_HINT = "pip install --no-deps tree-of-thoughts-llm==0.1.0"
WHEEL_CSV = ("data", "24", "24.csv")


def bundled_csv(name: str = WHEEL_CSV[-1]) -> Path:
    """``tot/data/24/<name>`` inside the installed wheel, found without importing ``tot``."""
    spec = importlib.util.find_spec("tot")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location).joinpath(*WHEEL_CSV[:-1], name)
        if path.is_file():
            return path
    raise UserError(f"the Game of 24 puzzles ({name}) are not installed: {INSTALL_HINT} (or pass --task_file_path)")


def resolve_csv(path: str | Path | None) -> Path:
    """The puzzle file: the path as given if it exists; else, like the original (which read
    ``data/24/<task_file_path>``), a bare file name is looked up in the wheel's ``data/24/``."""
    if not path:
        return bundled_csv()
    given = Path(path)
    if given.is_file() or given.parent != Path("."):
        return given
    try:
        return bundled_csv(given.name)
    except UserError:
        return given  # reported below as not found


def load_puzzles(path: str | Path | None = None) -> list[str]:
    """The puzzles in file order, each as its four numbers separated by spaces."""
    csv_path = resolve_csv(path)
    if not csv_path.is_file():
        raise UserError(f"puzzle file not found: {csv_path}")
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read puzzle file {csv_path}: {exc}")
    if not rows or "Puzzles" not in rows[0]:
        raise UserError(f"{csv_path} has no 'Puzzles' column")
    puzzles = []
    for line_no, row in enumerate(rows, 2):
        text = (row.get("Puzzles") or "").strip()
        try:
            numbers = parse_numbers(text)
        except ParseError:
            numbers = []
        if len(numbers) != 4:
            raise UserError(f"{csv_path}:{line_no}: a puzzle must be four numbers, got {text[:40]!r}")
        puzzles.append(" ".join(text.split()))
    return puzzles


def select_indices(puzzles: list[str], start: int, end: int, descending: bool = True) -> list[int]:
    """Rows ``start .. end-1``; the original walks them from the last down to the first."""
    if not 0 <= start < end <= len(puzzles):
        raise UserError(
            f"bad index range {start}..{end}: need 0 <= task_start_index < task_end_index <= {len(puzzles)}"
        )
    indices = list(range(start, end))
    return indices[::-1] if descending else indices
