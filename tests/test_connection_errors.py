"""A closed local port fails at once, a host name that does not resolve is reported as such;
a server that has answered before and then refuses (a restart) is retried."""

from __future__ import annotations

import asyncio
import socket

import pytest

from rafa_core.llm.errors import UserError
from rafa_core.llm.openai_backend import OpenAILLM


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on leaving: nothing listens there


def ask(llm: OpenAILLM) -> None:
    async def go() -> None:
        try:
            await llm.generate("hello", max_tokens=4)
        finally:
            await llm.aclose()

    asyncio.run(go())


def backend(base_url: str, max_retries: int = 6) -> OpenAILLM:
    return OpenAILLM("m", base_url=base_url, max_retries=max_retries, backoff_base_s=0.01, backoff_max_s=0.02)


def test_a_closed_port_fails_without_retries():
    llm = backend(f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(UserError) as info:
        ask(llm)
    message = str(info.value)
    assert "connection refused" in message and "not retried" in message and "\n" not in message
    assert llm.stats.requests == 1 and llm.stats.retries == 0


def test_a_name_that_does_not_resolve_is_reported_as_such():
    llm = backend("http://rafa-no-such-host.invalid/v1")  # .invalid never resolves (RFC 2606)
    with pytest.raises(UserError) as info:
        ask(llm)
    message = str(info.value)
    assert "cannot resolve the host name 'rafa-no-such-host.invalid'" in message and "refused" not in message
    assert llm.stats.retries == 0


def test_a_refusal_after_the_server_has_answered_is_retried():
    llm = backend(f"http://127.0.0.1:{closed_port()}/v1", max_retries=2)
    llm._slot.reached = True  # as after a first answer: the server restarting is worth waiting for
    with pytest.raises(UserError) as info:
        ask(llm)
    assert llm.stats.retries == 2 and "after 3 attempts" in str(info.value)
