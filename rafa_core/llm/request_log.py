"""The request log: every LLM call of a run, with who asked and why (``requests.jsonl``).

A run attaches a :class:`RequestLog` to its root usage ledger; ``BaseLLM`` then writes one
JSON line per ``generate`` / ``loglik`` call (cache hits included): the labels below, the
prompt, the parameters, the completions (or scores), the tokens spent, the latency and
how many samples came from the cache. ``replay:<run>/requests.jsonl`` answers a rerun of
the same configuration from it, and ``python -m rafa_core view`` shows it per step.

Labels travel in context variables, so call sites need not pass them along:
``episode`` (set by the runner), ``attempt`` (a benchmark's episode within an episode: a
BlocksWorld rollout), ``step`` (set by the agent) and ``role`` (proposer, world model,
critic, reflection; set by :func:`labelled` around a task model's methods).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import orjson

from ..runinfo import read_jsonl

if TYPE_CHECKING:
    from .base import Completion

REQUESTS_FILE = "requests.jsonl"
FLUSH_EVERY_S = 0.5  # at most this long between a call and its line reaching the file

# Log lines: orjson (a tenth of the standard encoder's CPU: a run writes thousands of prompts),
# anything else as its str().  The standard encoder where orjson would change a value or refuse
# one: it writes a -inf log-probability as null, and cannot write an integer beyond 64 bits or a
# lone surrogate (model text may carry one).
_ORJSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
_encode_exactly = json.JSONEncoder(check_circular=False, default=str).encode


def _encode_line(record: dict[str, Any], *, exact: bool) -> bytes:
    """One log line (with its newline); ``exact``: the record may hold a non-finite float."""
    if not exact:
        try:
            return orjson.dumps(record, default=str, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            pass
    return (_encode_exactly(record) + "\n").encode("utf-8")

_LABELS: dict[str, contextvars.ContextVar[Any]] = {
    name: contextvars.ContextVar(f"rafa_{name}", default=None) for name in ("episode", "attempt", "step", "role")
}

PROPOSER, WORLD_MODEL, CRITIC, REFLECTION = "proposer", "world model", "critic", "reflection"
# A task model's methods and the role the LLM plays when they call it.
ROLE_OF_METHOD = {
    "propose": PROPOSER, "priors": PROPOSER, "whole_plan": PROPOSER, "prefetch": PROPOSER,
    "predict": WORLD_MODEL, "predict_own": WORLD_MODEL, "predict_reply": WORLD_MODEL,
    "dynamics": WORLD_MODEL, "opponent": WORLD_MODEL,
    "evaluate": CRITIC, "evaluate_all": CRITIC, "outcome": CRITIC, "winner": CRITIC, "availability": CRITIC,
}


@contextlib.contextmanager
def labels(**values: Any) -> Iterator[None]:
    """Label the LLM calls made inside the block (``episode=``, ``attempt=``, ``step=``, ``role=``)."""
    tokens = [(_LABELS[name], _LABELS[name].set(value)) for name, value in values.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_labels() -> dict[str, Any]:
    return {name: var.get() for name, var in _LABELS.items()}


class RoleLabelled:
    """A task model whose methods label their LLM calls with the role they play.

    The labelling methods are instance attributes (protocol checks such as
    ``isinstance(model, PriorModel)`` see them on every Python); everything else passes
    through, so planners and benchmarks use it as the model itself.
    """

    def __init__(self, model: Any) -> None:
        self._model = model
        for name, role in ROLE_OF_METHOD.items():
            method = getattr(model, name, None)
            if callable(method):
                setattr(self, name, _in_role(method, role))

    def __getattr__(self, name: str) -> Any:
        if name == "_model":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self._model, name)


def _in_role(method: Any, role: str) -> Any:
    # The role variable is set and reset directly: these wrap every model call of a search.
    role_var = _LABELS["role"]
    if inspect.iscoroutinefunction(method):
        @functools.wraps(method)
        async def in_role(*args: Any, **kwargs: Any) -> Any:
            token = role_var.set(role)
            try:
                return await method(*args, **kwargs)
            finally:
                role_var.reset(token)
        return in_role

    @functools.wraps(method)
    def in_role_sync(*args: Any, **kwargs: Any) -> Any:  # e.g. a prefetch that starts requests
        token = role_var.set(role)
        try:
            return method(*args, **kwargs)
        finally:
            role_var.reset(token)
    return in_role_sync


def labelled(model: Any) -> Any:
    """``model`` with its LLM calls labelled by role (itself if it has no method that plays one)."""
    if isinstance(model, RoleLabelled) or not any(callable(getattr(model, m, None)) for m in ROLE_OF_METHOD):
        return model
    return RoleLabelled(model)


def completion_json(completion: "Completion") -> Any:
    """A completion as logged: its text, or everything when it carries log-probabilities."""
    if completion.token_logprobs is None and completion.finish_reason in (None, "stop"):
        return completion.text
    return completion.to_json()


class RequestLog:
    """An append-only JSONL file of LLM calls.

    Lines are flushed every :data:`FLUSH_EVERY_S` (a live viewer sees them) and whenever the
    runner is about to record an episode (an episode on record has its calls in the log), not
    after each call, and never fsynced: a run makes thousands of calls. A torn last line left by
    a kill is cut off when the log is opened again. Each process writes its own
    ``session`` id, so a viewer can tell an interrupted attempt at an episode from the one
    that finished it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _cut_torn_tail(self.path)
        self.session = f"{os.getpid()}-{int(time.time())}"
        self._file = open(self.path, "ab")
        self._flushed_at = time.monotonic()
        self.calls = 0

    def write(self, record: dict[str, Any], *, exact: bool = False) -> None:
        """Append a record; ``exact``: it may hold a non-finite float (log-probabilities, scores)."""
        self._file.write(_encode_line({"session": self.session, **current_labels(), **record}, exact=exact))
        self.calls += 1
        if time.monotonic() - self._flushed_at >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        self._file.flush()
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        self._file.close()

    # -- what BaseLLM logs -------------------------------------------------------------------
    def generate(self, request: dict[str, Any], *, n: int, first_sample: int, completions: list["Completion"],
                 cache_hits: int, prompt_tokens: int, completion_tokens: int, started: float) -> None:
        params = {k: request[k] for k in ("temperature", "max_tokens", "stop", "logprobs")}
        self.write({
            "op": "generate", "backend": request["backend"], "model": request["model"],
            "messages": request["messages"], "params": {"n": n, "first_sample": first_sample, **params},
            "completions": [completion_json(c) for c in completions],
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "cache_hits": cache_hits, "latency_s": round(time.perf_counter() - started, 4),
        }, exact=any(c.token_logprobs is not None for c in completions))

    def loglik(self, request: dict[str, Any], *, continuations: list[str], scores: list[float], cache_hits: int,
               prompt_tokens: int, started: float) -> None:
        self.write({
            "op": "loglik", "backend": request["backend"], "model": request["model"],
            "prefix": request["prefix"], "continuations": continuations, "scores": scores,
            "prompt_tokens": prompt_tokens, "completion_tokens": 0,
            "cache_hits": cache_hits, "latency_s": round(time.perf_counter() - started, 4),
        }, exact=True)


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line without its newline (the process was killed while writing it)."""
    if not path.exists():
        return
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        block = min(size, 1 << 20)
        f.seek(size - block)
        tail = f.read(block)
        newline = tail.rfind(b"\n")
        f.truncate(size - block + newline + 1 if newline >= 0 else (0 if block == size else size))


def read_requests(path: str | Path) -> list[dict[str, Any]]:
    """Every whole record of a request log (a torn or foreign line is skipped)."""
    return read_jsonl(Path(path))
