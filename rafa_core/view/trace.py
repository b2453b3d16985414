"""A short readable trace of a run on the terminal: plan -> act -> observe -> correct.

``python -m rafa_core trace RUN_DIR`` (scripts/demo.sh prints it after its run).
BlocksWorld: per real step the planned trajectory, the action, what the world model
predicted, what was observed and whether the tree was corrected. Game of 24: per step the
plan, the checker's feedback and the lessons reflected from it. Other runs: a line per step.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

from ..runinfo import backend_of, benchmark_of, method_of, read_json, read_jsonl

WIDTH = 100


def wrap(label: str, text: Any, indent: int = 6) -> list[str]:
    head = " " * indent + f"{label:<17}"
    body = textwrap.wrap(str(text if text not in (None, "") else "(none)"), WIDTH - len(head)) or [""]
    return [head + body[0]] + [" " * len(head) + line for line in body[1:]]


def mispredicted(step: dict[str, Any]) -> bool:
    expected, observed = step.get("expected"), step.get("observed")
    if expected is None:
        return bool(step.get("world_model_said"))  # an unreadable prediction is a wrong one
    return expected != observed


def blocksworld_lines(record: dict[str, Any]) -> list[str]:
    instance = record.get("instance") or {}
    lines = [*wrap("start:", instance.get("init"), 2), *wrap("goal:", instance.get("goal"), 2)]
    corrected = 0
    for episode in record.get("episodes") or []:
        for step in episode.get("steps") or []:
            plan = "; ".join((step.get("best") or {}).get("actions") or []) or "(none)"
            said = str(step.get("world_model_said") or "").replace("[STATE]", "").strip()
            lines.append(f"  step {step.get('step')}")
            lines += wrap("reason (plan):", plan) + wrap("act:", step.get("action"))
            lines += wrap("model predicted:", step.get("expected") or said or "(nothing readable)")
            lines += wrap("observed:", step.get("observed"))
            if mispredicted(step):
                corrected += 1
                lines += wrap("correct:", "prediction wrong -> the search tree now holds the observed state; "
                                          "the next plan starts from it")
            else:
                lines += wrap("correct:", "prediction right, nothing to fix")
    outcome = "goal reached" if record.get("success") else "goal not reached"
    lines.append(f"  {outcome} after {record.get('env_steps')} real steps; {corrected} prediction(s) corrected by "
                 "what the environment showed")
    return lines


def game24_lines(record: dict[str, Any]) -> list[str]:
    lines = [f"  puzzle {record.get('puzzle')}"]
    for step in record.get("trace") or []:
        obs = step.get("observation") or {}
        lines.append(f"  step {step.get('step')}")
        lines += wrap("reason (plan):", " | ".join(str(a) for a in step.get("plan") or []) or "(empty plan)")
        lines += wrap("observe:", obs.get("feedback"))
        lines += wrap("kept so far:", " | ".join(obs.get("history") or []) or "(nothing)")
    lessons = [lesson for kind in (record.get("lessons") or {}).values() for lesson in kind]
    lines += wrap("learned:", "; ".join(lessons[:6]) or "(no lesson)", 2)
    lines.append(f"  {'solved' if record.get('success') else 'not solved'} in {record.get('env_steps')} steps")
    return lines


def generic_lines(record: dict[str, Any]) -> list[str]:
    return [f"  step {s.get('step')}: {s.get('action')!r}" for s in record.get("trace") or []]


def trace(run_dir: Path) -> str:
    config = read_json(run_dir / "config.json", {})
    summary = read_json(run_dir / "summary.json", {})
    records = read_jsonl(run_dir / "episodes.jsonl")
    benchmark = benchmark_of(config, records)
    show = {"BlocksWorld": blocksworld_lines, "Game of 24": game24_lines}.get(benchmark, generic_lines)
    out = [f"{method_of(config, benchmark)} on {benchmark} ({backend_of(config)}): "
           f"{summary.get('llm_calls', 0)} LLM calls, {summary.get('wall_s', 0):.0f} s"]
    for record in records:
        out.append(f"episode {record.get('index')}")
        out += show(record)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not (Path(args[0]) / "episodes.jsonl").is_file():
        print("usage: python -m rafa_core trace RUN_DIR (a run directory with episodes.jsonl)", file=sys.stderr)
        return 2
    print(trace(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
