"""``python -m rafa_core view RUN_DIR``: one self-contained HTML page of a run.

The summary; per episode a timeline of the real steps (plan tree, action, observation,
feedback, what memory learned), every LLM call of the step from the request log (prompt
and completions, expandable), usage per episode; boards for Tic-Tac-Toe, block states for
BlocksWorld, trials and reflections for ALFWorld. Every piece of model text is escaped.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..llm.request_log import REQUESTS_FILE
from ..runinfo import benchmark_of, method_of, read_json, read_jsonl
from .episodes import HEADERS, STEP_VIEWS, alfworld_trials, generic_step, step_good, steps_of
from .html import Markup, h
from .page import calls_section, page, summary_section, usage_line

VIEW_FILE = "view.html"


class CallIndex:
    """The logged calls of each (episode, attempt, step); an episode's calls come from the
    last process that worked on it (an interrupted attempt's calls are left out)."""

    def __init__(self, calls: list[dict[str, Any]]) -> None:
        last_session: dict[str, str] = {}
        for call in calls:
            last_session[str(call.get("episode"))] = call.get("session")
        self.by_step: dict[tuple[str, Any, Any], list[dict[str, Any]]] = defaultdict(list)
        self.by_episode: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for call in calls:
            episode = str(call.get("episode"))
            if call.get("session") != last_session[episode]:
                continue
            self.by_episode[episode].append(call)
            self.by_step[(episode, call.get("attempt"), call.get("step"))].append(call)

    def step(self, episode: Any, attempt: Any, step: Any) -> list[dict[str, Any]]:
        return self.by_step.get((str(episode), attempt, step), [])

    def outside_steps(self, episode: Any, seen: set[tuple[Any, Any]]) -> list[dict[str, Any]]:
        return [c for c in self.by_episode.get(str(episode), []) if (c.get("attempt"), c.get("step")) not in seen]


def episode_view(record: dict[str, Any], benchmark: str, calls: CallIndex, open_: bool = False) -> Markup:
    index = record.get("index")
    ok = bool(record.get("success"))
    step_view = STEP_VIEWS.get(benchmark, generic_step)
    items, seen = [], set()
    for attempt, number, step in steps_of(record, benchmark):
        seen.add((attempt, number))
        step_calls = calls.step(index, attempt, number)
        good = step_good(benchmark, step)
        title = f"{'episode ' + str(attempt) + ', ' if attempt is not None else ''}step {number}"
        items.append(h("li", h("h3", title), step_view(step, step_calls), calls_section(step_calls),
                       class_="step" + ("" if good is None else (" good" if good else " bad"))))
    other = calls.outside_steps(index, seen)
    mark = h("span", "solved" if ok else "not solved", class_="ok" if ok else "fail")
    summary = [f"episode {index} — ", mark, f" — {record.get('env_steps', 0)} env steps, "
               f"{(record.get('usage') or {}).get('llm_calls', 0)} LLM calls"]
    body = [HEADERS.get(benchmark, lambda r: [])(record), usage_line(record.get("usage"), calls.by_episode.get(str(index), [])),
            h("ol", items, class_="timeline"), calls_section(other, "LLM calls outside the real steps (search iterations, reflections)")]
    return h("details", h("summary", summary), *body, class_="episode", id=f"episode-{index}",
             data_success="1" if ok else "0", open=open_)


def build(run_dir: Path) -> str:
    config = read_json(run_dir / "config.json", {})
    summary = read_json(run_dir / "summary.json", {})
    records = read_jsonl(run_dir / "episodes.jsonl")
    calls = CallIndex(read_jsonl(run_dir / REQUESTS_FILE))
    benchmark = benchmark_of(config, records)
    method = method_of(config, benchmark)
    note = "" if (run_dir / REQUESTS_FILE).exists() else "no request log in this run (made with --no-request-log or an older version): prompts and completions are not shown"
    index_rows = [h("tr", h("td", h("a", str(r.get("index")), href=f"#episode-{r.get('index')}")),
                    h("td", "solved" if r.get("success") else "not solved", class_="ok" if r.get("success") else "fail"),
                    h("td", r.get("env_steps")), h("td", (r.get("usage") or {}).get("llm_calls")),
                    h("td", (r.get("usage") or {}).get("prompt_tokens", 0) + (r.get("usage") or {}).get("completion_tokens", 0)),
                    h("td", f"${(r.get('usage') or {}).get('cost_usd', 0):.4f}")) for r in records]
    body = [summary_section(config, summary, benchmark, method),
            h("p", note, class_="muted") if note else "",
            alfworld_trials(records, read_jsonl(run_dir / "reflections.jsonl")) if benchmark == "ALFWorld" else "",
            h("h2", f"Episodes ({len(records)})"),
            h("table", h("tr", [h("th", t) for t in ("episode", "result", "env steps", "LLM calls", "tokens", "cost")]),
              index_rows, class_="grid", id="episode-index"),
            [episode_view(r, benchmark, calls, open_=i == 0) for i, r in enumerate(records)]]
    return page(f"{benchmark} run {run_dir.name}", body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rafa_core view", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (with episodes.jsonl)")
    parser.add_argument("-o", "--out", type=Path, default=None, help=f"the HTML file (default RUN_DIR/{VIEW_FILE})")
    args = parser.parse_args(argv)
    if not (args.run_dir / "episodes.jsonl").is_file():
        print(f"error: {args.run_dir} is not a run directory (no episodes.jsonl)", file=sys.stderr)
        return 2
    out = args.out or args.run_dir / VIEW_FILE
    out.write_text(build(args.run_dir), encoding="utf-8")
    print(f"wrote {out}")
    return 0
