"""A tiny HTML builder that escapes every string it is given (model text is untrusted).

``h("td", text)`` escapes ``text``; only :class:`Markup` (built here) passes unescaped, so
a prompt or a completion can never inject markup into the page.
"""

from __future__ import annotations

import html
import json
from typing import Any, Iterable


class Markup(str):
    """Already-safe HTML."""


def esc(value: Any) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Any]) -> Markup:
    return Markup("".join(esc(p) for p in parts))


def h(tag: str, *children: Any, **attrs: Any) -> Markup:
    """``<tag attrs>children</tag>``; ``class_`` is ``class``; None / False attributes are left out."""
    rendered = "".join(
        f' {name.rstrip("_").replace("_", "-")}' + ("" if value is True else f'="{html.escape(str(value), quote=True)}"')
        for name, value in attrs.items()
        if value is not None and value is not False
    )
    return Markup(f"<{tag}{rendered}>{join(_flatten(children))}</{tag}>")


def _flatten(children: Iterable[Any]) -> Iterable[Any]:
    for child in children:
        if isinstance(child, (list, tuple)):
            yield from _flatten(child)
        elif child is not None:
            yield child


def pre(text: Any, class_: str = "text") -> Markup:
    return h("pre", "" if text is None else text, class_=class_)


def fold(summary: Any, *body: Any, class_: str | None = None, open_: bool = False) -> Markup:
    return h("details", h("summary", summary), *body, class_=class_, open=open_)


def table(header: list[Any], rows: Iterable[list[Any]], class_: str = "grid") -> Markup:
    return h("table", h("tr", [h("th", c) for c in header]), [h("tr", [h("td", c) for c in row]) for row in rows],
             class_=class_)


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, default=str)


def anything(value: Any, depth: int = 0) -> Markup:
    """Any JSON value, readable: scalars inline, lists and objects as nested folds."""
    if isinstance(value, dict):
        if not value:
            return esc("{}")
        rows = [h("li", h("b", f"{k}: "), anything(v, depth + 1)) for k, v in value.items()]
        return h("ul", rows, class_="json") if depth < 1 or len(value) <= 3 else fold(f"{len(value)} fields", h("ul", rows, class_="json"))
    if isinstance(value, list):
        if not value:
            return esc("[]")
        if all(not isinstance(v, (dict, list)) for v in value) and len(value) <= 12:
            return h("code", ", ".join(str(v) for v in value))
        return fold(f"{len(value)} items", h("ol", [h("li", anything(v, depth + 1)) for v in value], class_="json"))
    if isinstance(value, str) and ("\n" in value or len(value) > 120):
        return pre(value)
    return h("code", "null" if value is None else value)
