"""The loopback server's shortcuts change nothing: token counts split at a paragraph equal
tiktoken's whole count, HTTP/1.1 keep-alive and pipelining answer in order, and the Game of
24 solver on integer pairs agrees with a plain Fraction search."""

from __future__ import annotations

import json
import socket
from fractions import Fraction
from itertools import combinations, combinations_with_replacement

import pytest

from rafa_core.game24 import prompts
from rafa_core.game24.env import can_reach_24
from rafa_core.llm.tokens import counter_for_model
from rafa_testkit.loopback import LoopbackServer, _count_in_parts, _last_paragraph

TEXTS = [
    prompts.value_prompt("4 5 6"),
    prompts.propose_prompt("1 2 3 4"),
    prompts.cot_prompt("4 5 6 10", ["10 - 4 = 6 (left: 5 6 6)"]),
    prompts.value_answer_prompt("4 5 6 10", "Answer: (10 - 4) * (6 - 5) * 4 = 24"),
    "Hello.\n\nWorld", "a?\n\nB c", "x \n\nY", "1\n\nAb\n\n\nC", "end.\n\n", "\n\nA", "q!\n\nZ\n\nz", "é\n\nÉ x",
    "x:\n\nRoom\n\n  Indented\n\nLast line ", "tab\t\n\nT", "emoji 😀\n\nNext'S", "\r\n\r\nA", "a\n\n\n\nB",
]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4", "gpt-3.5-turbo-instruct"])
def test_counting_in_parts_gives_tiktokens_count(model):
    counter = counter_for_model(model)
    split = _count_in_parts(counter.text)
    for text in TEXTS:
        assert split(text) == counter.text(text), text
    assert _last_paragraph(prompts.value_prompt("4 5 6")) is not None  # the shortcut is taken


def test_the_servers_usage_is_the_counters():
    counter = counter_for_model("gpt-4o-mini")
    with LoopbackServer(lambda text, request: "Answer.\n\nDone") as server:
        status, answer = post(server, [chat_body(TEXTS[0])])[0]
    assert status == 200
    assert answer["usage"]["prompt_tokens"] == counter.prompt([{"role": "user", "content": TEXTS[0]}])
    assert answer["usage"]["completion_tokens"] == counter.text("Answer.\n\nDone")


def test_keep_alive_pipelined_requests_are_answered_in_order():
    bodies = [chat_body(f"question {i}") for i in range(5)]
    with LoopbackServer(lambda text, request: text.upper()) as server:
        answers = post(server, bodies)
        assert server.stats.ok == 5 and server.stats.max_in_flight == 1
    assert [a["choices"][0]["message"]["content"] for _, a in answers] == [f"QUESTION {i}" for i in range(5)]


def test_a_malformed_request_head_is_a_400_and_the_connection_closes():
    with LoopbackServer(lambda text, request: "x") as server:
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as sock:
            sock.sendall(b"NONSENSE\r\n\r\n")
            data = read_all(sock)
    assert data.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in data


@pytest.mark.parametrize("size", [2, 3])
def test_the_integer_pair_solver_agrees_with_a_fraction_search(size):
    def reference(values):
        if len(values) == 1:
            return values[0] == 24
        for i, j in combinations(range(len(values)), 2):
            a, b = values[i], values[j]
            rest = [v for k, v in enumerate(values) if k not in (i, j)]
            results = [a + b, a * b, a - b, b - a] + ([a / b] if b else []) + ([b / a] if a else [])
            if any(reference(rest + [r]) for r in results):
                return True
        return False

    pool = [Fraction(n) for n in range(-2, 14)] + [Fraction(1, 2), Fraction(8, 3), Fraction(-3, 4)]
    for values in combinations_with_replacement(pool, size):
        assert can_reach_24(list(values)) == reference(list(values)), values


# -- raw HTTP ------------------------------------------------------------------------------------
def chat_body(text):
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}


def port_of(server):
    return int(server.base_url.rsplit(":", 1)[1].split("/")[0])


def post(server, bodies):
    """Send every request on one connection before reading (pipelined); (status, JSON) each."""
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as sock:
        for body in bodies:
            raw = json.dumps(body).encode()
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(raw), raw))
        buffer, answers = b"", []
        while len(answers) < len(bodies):
            while b"\r\n\r\n" not in buffer:
                buffer += sock.recv(65536)
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            while len(buffer) < length:
                buffer += sock.recv(65536)
            answers.append((int(head.split(b" ")[1]), json.loads(buffer[:length])))
            buffer = buffer[length:]
    return answers


def read_all(sock):
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data
