"""Flags shared by every entry point, backend construction, and the exit-code contract.

Exit codes: 0 done; 2 bad user input or a backend that kept failing past its retries (one
line on stderr, no traceback); 3 stopped at ``--max-cost`` (finished episodes kept); 1 an
unexpected crash (a bug: traceback shown).

"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import random
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, NoReturn, TypeVar

from .llm.base import BaseLLM
from .llm.errors import BackendError, BudgetExceeded, UserError
from .llm.cache import ResponseCache, default_cache_dir
from .llm.registry import FREE_KINDS, BackendOptions, OracleFactory, describe_choice, make_llm
from .llm.usage import Usage

T = TypeVar("T")

EXIT_OK, EXIT_CRASH, EXIT_USER_ERROR, EXIT_BUDGET = 0, 1, 2, 3


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` shows every flag's default (unless its help text already names it)."""

    def _format_action(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        shows_default = (
            action.option_strings
            and help_text is not argparse.SUPPRESS
            and action.default is not argparse.SUPPRESS
            and not action.required
            and "default" not in help_text.lower()
            and not isinstance(action, (argparse._HelpAction, argparse._VersionAction))
        )
        if shows_default:
            action = copy.copy(action)
            if isinstance(action, argparse._StoreTrueAction):
                default = "off"
            else:
                default = "none" if action.default is None else "%(default)s"
            action.help = f"{help_text} (default: {default})".strip()
        return super()._format_action(action)


class ArgumentParser(argparse.ArgumentParser):
    """Every entry point's parser: a bad flag is ONE line on stderr and exit code 2 (argparse
    prints a usage block of 10-20 lines first); ``--help`` shows the defaults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        line = " ".join(str(message).split())
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {line} (see --help)\n")


def add_shared_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("shared flags")
    group.add_argument("--base-url", dest="base_url", default=os.environ.get("OPENAI_BASE_URL"),
                       help="an OpenAI-compatible server (vLLM, llama.cpp, Ollama, ...); default $OPENAI_BASE_URL")
    group.add_argument("--cache", default=None, metavar="DIR",
                       help=f"response cache directory (default {default_cache_dir()}; $RAFA_CACHE_DIR)")
    group.add_argument("--no-cache", dest="no_cache", action="store_true", help="do not read or write the response cache")
    group.add_argument("--concurrency", type=positive_int, default=AutoInt(LOCAL_EPISODES), metavar="N",
                       help=f"episodes run at once (default {API_EPISODES} against an API, which they wait on; "
                            f"{LOCAL_EPISODES} for models on this machine and simulated backends)")
    group.add_argument("--max-in-flight", dest="max_in_flight", type=positive_int, default=None, metavar="N",
                       help=f"requests in flight per backend at most (default {API_IN_FLIGHT} for an API, lowered "
                            "on 429s and raised again as requests succeed; 4 x --concurrency otherwise)")
    group.add_argument("--max-cost", dest="max_cost", type=non_negative_float, default=None, metavar="USD",
                       help="stop cleanly once the run has spent this much (exit code 3)")
    group.add_argument("--seed", type=whole_number, default=0, help="random seed (default 0)")
    group.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/<benchmark>/<name>)")
    group.add_argument("--timeout", type=positive_float, default=120.0, metavar="S", help="per-request timeout in seconds")
    group.add_argument("--max-retries", dest="max_retries", type=non_negative_int, default=6, metavar="N",
                       help="retries on 429 / 5xx / timeouts before a request fails (default 6)")
    group.add_argument("--no-request-log", dest="no_request_log", action="store_true",
                       help="do not write requests.jsonl (every LLM call's prompt and answers; on by default)")
    group.add_argument("--price", action="append", type=price_flag, default=[], metavar="MODEL=IN,OUT",
                       help="USD per million prompt / completion tokens for MODEL (deployments, servers); repeatable")
    group.add_argument("--estimate", action="store_true",
                       help="run this configuration on the simulated oracle (perfect and noisy), print the projected "
                            "calls, tokens and cost for the chosen model, and exit without calling it")
    group.add_argument("--context-window", dest="context_window", type=positive_int, default=None, metavar="TOKENS",
                       help="the model's context window, checked before each request (default: the model's own, "
                            "or the table in rafa_core/llm/context.py); llamacpp opens the model with it")
    group.add_argument("--tokens-as", dest="tokens_as", default=None, metavar="MODEL",
                       help="simulated backends (oracle, replay) count tokens as this OpenAI model does, and check "
                            "its context window (default gpt-4o-mini)")


# Defaults of --concurrency / --max-in-flight.  Episodes against an API mostly wait on the
# network, so many run at once (a 100-puzzle run is one wave); the adaptive limit on requests
# in flight, not the number of episodes, is what keeps a provider's quota from being stormed.
# Its ceiling covers the widest round of that wave (Game of 24's values: up to ~8 requests per
# puzzle, 736 measured at once): a lower one made a third of those requests wait a round.
API_EPISODES = 100
API_IN_FLIGHT = 1024
OTHER_OPEN_FILES = 256  # kept for everything but the requests' connections
LOCAL_EPISODES = 4
_ON_THIS_MACHINE = {"local", "hf", "llamacpp", "oracle", "replay", "scripted"}


class AutoInt(int):
    """A default that :func:`build_llm` may replace once it knows the backend; an int till then."""


def is_api_backend(spec: str) -> bool:
    """Whether the backend is a server we wait on (OpenAI, Azure, ``--base-url``)."""
    return spec.split(":", 1)[0] not in _ON_THIS_MACHINE


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a {'whole number' if kind is int else 'number'}: {text!r}") from None


def whole_number(text: str) -> int:
    return _number(text, int)


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def price_flag(text: str) -> tuple[str, float, float]:
    """``MODEL=IN,OUT`` in USD per million tokens."""
    model, _, prices = text.rpartition("=")
    try:
        prompt, completion = (float(x) for x in prices.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not MODEL=IN,OUT (USD per million tokens): {text!r}") from None
    if not model or prompt < 0 or completion < 0:
        raise argparse.ArgumentTypeError(f"not MODEL=IN,OUT (USD per million tokens): {text!r}")
    return model, prompt, completion


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
    if getattr(args, "estimate", False):  # project the cost on the simulated oracle, call nothing
        from .estimate import estimate

        check_priced_flags(args, usage)
        raise SystemExit(estimate(spec, args, usage))
    is_oracle = spec.split(":", 1)[0] in {"oracle", "replay"}
    options = BackendOptions(
        base_url=getattr(args, "base_url", None),
        cache=None if (is_oracle and not getattr(args, "cache", None)) else cache,
        concurrency=resolve_concurrency(spec, args),
        timeout=getattr(args, "timeout", 120.0),
        max_retries=getattr(args, "max_retries", 6),
        seed=getattr(args, "seed", 0),
        usage=usage,
        context_window=getattr(args, "context_window", None),
        counts_as=getattr(args, "tokens_as", None),
    )
    check_priced(spec, args, usage)
    return make_llm(spec, options, oracle=oracle)


def resolve_concurrency(spec: str, args: argparse.Namespace) -> int:
    """Requests in flight for ``spec``'s backend; settles an automatic ``--concurrency`` too,
    so the runner runs as many episodes as the backend was sized for."""
    episodes = getattr(args, "concurrency", LOCAL_EPISODES)
    if isinstance(episodes, AutoInt):
        episodes = API_EPISODES if is_api_backend(spec) else int(episodes)
        args.concurrency = episodes
    wanted = getattr(args, "max_in_flight", None)
    if wanted is None:
        return sockets_allowed(API_IN_FLIGHT) if is_api_backend(spec) else 4 * episodes
    in_flight = sockets_allowed(wanted) if is_api_backend(spec) else wanted
    if in_flight < wanted:
        print(f"note: --max-in-flight {wanted} needs more open files than this process may have; "
              f"{in_flight} requests in flight at most", file=sys.stderr)
    return in_flight


def sockets_allowed(wanted: int) -> int:
    """How many connections ``wanted`` requests in flight may hold. The soft limit on open files
    (256 or 1024 on many systems) is raised toward ``wanted`` + :data:`OTHER_OPEN_FILES`, as far
    as the hard limit allows; what it still lacks lowers ``wanted``."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + OTHER_OPEN_FILES
    if soft != resource.RLIM_INFINITY and soft < need:
        raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):  # e.g. macOS refuses more than its own cap
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - min(OTHER_OPEN_FILES, soft // 2)))


def check_priced_flags(args: argparse.Namespace, usage: Usage) -> None:
    for model, prompt, completion in getattr(args, "price", None) or []:
        usage.set_price(model, prompt, completion)


def check_priced(spec: str, args: argparse.Namespace, usage: Usage) -> None:
    """Apply ``--price``; with ``--max-cost``, refuse a paid model whose price is unknown."""
    check_priced_flags(args, usage)
    free = spec.split(":", 1)[0] in FREE_KINDS
    if getattr(args, "max_cost", None) is not None and not free and usage.price(spec) is None:
        raise UserError(f"--max-cost cannot be enforced: no price known for model {spec!r}; "
                        f"give one with --price {spec}=IN,OUT (USD per million tokens)")


def announce_backend(requested: str | None, original_default: str, args: argparse.Namespace, label: str = "backend") -> str:
    """Resolve the backend and say which one runs and why, as the first line of output."""
    spec, why = describe_choice(requested, original_default, getattr(args, "base_url", None))
    simulated = " [SIMULATED]" if spec.split(":", 1)[0] in {"oracle", "replay"} else ""
    print(f"{label}: {spec}{simulated} ({why})", flush=True)
    return spec


def run_event_loop(main: Awaitable[T]) -> T:
    """Run ``main`` to completion on uvloop (a dependency except on Windows): against a fast
    server a run's client CPU is an eighth lower, and opening a connection costs a quarter
    of what it does on asyncio's own loop, which runs it where uvloop is missing."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def run_main(main: Callable[[], Awaitable[int | None]]) -> int:
    """Run an async entry point under the exit-code contract."""
    try:
        code = run_event_loop(main())
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
