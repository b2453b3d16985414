"""The lean HTTP path reads the framings real servers use (Content-Length, chunked, close-
delimited), reuses keep-alive connections, and fails with the SDK's exception types; the
loopback server also runs in its own process."""

from __future__ import annotations

import asyncio
import json
import math
import socket

import openai
import pytest

from rafa_core.cli import run_event_loop
from rafa_core.game24.oracle import Game24Oracle
from rafa_core.llm.errors import UserError
from rafa_core.llm import lean_http
from rafa_core.llm.lean_http import LeanTransport
from rafa_testkit.loopback import FaultPlan, LoopbackProcess, LoopbackServer
from rafa_core.llm.openai_backend import OpenAILLM
from rafa_core.llm.scripted import ScriptedLLM

ANSWER = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 1, "completion_tokens": 1}}


def chunked(data: bytes, size: int = 7) -> bytes:
    parts = [data[i:i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


async def serve_raw(responses: list[bytes], seen: list[bytes]):
    """A server answering each request (read up to its body) with the next canned response."""
    connections = []

    async def handle(reader, writer):
        connections.append(writer)
        while responses:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int([ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0].split(b":")[1])
            seen.append(head + await reader.readexactly(length))
            response = responses.pop(0)
            writer.write(response)
            await writer.drain()
            if b"Connection: close" in response or b"Content-Length" not in response and b"chunked" not in response:
                writer.close()
                return

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, connections


async def post_once_as(host: str) -> tuple[dict, int]:
    """One post to a server answering ``{}``, reached as ``host``: (the answer, connections made)."""
    server, connections = await serve_raw([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"], [])
    port = server.sockets[0].getsockname()[1]
    transport = LeanTransport(f"http://{host}:{port}/v1", "key", timeout=5.0, max_connections=4)
    answer = await transport.post("/completions", {})
    await transport.aclose()
    server.close()
    return answer, len(connections)


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_each_framing_is_read(framing):
    body = json.dumps(ANSWER).encode()
    response = {
        "length": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
        "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body),
        "close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body,
    }[framing]

    async def main():
        seen: list[bytes] = []
        server, connections = await serve_raw([response, response], seen)
        port = server.sockets[0].getsockname()[1]
        transport = LeanTransport(f"http://127.0.0.1:{port}/v1", "key", timeout=5.0, max_connections=4)
        first = await transport.post("/chat/completions", {"model": "m"}, {"X-Extra": "1"})
        second = await transport.post("/chat/completions", {"model": "m"})
        await transport.aclose()
        server.close()
        return first, second, seen, len(connections)

    first, second, seen, connections = asyncio.run(main())
    assert first == second == ANSWER
    assert seen[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"Authorization: Bearer key\r\n" in seen[0] and b"X-Extra: 1\r\n" in seen[0]
    assert json.loads(seen[0].split(b"\r\n\r\n", 1)[1]) == {"model": "m"}
    assert connections == (2 if framing == "close" else 1)  # keep-alive unless the server closes


@pytest.mark.parametrize("run", [asyncio.run, run_event_loop], ids=["asyncio", "uvloop"])
def test_a_new_connections_request_reaches_a_loopback_server_before_the_loop_turns(run):
    # Waiting for the loop to report the connection first held requests back a whole turn
    # of a busy loop (~0.1 s in a burst of hundreds).
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(2.0)
        port = listener.getsockname()[1]

        async def main():
            transport = LeanTransport(f"http://127.0.0.1:{port}/v1", "key", timeout=5.0, max_connections=4)
            task = asyncio.ensure_future(transport.post("/chat/completions", {"model": "m"}))
            await asyncio.sleep(0)  # the post runs to its first wait, and the loop turns no further
            server_side, _ = listener.accept()
            with server_side:
                server_side.setblocking(False)
                received = server_side.recv(1 << 16)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await transport.aclose()
            return received

        received = run(main())
    assert received.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n") and received.endswith(b'{"model":"m"}')


@pytest.mark.parametrize("up_at_once", [True, False], ids=["up-at-once", "up-later"])
def test_a_loopback_connection_up_later_or_refused(monkeypatch, up_at_once):
    if not up_at_once:  # as where the kernel finishes a loopback connect after the call
        monkeypatch.setattr(lean_http, "_settled", lambda sock: False)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]

    async def main():
        answer, _ = await post_once_as("127.0.0.1")
        refused = LeanTransport(f"http://127.0.0.1:{closed_port}/v1", "key", timeout=5.0, max_connections=4)
        with pytest.raises(openai.APIConnectionError) as info:
            await refused.post("/completions", {})
        return answer, info.value.__cause__

    answer, cause = asyncio.run(main())
    assert answer == {} and isinstance(cause, ConnectionRefusedError)


def test_a_named_host_connects_through_the_loop():
    assert asyncio.run(post_once_as("localhost")) == ({}, 1)


def test_error_answers_become_the_sdks_exceptions_with_their_headers():
    body = json.dumps({"error": {"message": "slow down", "code": "rate_limit_exceeded", "type": "x"}}).encode()
    response = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async def main():
        server, _ = await serve_raw([response], [])
        port = server.sockets[0].getsockname()[1]
        transport = LeanTransport(f"http://127.0.0.1:{port}/v1", "key", timeout=5.0, max_connections=4)
        try:
            await transport.post("/completions", {})
        finally:
            await transport.aclose()
            server.close()

    with pytest.raises(openai.RateLimitError) as info:
        asyncio.run(main())
    assert info.value.code == "rate_limit_exceeded" and "slow down" in str(info.value)
    assert info.value.response.headers["retry-after"] == "2"


def test_a_body_orjson_refuses_is_sent_as_the_standard_encoder_writes_it():
    body = {"messages": [{"role": "user", "content": "a lone surrogate from model text: \ud800 é"}], "n": 2**70}
    assert json.loads(lean_http.encode_body(body)) == body
    assert json.loads(lean_http.encode_body({"x": "é"})) == {"x": "é"}


def test_an_answer_with_non_standard_numbers_is_read_and_a_cut_one_is_not():
    assert lean_http.decode_answer(b'{"a": [NaN, -Infinity, 1.5], "b": "\\u00e9"}')["b"] == "é"
    assert math.isinf(lean_http.decode_answer(b'{"a": -Infinity}')["a"])
    with pytest.raises(ValueError):
        lean_http.decode_answer(b'{"choices": [{"index": 0, "mess')


@pytest.mark.parametrize("garbage", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"])
def test_a_server_speaking_something_else_is_a_connection_error(garbage):
    async def main():
        server, _ = await serve_raw([garbage], [])
        port = server.sockets[0].getsockname()[1]
        transport = LeanTransport(f"http://127.0.0.1:{port}/v1", "key", timeout=5.0, max_connections=4)
        try:
            await transport.post("/completions", {})
        finally:
            await transport.aclose()
            server.close()

    with pytest.raises(openai.APIConnectionError):
        asyncio.run(main())


def test_the_server_in_its_own_process_answers_as_the_oracle_would():
    oracle = Game24Oracle(0.0)
    question = "Use numbers and basic arithmetic operations (+ - * /) to obtain 24.\nInput: 4 5 6 10\n"
    with LoopbackProcess(oracle, seed=3) as server:
        remote = asyncio.run(OpenAILLM("m", base_url=server.base_url, seed=3, timeout=10.0).generate(question, n=2))
        stats = server.stats()
    local = asyncio.run(ScriptedLLM(oracle, seed=3).generate(question, n=2))
    assert [c.text for c in remote] == [c.text for c in local]
    assert stats["requests"] == 1 and stats["ok"] == 1 and stats["cpu_s"] > 0


def numbered(text, request):
    return [f"{text} {i} {request.rng.randrange(100)}" for i in range(request.n)]


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_the_sdk_path_answers_as_the_lean_path_through_faults(api):
    plan = FaultPlan(rate=0.3, kinds=("429", "500", "truncated"), retry_after_s=0.01)
    answers = {}
    for http in ("lean", "sdk"):
        with LoopbackServer(numbered, seed=2, faults=plan) as server:
            llm = OpenAILLM("m", base_url=server.base_url, mode=api, http=http, seed=2, max_retries=8,
                            backoff_base_s=0.001, backoff_max_s=0.01)
            answers[http] = asyncio.run(llm.generate("hello there", n=2, logprobs=True, stop=["zz"]))
            assert llm.lean == (http == "lean")
    assert [(c.text, c.tokens, c.token_logprobs) for c in answers["lean"]] == \
        [(c.text, c.tokens, c.token_logprobs) for c in answers["sdk"]]
    assert answers["lean"][0].text.startswith("hello there 0")


def test_openai_and_azure_go_through_the_sdk(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert not OpenAILLM("gpt-4o-mini").lean
    with pytest.raises(UserError, match="lean"):
        OpenAILLM("gpt-4o-mini", http="lean")


def test_a_proxy_or_a_query_sends_base_url_requests_through_the_sdk(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert OpenAILLM("m", base_url="http://10.1.2.3:8000/v1").lean
    assert not OpenAILLM("m", base_url="http://10.1.2.3:8000/v1?api-version=1").lean
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    assert not OpenAILLM("m", base_url="http://10.1.2.3:8000/v1").lean
    monkeypatch.setenv("no_proxy", "10.1.2.3")
    assert OpenAILLM("m", base_url="http://10.1.2.3:8000/v1").lean
