"""``python -m rafa_core COMMAND [args]``: one entry point for the tools and the benchmarks.

Each command lives in its own module and exposes ``main(argv) -> int``; this file only maps
names to modules, imported lazily so that ``doctor`` works when an extra is missing.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, attribute, one-line description)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "game24": ("rafa_core.game24.cli", "main", "Game of 24 (ToT, Reflexion, RAFA)"),
    "tictactoe": ("rafa_core.tictactoe.cli", "main", "Tic-Tac-Toe (base player vs RAFA MPC player)"),
    "blocksworld": ("rafa_core.commands.blocksworld", "main", "BlocksWorld (RAFA MCTS; --method rap for RAP)"),
    "alfworld": ("rafa_core.commands.alfworld", "main", "ALFWorld (RAFA look-ahead with reflections)"),
    "compare": ("rafa_core.compare", "main", "one table across runs (seeds aggregated: mean ± 95% interval)"),
    "trace": ("rafa_core.view.trace", "main", "a short readable trace of a run: plan, act, predicted, observed, corrected"),
    "view": ("rafa_core.view", "main", "one self-contained HTML page of a run: steps, plan trees, every LLM call"),
    "doctor": ("rafa_core.doctor", "main", "check this machine: Python, extras, torch build, data, keys, cache (--online: the endpoint)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m rafa_core COMMAND [args]   (COMMAND --help for its flags)", "", "commands:"]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, _, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, COMMANDS, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else f" (one of: {', '.join(COMMANDS)})"
        print(f"error: unknown command {name!r}{hint}", file=sys.stderr)
        return 2
    module_name, attribute, _ = COMMANDS[name]
    entry = getattr(importlib.import_module(module_name), attribute)
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
