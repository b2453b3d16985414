"""The page: one self-contained HTML file (inline CSS and script, no network)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..runinfo import backend_of
from .html import Markup, fold, h, pre, table

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 40px;color:#222}
h1{font-size:22px;margin:18px 0 4px} h2{font-size:17px;margin:18px 0 6px} h3{font-size:15px;margin:10px 0 4px}
.sim{background:#fde68a;padding:1px 6px;border-radius:4px;font-weight:600}
table.grid{border-collapse:collapse;margin:6px 0} table.grid td,table.grid th{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
table.grid th{background:#f3f4f6}
details{margin:3px 0} summary{cursor:pointer}
details.episode{border:1px solid #d1d5db;border-radius:6px;padding:6px 10px;margin:10px 0}
details.episode>summary{font-weight:600}
.ok{color:#047857;font-weight:600} .fail{color:#b91c1c;font-weight:600}
ol.timeline{list-style:none;padding-left:0} li.step{border-left:3px solid #93c5fd;margin:8px 0;padding:2px 10px}
li.step.good{border-left-color:#34d399} li.step.bad{border-left-color:#f87171}
.label{display:inline-block;min-width:150px;margin-right:8px;color:#555;vertical-align:top} td.pre{white-space:pre;font-family:monospace}
pre.text{white-space:pre-wrap;word-break:break-word;background:#f9fafb;border:1px solid #eee;padding:6px;margin:3px 0;max-height:420px;overflow:auto}
pre.board{font:15px/1.2 monospace;display:inline-block;background:#fff;border:1px solid #ccc;padding:4px 8px;margin:2px 8px 2px 0}
.chosen{background:#dbeafe} .mismatch{background:#fee2e2} .learned{background:#ecfdf5;border:1px solid #a7f3d0;padding:4px 8px;border-radius:4px;margin:4px 0}
details.call{border-left:2px solid #e5e7eb;padding-left:8px} .role{font-weight:600}
.role-proposer{color:#1d4ed8} .role-critic{color:#7c3aed} .role-world-model{color:#b45309} .role-reflection{color:#047857}
ul.json,ol.json{margin:2px 0;padding-left:18px} .muted{color:#6b7280}
#tools{position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #eee;z-index:1}
"""

# The first script: any later script error is shown on the page (and tests read it).
ERROR_HOOK = """window.rafaErrors=[];window.addEventListener('error',function(e){window.rafaErrors.push(String(e.message));
document.documentElement.setAttribute('data-script-errors',String(window.rafaErrors.length));});"""

SCRIPT = """(function(){
function all(open){document.querySelectorAll('details').forEach(function(d){d.open=open;});}
document.getElementById('expand').onclick=function(){all(true);};
document.getElementById('collapse').onclick=function(){all(false);};
var only=document.getElementById('failed-only'), find=document.getElementById('find');
function filter(){var q=find.value.toLowerCase();
 document.querySelectorAll('details.episode').forEach(function(ep){
  var hide=(only.checked&&ep.dataset.success==='1')||(q&&ep.textContent.toLowerCase().indexOf(q)<0);
  ep.style.display=hide?'none':'';});}
only.onchange=filter; find.oninput=filter;
function reveal(){var t=location.hash&&document.getElementById(location.hash.slice(1));
 for(;t;t=t.parentElement){if(t.tagName==='DETAILS')t.open=true;}}
window.addEventListener('hashchange',reveal); reveal();
document.documentElement.setAttribute('data-ready','1');
})();"""


def page(title: str, body: list[Any]) -> str:
    head = h("head", Markup('<meta charset="utf-8">'), h("title", title), h("style", Markup(STYLE)),
             h("script", Markup(ERROR_HOOK)))
    tools = h("div", h("button", "expand all", id="expand", type="button"), " ",
              h("button", "collapse all", id="collapse", type="button"), " ",
              h("label", h("input", type="checkbox", id="failed-only"), " failed episodes only"), " ",
              h("input", type="search", id="find", placeholder="find text in episodes"), id="tools")
    return "<!DOCTYPE html>\n" + h("html", head, h("body", tools, *body, h("script", Markup(SCRIPT))), lang="en")


