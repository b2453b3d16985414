"""A loopback OpenAI-compatible HTTP server for tests and benchmarks, with fault injection.

The server answers from a ScriptedLLM-style rule ``rule(prompt_text, ScriptedRequest)``,
through the very same code as :class:`~rafa_core.llm.scripted.ScriptedLLM`, so a
``ScriptedLLM(rule, seed=s)`` and an ``OpenAILLM(seed=s)`` served by ``LoopbackServer(rule,
seed=s)`` give the same answers to the same request (the server reads which draw a request
is from its ``seed``, see :func:`rafa_core.llm.draws.sampler_seed`).  One asyncio event loop
in a background thread answers every connection on 127.0.0.1 at a free port (keep-alive
HTTP/1.1; latency and hangs are timers, so a slow server costs no threads), and token counts
are remembered per text: the server's CPU per request stays well below a client's::

    with LoopbackServer(rule, faults=FaultPlan(rate=0.2)) as server:
        llm = OpenAILLM("loopback", base_url=server.base_url, ...)
        ...
        print(server.stats.snapshot())

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/completions`` (``echo`` + ``logprobs``
score the prompt through ``loglik_rule``; the openai backend's ``loglik`` then returns what
``ScriptedLLM.loglik`` would), ``GET /v1/models``.  ``loglik_rule`` must accept any text:
the backend first checks the server's echo alignment on a counting sequence.  Answers are
not cut at ``max_tokens`` (the rule sees it, as with ScriptedLLM); ``usage`` counts tokens as
the requested model would (:mod:`.tokens`; a model tiktoken does not know: ``cl100k_base``).

Faults are drawn per POST request from ``(seed, request number)``; each kind imitates
something a real API does: ``429`` (with ``Retry-After``), ``500``, ``reset`` (the socket
is closed with no answer), ``hang`` (the answer comes ``hang_s`` late, past the client's
timeout, so keep the client's timeout below ``hang_s``) and ``truncated`` (a 200 whose JSON
body is cut off).  ``server.stats`` counts requests, normal answers and faults per kind.

A :class:`Quota` imitates a provider's rate limit: requests beyond it are answered at once
with a 429 whose ``Retry-After`` says when the next one would be let through (counted as
``rejected``, apart from injected faults).  :class:`LoopbackProcess` runs the server in a
child process, so that a benchmark's own process spends CPU on the client side only.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import hashlib
import json
import multiprocessing
import random
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from rafa_core.llm.base import Completion
from rafa_core.llm.scripted import LoglikRule, Rule, ScriptedLLM
from rafa_core.llm.tokens import TokenizerMissing, counter_for_model

FAULT_KINDS = ("429", "500", "reset", "hang", "truncated")
COUNTS_REMEMBERED = 16384  # token counts of texts, per model
MAX_HEAD = 64 * 1024  # a request head longer than this is refused

# Scoring tokens: runs of word characters, runs of whitespace, single punctuation marks.
# Whitespace is its own token so a prefix ending in (or a continuation starting with) a
# space still falls on a token boundary.
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class FaultPlan:
    """Which share of requests fail, and how."""

    rate: float = 0.2
    kinds: tuple[str, ...] = FAULT_KINDS
    retry_after_s: float = 0.05  # sent as Retry-After on 429s
    hang_s: float = 5.0  # how long a "hang" waits before answering

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be among {FAULT_KINDS}, got {self.kinds}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1], got {self.rate}")

    def fault_for(self, seed: int, request_number: int) -> str | None:
        """The fault (if any) of the n-th request: a pure function of (seed, n)."""
        if self.rate <= 0.0:
            return None
        digest = hashlib.sha256(f"fault|{seed}|{request_number}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        if rng.random() >= self.rate:
            return None
        return self.kinds[rng.randrange(len(self.kinds))]


@dataclass(frozen=True)
class Quota:
    """A rate limit: a bucket refilled with ``per_s`` requests a second, holding at most ``burst``.

    A request finding the bucket empty is rejected with a 429 and a ``Retry-After`` of the time
    until the next request would fit, as OpenAI's requests-per-minute limit does."""

    per_s: float
    burst: float = 1.0

    def __post_init__(self) -> None:
        if not (self.per_s > 0 and self.burst >= 1):
            raise ValueError(f"a quota needs per_s > 0 and burst >= 1, got {self.per_s}, {self.burst}")


