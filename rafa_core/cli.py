"""Flags shared by every entry point, backend construction, and the exit-code contract.

Exit codes: 0 done; 2 bad user input or a backend that kept failing past its retries (one
line on stderr, no traceback); 3 stopped at ``--max-cost`` (finished episodes kept); 1 an
unexpected crash (a bug: traceback shown).

"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

from .llm.base import BackendError, BaseLLM, BudgetExceeded, UserError
from .llm.cache import ResponseCache
from .llm.registry import BackendOptions, OracleFactory, describe_choice, make_llm
from .llm.usage import Usage

EXIT_OK, EXIT_CRASH, EXIT_USER_ERROR, EXIT_BUDGET = 0, 1, 2, 3


def default_cache_dir() -> Path:
    return Path(os.environ.get("RAFA_CACHE_DIR") or Path.home() / ".cache" / "rafa")


def add_shared_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("shared flags")
    group.add_argument("--base-url", dest="base_url", default=os.environ.get("OPENAI_BASE_URL"),
                       help="an OpenAI-compatible server (vLLM, llama.cpp, Ollama, ...); default $OPENAI_BASE_URL")
    group.add_argument("--cache", default=None, metavar="DIR",
                       help=f"response cache directory (default {default_cache_dir()}; $RAFA_CACHE_DIR)")
    group.add_argument("--no-cache", dest="no_cache", action="store_true", help="do not read or write the response cache")
    group.add_argument("--concurrency", type=positive_int, default=4, metavar="N",
                       help="episodes run at once; also the per-backend request limit x 4 (default 4)")
    group.add_argument("--max-cost", dest="max_cost", type=non_negative_float, default=None, metavar="USD",
                       help="stop cleanly once the run has spent this much (exit code 3)")
    group.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    group.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/<benchmark>/<name>)")
    group.add_argument("--timeout", type=positive_float, default=120.0, metavar="S", help="per-request timeout in seconds")
    group.add_argument("--max-retries", dest="max_retries", type=non_negative_int, default=6, metavar="N",
                       help="retries on 429 / 5xx / timeouts before a request fails (default 6)")
    group.add_argument("--context-window", dest="context_window", type=positive_int, default=None, metavar="TOKENS",
                       help="the model's context window, checked before each request (default: the model's own, "
                            "or the table in rafa_core/llm/context.py); llamacpp opens the model with it")
    group.add_argument("--tokens-as", dest="tokens_as", default=None, metavar="MODEL",
                       help="simulated backends (oracle, replay) count tokens as this OpenAI model does, and check "
                            "its context window (default gpt-4o-mini)")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def str2bool(text: str) -> bool:
    """A real boolean flag value (the originals used ``eval`` for this)."""
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "y", "on"}:
        return True
    if lowered in {"0", "false", "no", "n", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r} (use true/false)")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:
        pass


def open_cache(args: argparse.Namespace) -> ResponseCache | None:
    if getattr(args, "no_cache", False):
        return None
    directory = Path(args.cache) if getattr(args, "cache", None) else default_cache_dir()
    return ResponseCache(directory / "responses.sqlite")


def build_llm(
    spec: str,
    args: argparse.Namespace,
    usage: Usage,
    *,
    oracle: OracleFactory | None = None,
    cache: ResponseCache | None = None,
) -> BaseLLM:
    """Build the backend named by ``spec`` with the shared flags.

    Simulated backends skip the cache unless ``--cache`` was given: they are free and
    deterministic, and caching them would only hide changes to the oracle rules.
    """
    is_oracle = spec.split(":", 1)[0] in {"oracle", "replay"}
    options = BackendOptions(
        base_url=getattr(args, "base_url", None),
        cache=None if (is_oracle and not getattr(args, "cache", None)) else cache,
        concurrency=4 * getattr(args, "concurrency", 4),
        timeout=getattr(args, "timeout", 120.0),
        max_retries=getattr(args, "max_retries", 6),
        seed=getattr(args, "seed", 0),
        usage=usage,
        context_window=getattr(args, "context_window", None),
        counts_as=getattr(args, "tokens_as", None),
    )
    return make_llm(spec, options, oracle=oracle)


def announce_backend(requested: str | None, original_default: str, args: argparse.Namespace, label: str = "backend") -> str:
    """Resolve the backend and say which one runs and why, as the first line of output."""
    spec, why = describe_choice(requested, original_default, getattr(args, "base_url", None))
    simulated = " [SIMULATED]" if spec.split(":", 1)[0] in {"oracle", "replay"} else ""
    print(f"{label}: {spec}{simulated} ({why})", flush=True)
    return spec


def run_main(main: Callable[[], Awaitable[int | None]]) -> int:
    """Run an async entry point under the exit-code contract."""
    try:
        code = asyncio.run(main())
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BackendError as exc:  # the server kept failing past its retries: not a bug of ours
        print(f"error: the model backend failed: {exc}; finished episodes are kept, rerun with the same --out "
              "to resume", file=sys.stderr)
        return EXIT_USER_ERROR
    except BudgetExceeded as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return EXIT_BUDGET
    except KeyboardInterrupt:
        print("interrupted; rerun with the same --out to resume", file=sys.stderr)
        return 130
    return EXIT_OK if code is None else code


def config_from_args(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    config = {k: v for k, v in vars(args).items()}
    config.update(extra)
    config["argv"] = sys.argv[1:]
    return config
