"""What a run directory is: its files, its benchmark and its method's name (for viewers,
tables and plots)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file holding an object (``config.json``, ``summary.json``); {} when missing or not one."""
    data = read_json(Path(path), {})
    return data if isinstance(data, dict) else {}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The whole JSON objects of a JSONL file, one per line (a torn or foreign line is skipped)."""
    records = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")  # not splitlines(): U+2028 is text
    except OSError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def benchmark_of(config: dict[str, Any], records: list[dict[str, Any]] | None = None) -> str:
    first = (records or [{}])[0] if records else {}
    if "O_MPC" in config or "winner" in first:
        return "Tic-Tac-Toe"
    if "planning" in config or "puzzle" in first:
        return "Game of 24"
    if "gamefile" in first or "alfworld_config" in config or "num_trials" in config:
        return "ALFWorld"
    if "instance" in first or config.get("method") in ("rafa", "rap"):
        return "BlocksWorld"
    return "run"


def method_of(config: dict[str, Any], benchmark: str | None = None) -> str:
    """The method's name as the paper says it (RAFA, ToT, Reflexion, RAP, ...), not the flags."""
    benchmark = benchmark or benchmark_of(config)
    if benchmark == "Game of 24":
        planning, feedback = config.get("planning"), config.get("feedback")
        name = {"tot": "RAFA" if feedback else "ToT", "naive": "Reflexion" if feedback else "naive",
                "cot": "CoT"}.get(planning, str(planning))
        return f"{name} (b={config.get('n_select_sample', 1)})" if planning == "tot" else name
    if benchmark == "Tic-Tac-Toe":
        def side(mpc: Any) -> str:
            return "base" if mpc in (None, 1) else f"RAFA B={mpc}"
        return f"X {side(config.get('X_MPC'))} vs O {side(config.get('O_MPC'))}"
    if benchmark == "BlocksWorld":
        return "RAP" if config.get("method") == "rap" else "RAFA"
    if benchmark == "ALFWorld":
        return "RAFA" if str(config.get("use_memory", True)).lower() not in ("false", "0") else "RAFA (no memory)"
    return "?"


def backend_of(config: dict[str, Any]) -> str:
    parts = []
    for key in ("backend", "X", "O", "reflect"):
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("backend")
        if value and str(value) not in parts and f"{key}={value}" not in parts:
            parts.append(str(value) if key == "backend" else f"{key}={value}")
    return ", ".join(parts) or "?"


def steps_unit(summary: dict[str, Any]) -> str:
    """What ``success_by_step`` counts: environment steps, or trials (ALFWorld)."""
    return "trials" if "trial" in str(summary.get("success_by_step_means", "")) else "environment steps"