class _Bucket:
    """The state of a :class:`Quota` (thread-safe)."""

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self.level = quota.burst
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float | None:
        """Take one request's place: None if it fits, else the seconds until one would."""
        with self.lock:
            now = time.monotonic()
            self.level = min(self.quota.burst, self.level + (now - self.at) * self.quota.per_s)
            self.at = now
            if self.level >= 1.0:
                self.level -= 1.0
                return None
            return (1.0 - self.level) / self.quota.per_s


@dataclass
class ServerStats:
    """Thread-safe counters: POST requests seen, answered normally, faults per kind."""

    requests: int = 0
    ok: int = 0
    errors: int = 0  # 4xx answers and rule failures (not injected faults)
    rejected: int = 0  # 429s of the quota (not injected faults)
    in_flight: int = 0
    max_in_flight: int = 0  # the most POST requests being handled at once
    faults: dict[str, int] = field(default_factory=lambda: {k: 0 for k in FAULT_KINDS})
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_request(self) -> int:
        """Count a request and return its number (0-based) among those not rejected by the
        quota, so that the faults drawn from it do not depend on timing."""
        with self._lock:
            self.requests += 1
            return self.requests - self.rejected - 1

    def reject(self) -> None:
        """Count a request the quota rejected."""
        with self._lock:
            self.requests += 1
            self.rejected += 1

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def count(self, outcome: str) -> None:
        with self._lock:
            if outcome == "ok":
                self.ok += 1
            elif outcome == "error":
                self.errors += 1
            else:
                self.faults[outcome] += 1

    @property
    def faults_total(self) -> int:
        with self._lock:
            return sum(self.faults.values())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "ok": self.ok,
                "errors": self.errors,
                "rejected": self.rejected,
                "faults": dict(self.faults),
                "max_in_flight": self.max_in_flight,
            }


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


