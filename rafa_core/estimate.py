"""``--estimate``: what a configuration would cost, measured on the simulated oracle.

The same command runs twice in a subprocess with every model replaced by the benchmark's
oracle, once perfect and once noisy (30% wrong answers), into a temporary directory; the
calls and tokens they made, priced for the chosen model, give the projected range. Nothing
is sent to the chosen model, so no key is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .llm.errors import UserError
from .llm.usage import Usage

ORACLES = {"perfect": "oracle", "noisy": "oracle:0.3"}
BACKEND_FLAGS = ("--backend", "--X", "--O", "--reflect_backend")
# Flags of the real run that the simulated ones must not inherit.
DROPPED_FLAGS = {"--estimate": 0, "--out": 1, "--max-cost": 1, "--cache": 1, "--base-url": 1}


def simulated_argv(argv: list[str], oracle: str, out: Path, args: argparse.Namespace, spec: str) -> list[str]:
    """The command line with every backend replaced by ``oracle``, its tokens counted as
    ``spec`` counts them, and a scratch ``--out``."""
    result: list[str] = []
    skip = 0
    for token in argv:
        if skip:
            skip -= 1
            continue
        name, eq, _ = token.partition("=")
        if name in DROPPED_FLAGS:
            skip = 0 if eq else DROPPED_FLAGS[name]
            continue
        if result and result[-1] in BACKEND_FLAGS:
            result.append(oracle)
            continue
        result.append(f"{name}={oracle}" if eq and name in BACKEND_FLAGS else token)
    present = {t.partition("=")[0] for t in result}
    for flag, attribute in (("--backend", "backend"), ("--X", "X"), ("--O", "O")):
        if hasattr(args, attribute) and flag not in present:
            result += [flag, oracle]
    return result + ["--out", str(out), "--no-cache", "--no-request-log", "--tokens-as", spec]


def interpreter_argv() -> list[str]:
    """How this process was started (``python game24/run.py ...`` or ``python -m rafa_core game24 ...``)."""
    return list(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))


def run_simulated(command: list[str]) -> dict[str, Any]:
    """Run one simulated copy of the command; its summary."""
    out = Path(command[command.index("--out") + 1])
    env = {**os.environ, "OPENAI_API_KEY": "", "AZURE_OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    try:
        return json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"--estimate: the simulated run failed ({tail})") from None


def estimate(spec: str, args: argparse.Namespace, usage: Usage) -> int:
    """Print the projected calls, tokens and cost of the configuration on ``spec``; exit code."""
    price = usage.price(spec)
    argv = interpreter_argv()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rafa-estimate-") as scratch:
        for name, oracle in ORACLES.items():
            print(f"estimate: running the configuration on the simulated {name} oracle ({oracle}) ...",
                  file=sys.stderr, flush=True)
            summary = run_simulated([sys.executable, *simulated_argv(argv[1:], oracle, Path(scratch) / name, args, spec)])
            rows.append((name, summary))
    print(f"estimate for {spec} (projected from the simulated oracle, its tokens counted as {spec} counts them):")
    costs = []
    for name, summary in rows:
        tokens_in, tokens_out = summary.get("prompt_tokens", 0), summary.get("completion_tokens", 0)
        cost = None if price is None else (tokens_in * price[0] + tokens_out * price[1]) / 1e6
        costs.append(cost)
        shown = "unknown (no price: give --price MODEL=IN,OUT)" if cost is None else f"${cost:.4f}"
        print(f"  {name:<8} oracle: {summary.get('episodes', 0)} episodes, {summary.get('llm_calls', 0)} calls, "
              f"{tokens_in} tokens in / {tokens_out} out -> {shown}")
    if price is not None:
        print(f"  projected cost: ${min(costs):.4f} - ${max(costs):.4f} at ${price[0]:g} / ${price[1]:g} "
              f"per million tokens in / out ({'--price' if spec in usage.root.prices else 'price database'})")
    print("  nothing was sent to the model; drop --estimate to run it")
    return 0
