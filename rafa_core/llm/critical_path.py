"""The critical path of a run: its work replayed on a virtual clock, with free CPU and no limits.

A run's wall time can never drop below the longest chain of requests that wait on each other
(a propose, then the values of its candidates, then the next level's propose, ...) times the
latency of one request.  :func:`run_on_virtual_clock` measures that bound directly: the run
is replayed in-process with a :class:`DelayedLLM` (a simulated backend that answers after
exactly ``latency_s``) on an event loop whose clock jumps to the next timer whenever nothing
is ready.  Computation then takes no time and every sleep runs in parallel, so the loop's
final time is the critical path of the work (with as much concurrency as the run allowed:
give it all the episodes and requests at once to get the true bound).

Only for runs without real I/O waits (sockets, threads): the clock would jump past them.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any, Awaitable, Callable, TypeVar

from .base import BaseLLM, GenerationResult, Prompt

T = TypeVar("T")


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Reports ready file descriptors as usual, but never sleeps: it moves the clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or timeout is None:  # None: no timer at all, only real I/O can wake us
            return events or super().select(None)
        self.now += max(0.0, timeout)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual and jumps to the next timer when idle."""

    def __init__(self) -> None:
        self._virtual = _VirtualSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


def run_on_virtual_clock(make: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    """Run ``make()`` to the end on a virtual clock; its result and the virtual seconds it took."""
    loop = VirtualClockLoop()
    try:
        start = loop.time()
        result = loop.run_until_complete(make())
        return result, loop.time() - start
    finally:
        loop.close()


class DelayedLLM(BaseLLM):
    """A simulated backend answering as ``inner`` does, after ``latency_s`` per request."""

    def __init__(self, inner: BaseLLM, latency_s: float) -> None:
        super().__init__(inner.name, inner.model, usage=inner.usage, cache=inner.cache, concurrency=inner.concurrency,
                         seed=inner.seed)
        self.inner = inner
        self.latency_s = latency_s
        self.simulated = inner.simulated
        self.supports_loglik = inner.supports_loglik

    async def _generate(self, prompt: Prompt, **kwargs: Any) -> GenerationResult:
        await asyncio.sleep(self.latency_s)
        return await self.inner._generate(prompt, **kwargs)

    def _draw_kwargs(self, first_sample: int) -> dict[str, Any]:
        return self.inner._draw_kwargs(first_sample)

    async def _loglik(self, prefix: str, continuations: list[str]) -> tuple[list[float], int, int]:
        await asyncio.sleep(self.latency_s)
        return await self.inner._loglik(prefix, continuations)
