"""Per-benchmark pieces of an episode: the plan tree, the action, what came back, what was learned."""

from __future__ import annotations

from typing import Any, Callable

from .html import Markup, anything, fold, h, pre, table
from .trace import mispredicted

CallsOf = Callable[..., list[dict[str, Any]]]


# -- shared pieces ----------------------------------------------------------------------------------
def row(label: str, *value: Any, class_: str | None = None) -> Markup:
    return h("div", h("span", label, class_="label"), *value, class_=class_)


def text_or_json(value: Any) -> Markup:
    if isinstance(value, str):
        return pre(value) if value else h("span", "(empty)", class_="muted")
    return anything(value)


def reflections_of(calls: list[dict[str, Any]]) -> list[str]:
    out = []
    for call in calls:
        if call.get("role") == "reflection" and call.get("op") == "generate":
            out += [c if isinstance(c, str) else (c or {}).get("text", "") for c in call.get("completions") or []]
    return out


def learned_block(items: list[Any], title: str = "memory learned") -> Markup:
    items = [i for i in items if i not in (None, "", [], {})]
    if not items:
        return Markup("")
    return h("div", h("b", title), [text_or_json(i) for i in items], class_="learned")


# -- Game of 24 --------------------------------------------------------------------------------------
def game24_tree(tree: Any, plan: list[Any] | None) -> Markup:
    if not isinstance(tree, list):
        return anything(tree) if tree else Markup("")
    levels = []
    for level in tree:
        rows = []
        for c in level.get("candidates") or []:
            lines = c.get("actions") or []
            rows.append(h("tr", h("td", "\n".join(map(str, lines)) or "(none)", class_="pre"),
                          h("td", f"{c.get('value', 0):g}"),
                          h("td", "chosen" if c.get("selected") else ""),
                          class_="chosen" if c.get("selected") else None))
        levels.append(h("div", h("b", f"depth {level.get('depth', 0) + 1}: {len(rows)} candidate(s)"),
                        h("table", h("tr", h("th", "imagined partial plan (lines)"), h("th", "critic value"), h("th", "")),
                          rows, class_="grid") if rows else h("span", " the proposer gave no usable line", class_="fail")))
    return fold(f"plan tree: {len(tree)} level(s); chosen plan {len(plan or [])} line(s)", *levels, class_="tree",
                open_=True)


def game24_step(step: dict[str, Any], calls: list[dict[str, Any]]) -> list[Markup]:
    obs = step.get("observation") or {}
    verdicts = (step.get("info") or {}).get("verdicts") or []
    return [
        game24_tree(step.get("tree"), step.get("plan")),
        row("action (plan)", pre(step.get("action") or "(empty plan)")),
        row("accepted so far", pre("\n".join(obs.get("history") or []) or "(nothing)")),
        row("feedback", pre(obs.get("feedback") or "(none: run without --feedback)")),
        table(["line", "verdict", "why"], [[v.get("line"), v.get("verdict"), v.get("reason")] for v in verdicts])
        if verdicts else Markup(""),
        learned_block(reflections_of(calls), "reflection (what memory learned from this feedback)"),
    ]


def game24_header(record: dict[str, Any]) -> list[Markup]:
    lessons = record.get("lessons") or {}
    return [row("puzzle", h("code", record.get("puzzle"))),
            learned_block([{k: v for k, v in lessons.items() if v}], "lessons in memory at the end") if any(lessons.values()) else Markup(""),
            row("value cache hits", str(record.get("value_cache_hits", 0)))]


# -- Tic-Tac-Toe -------------------------------------------------------------------------------------
def board_of(key_or_text: Any) -> Markup:
    text = str(key_or_text or "")
    if len(text) == 9 and set(text) <= set("XO."):
        cells = [c if c != "." else str(i + 1) for i, c in enumerate(text)]
        text = "\n---------\n".join(" | ".join(cells[r * 3:r * 3 + 3]) for r in range(3))
    return pre(text, class_="board")