def summary_section(config: dict[str, Any], summary: dict[str, Any], benchmark: str, method: str) -> Markup:
    simulated = h("span", "SIMULATED backend", class_="sim") if summary.get("simulated") else ""
    rows = [
        ["benchmark", benchmark], ["method", method], ["backend", backend_text(config)],
        ["episodes", summary.get("episodes")], ["successes", f"{summary.get('successes')} ({summary.get('success_rate', 0):.1%})"],
        ["LLM calls", summary.get("llm_calls")],
        ["tokens", f"{summary.get('prompt_tokens')} in / {summary.get('completion_tokens')} out"],
        ["cache hits", summary.get("cache_hits")], ["cost", cost_text(summary)],
        ["wall", f"{summary.get('wall_s', 0):.1f} s"], ["stopped", summary.get("stopped") or "no"],
        ["code", code_text(config)],
    ]
    by_step = summary.get("success_by_step") or {}
    steps = table(["k"] + list(by_step), [["success within k"] + [f"{v:.0%}" for v in by_step.values()]]) if by_step else ""
    return h("section", h("h1", f"{benchmark}: {method}"), simulated, h("table", [h("tr", h("th", k), h("td", v)) for k, v in rows], class_="grid summary"),
             h("h3", "success within k steps") if by_step else "", steps, id="summary")


backend_text = backend_of


def cost_text(usage: dict[str, Any]) -> str:
    unpriced = usage.get("unpriced_models") or []
    note = f" (unpriced: {', '.join(unpriced)})" if unpriced else ""
    return f"${usage.get('cost_usd', 0):.4f}{note}"


def code_text(config: dict[str, Any]) -> str:
    code = config.get("code") or {}
    text = f"commit {code.get('git_commit') or '?'}, source {code.get('source_sha256') or '?'}"
    if config.get("earlier_code"):
        text += f"; resumed after code changes (earlier: {', '.join(str(c.get('source_sha256')) for c in config['earlier_code'])})"
    return text


def usage_line(usage: dict[str, Any] | None, calls: list[dict[str, Any]]) -> Markup:
    usage = usage or {}
    roles = Counter(c.get("role") or "unlabelled" for c in calls)
    by_role = ", ".join(f"{r} {n}" for r, n in roles.most_common())
    return h("p", h("span", "usage", class_="label"),
             f"{usage.get('llm_calls', 0)} LLM calls, {usage.get('prompt_tokens', 0)} + {usage.get('completion_tokens', 0)} tokens, "
             f"{usage.get('cache_hits', 0)} cache hits, {cost_text(usage)}" + (f"; logged calls by role: {by_role}" if calls else ""),
             class_="usage")


def calls_section(calls: list[dict[str, Any]], title: str = "LLM calls") -> Markup:
    if not calls:
        return Markup("")
    return fold(f"{title} ({len(calls)})", [call_view(c) for c in calls], class_="calls")


def call_view(call: dict[str, Any]) -> Markup:
    role = call.get("role") or "unlabelled"
    cached = call.get("cache_hits") or 0
    if call.get("op") == "loglik":
        head = [h("span", role, class_=f"role role-{role.replace(' ', '-')}"),
                f" loglik of {len(call.get('continuations') or [])} continuations"]
        body = [h("h3", "prefix"), pre(call.get("prefix")),
                table(["continuation", "log-likelihood"], [[c, f"{s:.3f}"] for c, s in
                                                          zip(call.get("continuations") or [], call.get("scores") or [])])]
    else:
        params = call.get("params") or {}
        texts = [c if isinstance(c, str) else (c or {}).get("text", "") for c in call.get("completions") or []]
        head = [h("span", role, class_=f"role role-{role.replace(' ', '-')}"),
                f" {params.get('n', len(texts))} sample(s), T={params.get('temperature')}"]
        body = [h("h3", "prompt"), [h("div", h("span", m.get("role", ""), class_="muted"), pre(m.get("content")))
                                    for m in call.get("messages") or []],
                h("h3", "completions"), [pre(t if t else "(empty)") for t in texts],
                h("p", "parameters: ", h("code", ", ".join(f"{k}={v}" for k, v in params.items())), class_="muted")]
    tail = (f" · {call.get('prompt_tokens', 0)}+{call.get('completion_tokens', 0)} tokens · "
            f"{call.get('latency_s', 0):.2f} s" + (f" · {cached} from cache" if cached else ""))
    return fold([*head, h("span", tail, class_="muted")], *body, class_="call")