class LoopbackServer:
    """An OpenAI-compatible server on 127.0.0.1 answering from a rule; a context manager."""

    def __init__(
        self,
        rule: Rule,
        *,
        latency_s: float = 0.0,
        faults: FaultPlan | None = None,
        seed: int = 0,
        loglik_rule: LoglikRule | None = None,
        model: str = "loopback",
        known_models: tuple[str, ...] | None = None,
        max_choices: int | None = None,
        api_key: str | None = None,
        refuses: tuple[str, ...] = (),
        quota: Quota | None = None,
    ) -> None:
        """``known_models``: if given, other model names get a 404 ``model_not_found``
        (by default any name is served).  ``max_choices``: answer at most this many
        choices per request whatever ``n`` asks (llama.cpp's server answers 1).
        ``api_key``: if given, requests without ``Authorization: Bearer <api_key>`` get a 401.
        ``refuses``: request parameters the served model refuses, as OpenAI's reasoning
        models do: a request carrying one gets their 400 (``unsupported_parameter``, or
        ``unsupported_value`` for a temperature other than 1) naming it.  ``quota``: a rate
        limit; requests beyond it get a 429 at once (see :class:`Quota`)."""
        self.scripted = _ServedScripted(rule, seed=seed, loglik_rule=loglik_rule)
        self.scripted.count_with = self.counter_for
        self.latency_s = latency_s
        self.faults = faults
        self.seed = seed
        self.loglik_rule = loglik_rule
        self.model = model
        self.known_models = known_models
        self.max_choices = max_choices
        self.api_key = api_key
        self.refuses = refuses
        self.quota = _Bucket(quota) if quota is not None else None
        self.stats = ServerStats()
        self._counters: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[_Connection] = set()
        self.base_url = ""

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "LoopbackServer":
        """Serve from an event loop in a background thread (one thread, whatever the load)."""
        self.warm_up()
        started: list[Any] = []
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started, ready), name="loopback-llm", daemon=True)
        self._thread.start()
        ready.wait()
        if isinstance(started[0], BaseException):
            self._thread.join()
            raise started[0]
        self.base_url = f"http://127.0.0.1:{started[0]}/v1"
        return self

    def warm_up(self) -> None:
        """Load the tokenizers now (seconds, once per process), not in the first request,
        which would hold up the one thread that answers everything."""
        try:
            self.counter_for(self.scripted.counts_as).text("")
            self.counter_for(self.model).text("")
        except TokenizerMissing:  # then every request fails with a 500 that says so
            pass

    def _serve(self, started: list[Any], ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            listener = loop.run_until_complete(loop.create_server(
                lambda: _Connection(self), "127.0.0.1", 0, backlog=256))  # the default backlog drops connections
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            started.append(exc)
            ready.set()
            loop.close()
            return
        started.append(listener.sockets[0].getsockname()[1])
        ready.set()
        try:
            loop.run_forever()
        finally:
            listener.close()
            for connection in list(self._connections):
                connection.abort()
            loop.run_until_complete(listener.wait_closed())
            loop.close()

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._thread = self._loop = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------------------------
    def fault_for(self, request_number: int) -> str | None:
        """The fault (if any) this server injects into its n-th POST request (0-based)."""
        return self.faults.fault_for(self.seed, request_number) if self.faults else None

    # -- answers -----------------------------------------------------------------------------
    def counter_for(self, model: str) -> Any:
        """``model``'s token counter, remembering each text's count: the server counts the same
        prompts (and the rule's answers) again and again, and tiktoken is most of its work."""
        counter = self._counters.get(model)
        if counter is None:
            counter = copy.copy(counter_for_model(model))
            counter.text = _count_in_parts(functools.lru_cache(maxsize=COUNTS_REMEMBERED)(counter.text))
            self._counters[model] = counter  # prompt() counts through .text
        return counter

    def check_model(self, body: dict[str, Any]) -> str:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _HTTPError(400, "'model' is required", "invalid_request_error")
        if self.known_models is not None and model not in self.known_models:
            raise _HTTPError(404, f"The model `{model}` does not exist", "model_not_found")
        return model

    def check_params(self, body: dict[str, Any]) -> None:
        for param in self.refuses:
            if param not in body:
                continue
            if param == "temperature":
                if body[param] == 1:
                    continue
                raise _HTTPError(400, f"Unsupported value: 'temperature' does not support {body[param]} with this "
                                 "model. Only the default (1) value is supported.", "unsupported_value", param)
            raise _HTTPError(400, f"Unsupported parameter: '{param}' is not supported with this model.",
                             "unsupported_parameter", param)

    def draw_of(self, body: dict[str, Any]) -> int:
        """Which draw of the request this is, read from its ``seed`` (a client seeded as this server)."""
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise _HTTPError(400, "'seed' must be an integer", "invalid_request_error", "seed")
        return self.scripted.draw_sampled_with(seed)

    def generate(self, prompt: Any, body: dict[str, Any], draw: int = 0) -> tuple[list[Completion], int, int]:
        """Run the rule exactly as ScriptedLLM does; returns (completions, prompt, completion tokens)."""
        n = body.get("n") or 1
        if not isinstance(n, int) or n < 1:
            raise _HTTPError(400, "'n' must be a positive integer", "invalid_request_error")
        stop = body.get("stop")
        if isinstance(stop, str):
            stop = [stop]
        temperature = body.get("temperature", 1.0)
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 16
        logprobs = bool(body.get("logprobs"))
        result = self.scripted.answer(prompt, n=n, temperature=temperature, max_tokens=max_tokens, stop=stop or None,
                                      logprobs=logprobs, first_sample=draw)
        completions = result.completions
        if self.max_choices is not None:
            completions = completions[: self.max_choices]
        counter = self.counter_for(str(body.get("model")))  # a real server bills its own model's tokens
        prompt_tokens = counter.text(prompt) if isinstance(prompt, str) else counter.prompt(prompt)
        return completions, prompt_tokens, sum(counter.text(c.text) for c in completions)

    def token_logprobs(self, completion: Completion) -> tuple[list[str], list[float]]:
        """The completion's own token logprobs, or made-up deterministic ones (all < 0)."""
        if completion.tokens is not None and completion.token_logprobs is not None:
            if len(completion.tokens) == len(completion.token_logprobs):
                return list(completion.tokens), [float(x) for x in completion.token_logprobs]
        tokens = _TOKEN.findall(completion.text)
        digest = hashlib.sha256(f"logprobs|{self.seed}|{completion.text}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        return tokens, [-round(rng.uniform(0.001, 2.5), 4) for _ in tokens]

    def prompt_logprobs(self, prompt: str) -> tuple[list[str], list[float | None], list[int]]:
        """Echo scores: token k gets G(o_k) - G(o_{k+1}) with G(o) = loglik_rule(p[:o], p[o:])
        and G(end) = 0, so the scores of the tokens after any token boundary ``o`` sum to
        exactly ``loglik_rule(prompt[:o], prompt[o:])`` - what ScriptedLLM.loglik returns."""
        assert self.loglik_rule is not None
        tokens = _TOKEN.findall(prompt)
        offsets, position = [], 0
        for token in tokens:
            offsets.append(position)
            position += len(token)
        scores = [float(self.loglik_rule(prompt[:o], prompt[o:])) for o in offsets] + [0.0]
        logprobs: list[float | None] = [scores[k] - scores[k + 1] for k in range(len(tokens))]
        if logprobs:
            logprobs[0] = None  # like real servers: the first token has no context
        return tokens, logprobs, offsets

    def chat_response(self, body: dict[str, Any], draw: int = 0) -> dict[str, Any]:
        model = self.check_model(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _HTTPError(400, "'messages' must be a non-empty list", "invalid_request_error")
        prompt = [{"role": str(m.get("role", "user")), "content": str(m.get("content") or "")} for m in messages]
        completions, prompt_tokens, completion_tokens = self.generate(prompt, body, draw)
        choices = []
        for index, c in enumerate(completions):
            choice: dict[str, Any] = {
                "index": index,
                "message": {"role": "assistant", "content": c.text},
                "finish_reason": c.finish_reason or "stop",
                "logprobs": None,
            }
            if body.get("logprobs"):
                tokens, lps = self.token_logprobs(c)
                choice["logprobs"] = {
                    "content": [
                        {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8")), "top_logprobs": []}
                        for t, lp in zip(tokens, lps)
                    ],
                    "refusal": None,
                }
            choices.append(choice)
        return _envelope("chat.completion", model, choices, prompt_tokens, completion_tokens)

    def completion_response(self, body: dict[str, Any], draw: int = 0) -> dict[str, Any]:
        model = self.check_model(body)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise _HTTPError(400, "'prompt' must be a string", "invalid_request_error")
        if body.get("echo"):
            return self.echo_response(model, prompt, body)
        completions, prompt_tokens, completion_tokens = self.generate(prompt, body, draw)
        choices = []
        for index, c in enumerate(completions):
            choice: dict[str, Any] = {
                "index": index,
                "text": c.text,
                "finish_reason": c.finish_reason or "stop",
                "logprobs": None,
            }
            if body.get("logprobs") is not None and body.get("logprobs") is not False:
                tokens, lps = self.token_logprobs(c)
                choice["logprobs"] = _completion_logprobs(tokens, lps, start=0)
            choices.append(choice)
        return _envelope("text_completion", model, choices, prompt_tokens, completion_tokens)

    def echo_response(self, model: str, prompt: str, body: dict[str, Any]) -> dict[str, Any]:
        """A scoring request: the prompt comes back with its token logprobs; nothing is generated."""
        if self.loglik_rule is None:
            raise _HTTPError(400, "echo is not supported by this server", "invalid_request_error")
        tokens, lps, offsets = self.prompt_logprobs(prompt)
        logprobs = None
        if body.get("logprobs") is not None and body.get("logprobs") is not False:
            logprobs = {
                "tokens": tokens,
                "token_logprobs": lps,
                "top_logprobs": [None] + [{t: lp} for t, lp in zip(tokens[1:], lps[1:])] if tokens else [],
                "text_offset": offsets,
            }
        choice = {"index": 0, "text": prompt, "finish_reason": "length", "logprobs": logprobs}
        return _envelope("text_completion", model, [choice], len(tokens), 0)

    def models_response(self) -> dict[str, Any]:
        names = list(self.known_models) if self.known_models is not None else [self.model]
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": "loopback"} for m in names],
        }


class LoopbackProcess:
    """A :class:`LoopbackServer` in a child process; a context manager like the server.

    The rule (and ``loglik_rule``) must be picklable: a module-level function or an instance
    of a module-level class.  ``stats()`` asks the child for its counters' snapshot and the
    CPU seconds it has used (``cpu_s``)."""

    def __init__(self, rule: Rule, **server_kwargs: Any) -> None:
        self.rule = rule
        self.server_kwargs = server_kwargs
        self.base_url = ""
        self._process: Any = None
        self._pipe: Any = None

    def start(self) -> "LoopbackProcess":
        context = multiprocessing.get_context("spawn")  # no copy of this process's threads or loops
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(target=_serve_in_child, args=(child_end, self.rule, self.server_kwargs),
                                        name="loopback-llm", daemon=True)
        self._process.start()
        child_end.close()
        if not self._pipe.poll(60):
            self.stop()
            raise RuntimeError("the loopback server process did not start within 60 s")
        self.base_url = self._pipe.recv()
        return self

    def stats(self) -> dict[str, Any]:
        self._pipe.send("stats")
        return self._pipe.recv()

    def stop(self) -> None:
        if self._process is None:
            return
        try:
            self._pipe.send("stop")
        except OSError:
            pass
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        self._pipe.close()
        self._process = self._pipe = None

    def __enter__(self) -> "LoopbackProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve_in_child(pipe: Any, rule: Rule, server_kwargs: dict[str, Any]) -> None:
    with LoopbackServer(rule, **server_kwargs) as server:
        pipe.send(server.base_url)
        while True:
            try:
                command = pipe.recv()
            except EOFError:  # the parent is gone
                return
            if command == "stats":
                pipe.send({**server.stats.snapshot(), "cpu_s": time.process_time()})  # the server's CPU so far
            else:
                return


def _count_in_parts(count: Any) -> Any:
    """``count`` (remembered) applied to a text cut at its last paragraph break: prompts that
    share their few-shot examples and differ in the question at the end count the examples once."""
    @functools.lru_cache(maxsize=COUNTS_REMEMBERED)
    def count_text(text: str) -> int:
        cut = _last_paragraph(text)
        return count(text) if cut is None else count(text[:cut]) + count(text[cut:])

    return count_text


def _last_paragraph(text: str) -> int | None:
    """Where the text's last paragraph starts with a capital after a blank line that follows a
    non-space: there a piece of tiktoken's pre-tokenizer ends in both encodings, whatever the
    rest, so the text's count is the sum of the two sides' counts."""
    at = text.rfind("\n\n")
    while at > 0:
        start = at + 2
        if start < len(text) and "A" <= text[start] <= "Z" and not text[at - 1].isspace():
            return start
        at = text.rfind("\n\n", 0, at + 1)
    return None


def _envelope(kind: str, model: str, choices: list[dict], prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "id": f"loopback-{time.monotonic_ns()}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _completion_logprobs(tokens: list[str], lps: list[float], start: int) -> dict[str, Any]:
    offsets, position = [], start
    for token in tokens:
        offsets.append(position)
        position += len(token)
    return {
        "tokens": tokens,
        "token_logprobs": lps,
        "top_logprobs": [{t: lp} for t, lp in zip(tokens, lps)],
        "text_offset": offsets,
    }


class _ServedScripted(ScriptedLLM):
    """The server's ScriptedLLM: it counts tokens with the server's remembering counter."""

    count_with: Any = None  # LoopbackServer.counter_for

    def token_counter(self) -> Any:
        return self.count_with(self.counts_as)


class _Connection(asyncio.Protocol):
    """One client connection: HTTP/1.1 requests read in turn, keep-alive, answered on the loop.

    A request's head and body are parsed here (Content-Length framing, as OpenAI's clients
    send); the answer goes out in one write.  Latency and hangs are timers, not threads."""

    def __init__(self, app: LoopbackServer) -> None:
        self.app = app
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False  # a request is being answered; later bytes wait in the buffer
        self.posting = False  # the request being answered counts as in flight
        self.close_after = False
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.app._connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self.next_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self.app._connections.discard(self)
        self.transport = None
        if self.timer is not None:  # a client that gave up (a timeout) gets no late answer
            self.timer.cancel()
        self.finish()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- requests -----------------------------------------------------------------------------
    def next_request(self) -> None:
        """Answer the request in the buffer, if it has all arrived."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self.close_after, self.busy = True, True
                self.send_json(431, _error_body("request head too long", "invalid_request_error"))
            return
        try:
            method, path, headers = _parse_request_head(bytes(self.buffer[:end]))
            length = int(headers.get("content-length") or 0)
        except ValueError:
            self.close_after, self.busy = True, True
            self.send_json(400, _error_body("a malformed request", "invalid_request_error"))
            return
        if len(self.buffer) < end + 4 + length:
            return
        raw = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.busy = True
        self.close_after = headers.get("connection", "").lower() == "close"
        if method == "POST":
            self.post(path, headers, raw)
        elif method == "GET" and path.rstrip("/") in ("/v1/models", "/models"):
            self.send_json(200, self.app.models_response())
        else:
            self.send_json(404, _error_body(f"no route {path}", "not_found"))

    def post(self, path: str, headers: dict[str, str], raw: bytes) -> None:
        app = self.app
        self.posting = True
        app.stats.enter()
        wait = app.quota.take() if app.quota is not None else None
        if wait is not None:  # over the quota: a provider answers at once, before any work
            app.stats.reject()
            self.send_json(429, _error_body("Rate limit reached for requests (quota)", "rate_limit_exceeded"),
                           {"Retry-After": f"{wait:.3f}", "retry-after-ms": str(max(1, round(wait * 1000)))})
            return
        fault = app.fault_for(app.stats.next_request())
        delay = app.latency_s
        if fault == "hang":  # then answer normally (the client has usually given up by then)
            app.stats.count("hang")
            delay += app.faults.hang_s if app.faults else 5.0
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        # The answer is worked out now and sent when the latency has passed since the request
        # came: the latency is the request's whole time, not the latency plus the simulator's CPU.
        reply = self.reply_to(path, headers, raw, fault)
        if delay > 0:
            self.timer = loop.call_at(due, self.deliver, reply)
        else:
            self.deliver(reply)

    def reply_to(self, path: str, headers: dict[str, str], raw: bytes, fault: str | None) -> tuple:
        """(outcome counted when sent, status, body, extra headers); outcome "reset": no answer."""
        app = self.app
        if fault == "reset":
            return ("reset", 0, b"", None)
        if fault == "429":
            retry_after = app.faults.retry_after_s if app.faults else 0.05
            return ("429", 429, _json(_error_body("Rate limit reached (injected)", "rate_limit_exceeded")),
                    {"Retry-After": f"{retry_after:g}", "retry-after-ms": str(int(retry_after * 1000))})
        if fault == "500":
            return ("500", 500, _json(_error_body("The server had an error (injected)", "server_error")), None)
        if app.api_key is not None and headers.get("authorization") != f"Bearer {app.api_key}":
            return ("error", 401, _json(_error_body("Incorrect API key provided", "invalid_api_key")), None)
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise _HTTPError(400, "the request body must be a JSON object", "invalid_request_error")
            draw = app.draw_of(body)
            app.check_params(body)
            route = path.rstrip("/")
            if route in ("/v1/chat/completions", "/chat/completions"):
                answer = app.chat_response(body, draw)
            elif route in ("/v1/completions", "/completions"):
                answer = app.completion_response(body, draw)
            else:
                raise _HTTPError(404, f"no route {path}", "not_found")
        except _HTTPError as exc:
            return ("error", exc.status, _json(_error_body(exc.message, exc.code, exc.param)), None)
        except ValueError as exc:
            return ("error", 400, _json(_error_body(f"bad request: {exc}", "invalid_request_error")), None)
        except Exception as exc:  # a rule that crashes is a server error, not a dead server
            return ("error", 500, _json(_error_body(f"rule failed: {type(exc).__name__}: {exc}", "server_error")), None)
        data = _json(answer)
        if fault == "truncated":
            return ("truncated", 200, data[: max(1, len(data) // 2)], None)
        return ("ok" if fault is None else None, 200, data, None)

    def deliver(self, reply: tuple) -> None:
        self.timer = None
        outcome, status, data, headers = reply
        if outcome is not None:
            self.app.stats.count(outcome)
        if outcome == "reset":
            self.reset()
        else:
            self.send_bytes(status, data, headers)

    # -- answers ------------------------------------------------------------------------------
    def send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, _json(payload), headers)

    def send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        """The whole answer in one write; then the next request, if one is waiting."""
        if self.transport is not None and not self.transport.is_closing():
            extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items()) if headers else ""
            if self.close_after:
                extra += "Connection: close\r\n"
            head = (f"HTTP/1.1 {status} {_reason(status)}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n{extra}\r\n")
            self.transport.write(head.encode("latin-1") + data)
            if self.close_after:
                self.transport.close()
        self.finish()
        if self.buffer and self.transport is not None and not self.close_after:
            self.next_request()

    def reset(self) -> None:
        """Close with RST and no answer, as a crashing proxy would."""
        self.finish()
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (OSError, AttributeError):
            pass
        self.transport.abort()

    def finish(self) -> None:
        """The request being answered is done (answered, reset, or its client gone)."""
        self.busy = False
        if self.posting:
            self.posting = False
            self.app.stats.leave()


def _parse_request_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """(method, path, headers by lower-case name) of an HTTP/1.x request head; ValueError if malformed."""
    lines = head.decode("latin-1").split("\r\n")
    method, path, version = lines[0].split(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"not HTTP/1.x: {version[:20]!r}")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"a malformed header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return method, path, headers


@functools.lru_cache(maxsize=None)  # a handful of status codes
def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode("utf-8")


def _error_body(message: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    kind = "invalid_request_error" if param else code or "error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