def tictactoe_step(entry: dict[str, Any], calls: list[dict[str, Any]]) -> list[Markup]:
    decision = entry.get("decision") or {}
    search = decision.get("search") or {}
    rows = []
    for c in search.get("candidates") or []:
        chosen = c.get("action") == entry.get("position")
        rows.append(h("tr", h("td", c.get("action")), h("td", board_of(c.get("predicted")) if c.get("predicted") else "—"),
                      h("td", c.get("reply")), h("td", c.get("outcome")), h("td", c.get("value")), h("td", c.get("note")),
                      class_="chosen" if chosen else None))
    tree = fold(f"plan tree: {len(rows)} candidate move(s), {search.get('nodes_searched', 0)} nodes searched",
                h("table", h("tr", [h("th", t) for t in ("move", "imagined board", "imagined reply", "outcome", "value", "note")]),
                  rows, class_="grid"), class_="tree", open_=True) if rows else Markup("")
    learning = entry.get("learning") or {}
    learned = [{role: f"corrected examples added: {', '.join(o.get('added_examples') or []) or 'none'}; predicted "
                      f"{o.get('predicted')}" for role, o in learning.items()}] if learning else []
    fallback = h("span", " (random fallback: no legal move from the model)", class_="fail") if entry.get("fallback") else ""
    return [tree, row("action", f"{entry.get('role')} plays {entry.get('position')}", fallback),
            row("board after", board_of(entry.get("board"))), learned_block(learned)]


def tictactoe_header(record: dict[str, Any]) -> list[Markup]:
    reflections = record.get("reflections") or {}
    return [row("game", f"{record.get('phase')} game, epoch {record.get('epoch')}; winner {record.get('winner')}; "
                        f"O score {record.get('O_score')}"),
            learned_block([{role: r} for role, r in reflections.items()], "reflections after the game") if reflections else Markup("")]


# -- BlocksWorld -------------------------------------------------------------------------------------
def blocks_state(text: Any) -> Markup:
    return pre(text if text else "(unknown)", class_="text blocks")


def blocksworld_step(step: dict[str, Any], calls: list[dict[str, Any]]) -> list[Markup]:
    best = step.get("best") or {}
    expected, observed = step.get("expected"), step.get("observed")
    wrong = mispredicted(step)
    return [
        fold(f"plan tree: best trajectory (mean reward {best.get('mean_reward')}, predicts goal: {best.get('predicts_goal')})",
             h("ol", [h("li", a) for a in best.get("actions") or []]), row("why this action", step.get("why")),
             row("tree statistics", anything(step.get("tree"))), class_="tree", open_=True),
        row("action", h("b", step.get("action") or "(none)")),
        row("world model predicted", blocks_state(expected or "(nothing readable; it said what is below)"),
            class_="mismatch" if wrong else None),
        row("observed", blocks_state(observed)),
        learned_block(["the world model was wrong here: the tree now holds the observed state (correction)"] if wrong else []),
        row("world model said", pre(step.get("world_model_said"))) if step.get("world_model_said") else Markup(""),
    ]


def blocksworld_header(record: dict[str, Any]) -> list[Markup]:
    inst = record.get("instance") or {}
    parts = [row("instance", inst.get("source")), row("initial state", blocks_state(inst.get("init"))),
             row("goal", blocks_state(inst.get("goal"))),
             row("tree at the end", anything(record.get("tree"))),
             row("invalid predictions", str(record.get("invalid_predictions", 0)))]
    if "plan" in record:  # RAP: one plan, no acting
        parts += [row("plan", h("ol", [h("li", a) for a in record.get("plan") or []])), row("check", anything(record.get("check"))),
                  row("best by iteration", anything(record.get("best_by_iteration")))]
    return parts


# -- ALFWorld ----------------------------------------------------------------------------------------
def alf_node(node: dict[str, Any], chosen: list[Any], depth: int = 0) -> Markup:
    state = node.get("state") or {}
    on_path = depth > 0 and depth <= len(chosen) and node.get("action") == chosen[depth - 1]
    label = [h("b", node.get("action") or "(now)"), f" value {node.get('value')} score {node.get('score')}",
             h("span", " imagined" if state.get("imagined") else "", class_="muted")]
    body = [pre(state.get("observation")) if state.get("observation") else "",
            pre(state.get("critic")) if state.get("critic") else "",
            h("ul", [h("li", alf_node(c, chosen if on_path or depth == 0 else [], depth + 1)) for c in node.get("children") or []])
            if node.get("children") else ""]
    return h("div", h("div", label, class_="chosen" if on_path else None), body)


def alfworld_step(step: dict[str, Any], calls: list[dict[str, Any]]) -> list[Markup]:
    tree = step.get("tree")
    return [
        fold(f"plan tree (chosen path: {' -> '.join(map(str, step.get('plan') or [])) or '—'})",
             alf_node(tree, step.get("plan") or []) if isinstance(tree, dict) else anything(tree), class_="tree",
             open_=True),
        row("action", h("b", step.get("action"))), row("observation", text_or_json(step.get("observation"))),
    ]


def alfworld_header(record: dict[str, Any]) -> list[Markup]:
    return [row("game", f"{record.get('name')} ({record.get('task_type')}), trial {record.get('trial')}"),
            learned_block(record.get("memory") or [], "reflections in memory for this trial"),
            row("intro", pre((record.get("transcript") or {}).get("intro")))]


def alfworld_trials(records: list[dict[str, Any]], reflections: list[dict[str, Any]]) -> Markup:
    games = sorted({r.get("game") for r in records}, key=lambda g: (g is None, g))
    trials = sorted({r.get("trial") for r in records}, key=lambda t: (t is None, t))
    result = {(r.get("game"), r.get("trial")): r for r in records}
    rows = []
    for g in games:
        name = next((r.get("name") for r in records if r.get("game") == g), "")
        cells = []
        for t in trials:
            r = result.get((g, t))
            cells.append("" if r is None else ("solved" if r.get("success") else f"failed ({r.get('env_steps')} steps)"))
        notes = [f"after trial {x['trial']}: {x['text']}" for x in reflections if x.get("game") == g]
        rows.append([g, name, *cells, h("div", [pre(n) for n in notes]) if notes else ""])
    return h("section", h("h2", "Trials and reflections"),
             table(["game", "name", *[f"trial {t}" for t in trials], "reflections"], rows), id="trials")


STEP_VIEWS = {"Game of 24": game24_step, "Tic-Tac-Toe": tictactoe_step, "BlocksWorld": blocksworld_step,
              "ALFWorld": alfworld_step}
HEADERS = {"Game of 24": game24_header, "Tic-Tac-Toe": tictactoe_header, "BlocksWorld": blocksworld_header,
           "ALFWorld": alfworld_header}


def generic_step(step: dict[str, Any], calls: list[dict[str, Any]]) -> list[Markup]:
    return [fold("plan tree", anything(step.get("tree")), class_="tree") if step.get("tree") else Markup(""),
            row("action", text_or_json(step.get("action"))), row("observation", text_or_json(step.get("observation"))),
            learned_block(reflections_of(calls))]


def steps_of(record: dict[str, Any], benchmark: str) -> list[tuple[Any, Any, dict[str, Any]]]:
    """(attempt, step number, step) for each real step of an episode."""
    if benchmark == "Tic-Tac-Toe":
        return [(None, e.get("turn"), e) for e in record.get("transcript") or []]
    if benchmark == "BlocksWorld" and "episodes" in record:
        return [(ep.get("episode"), s.get("step"), s) for ep in record["episodes"] for s in ep.get("steps") or []]
    return [(None, s.get("step"), s) for s in record.get("trace") or []]


def step_good(benchmark: str, step: dict[str, Any]) -> bool | None:
    info = step.get("info") or {}
    if benchmark == "Game of 24":
        verdicts = info.get("verdicts") or []
        return bool(verdicts) and all(v.get("verdict") == "correct" for v in verdicts)
    if benchmark == "BlocksWorld":
        return not mispredicted(step)
    if info.get("success"):
        return True
    return None
