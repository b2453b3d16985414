"""An adaptive limit on a backend's requests in flight (additive increase, multiplicative decrease).

A provider's quota (requests or tokens per minute) is not known in advance and is shared with
whatever else uses the key.  A fixed high concurrency turns into a storm of 429s, each retried
into the same wall.  The limiter starts at its ceiling (``--max-in-flight``), and:

- on a 429 (:meth:`Slot.rate_limited`) it halves the requests in flight (TCP's rule: half the
  flight, not half a limit that was never reached), once per burst: 429s from requests that
  started before the last decrease were sent under the old limit and do not count again; and
  no request starts before the answer's ``Retry-After`` has passed;
- on each success (:meth:`Slot.succeeded`) it grows by ``1 / limit``, i.e. by one request per
  limit's worth of successes, back up to the ceiling.

Waiters are served first come, first served, except that a retry goes first: a request that
was turned away once is not sent to the back of the queue to be turned away again.  A limiter belongs to the event loop that first
waits on it (:class:`~rafa_core.llm.base.BaseLLM` keeps one per loop).  Backends that do not
report outcomes (local models) use it as a plain semaphore: ``async with limiter: ...``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

DECREASE = 0.5  # the limit's factor on a 429
MAX_PAUSE_S = 60.0  # a longer Retry-After is capped (a clock skew or a hostile header)


@dataclass
class LimiterStats:
    decreases: int = 0  # how often a 429 lowered the limit
    pauses: int = 0  # 429s whose Retry-After held back new requests
    lowest_limit: int = 0  # the lowest the limit went (the ceiling if never lowered)
    most_in_flight: int = 0  # the most requests that were in flight at once


class AdaptiveLimiter:
    """At most ``limit`` requests in flight; the limit adapts to 429s between 1 and ``ceiling``."""

    def __init__(self, ceiling: int, *, floor: int = 1) -> None:
        self.ceiling = max(1, int(ceiling))
        self.floor = min(max(1, int(floor)), self.ceiling)
        self._limit = float(self.ceiling)
        self.in_flight = 0
        self.stats = LimiterStats(lowest_limit=self.ceiling)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._resume_at = 0.0  # loop time before which no request starts (Retry-After)
        self._timer: asyncio.TimerHandle | None = None
        self._generation = 0  # decreases so far: which limit a request was sent under

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        return int(self._limit)

    def slot(self, retry: bool = False) -> "Slot":
        """One request's place: ``async with limiter.slot() as slot:`` then report its outcome.
        ``retry``: the request was tried before; it waits at the head of the queue."""
        return Slot(self, retry)

    # -- as a plain semaphore (no outcome reported) --------------------------------------------
    async def __aenter__(self) -> None:
        await self._acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    # -- taking and giving back a place --------------------------------------------------------
    async def _acquire(self, retry: bool = False) -> int:
        """Wait for a place (first come, first served; retries first); the limit generation it was taken under."""
        if self._waiters or not self._can_start():
            waiter = asyncio.get_running_loop().create_future()
            if retry:
                self._waiters.appendleft(waiter)
            else:
                self._waiters.append(waiter)
            self._schedule_resume()
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # granted just as we were cancelled: pass the place on
                raise
        else:
            self._take()
        return self._generation

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _take(self) -> None:
        self.in_flight += 1
        self.stats.most_in_flight = max(self.stats.most_in_flight, self.in_flight)

    def _paused_for(self) -> float:
        if self._resume_at <= 0.0:
            return 0.0
        return self._resume_at - asyncio.get_running_loop().time()

    def _can_start(self) -> bool:
        return self.in_flight < self.limit and self._paused_for() <= 0.0

    def _wake(self) -> None:
        """Start as many waiters as the limit (and any Retry-After pause) allows."""
        while self._waiters and self._can_start():
            waiter = self._waiters.popleft()
            if waiter.done():  # cancelled while waiting
                continue
            self._take()
            waiter.set_result(None)
        self._schedule_resume()

    def _schedule_resume(self) -> None:
        """Wake the waiters when a Retry-After pause ends (nothing else would)."""
        pause = self._paused_for()
        if pause <= 0.0 or not self._waiters or self._timer is not None:
            return
        self._timer = asyncio.get_running_loop().call_later(pause, self._resume)

    def _resume(self) -> None:
        self._timer = None
        self._wake()

    # -- feedback ------------------------------------------------------------------------------
    def _succeeded(self) -> None:
        self._limit = min(float(self.ceiling), self._limit + 1.0 / self._limit)

    def _rate_limited(self, generation: int, retry_after_s: float | None) -> None:
        if generation == self._generation:  # the first 429 of a burst sent under this limit
            flight = min(self._limit, float(self.in_flight))  # this request is still in flight
            self._limit = max(float(self.floor), flight * DECREASE)
            self._generation += 1
            self.stats.decreases += 1
            self.stats.lowest_limit = min(self.stats.lowest_limit, self.limit)
        if retry_after_s is not None and retry_after_s > 0:
            resume_at = asyncio.get_running_loop().time() + min(retry_after_s, MAX_PAUSE_S)
            if resume_at > self._resume_at:
                self._resume_at = resume_at
                self.stats.pauses += 1

    def snapshot(self) -> dict[str, Any]:
        return {"ceiling": self.ceiling, "limit": self.limit, "in_flight": self.in_flight,
                "decreases": self.stats.decreases, "pauses": self.stats.pauses,
                "lowest_limit": self.stats.lowest_limit, "most_in_flight": self.stats.most_in_flight}


class Slot:
    """One request's place in an :class:`AdaptiveLimiter`; say how the request went before leaving."""

    __slots__ = ("_limiter", "_generation", "_retry")

    def __init__(self, limiter: AdaptiveLimiter, retry: bool = False) -> None:
        self._limiter = limiter
        self._generation = -1
        self._retry = retry

    async def __aenter__(self) -> "Slot":
        self._generation = await self._limiter._acquire(self._retry)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._limiter._release()

    def succeeded(self) -> None:
        self._limiter._succeeded()

    def rate_limited(self, retry_after_s: float | None = None) -> None:
        """The server said 429: lower the limit, and start nothing before ``retry_after_s``."""
        self._limiter._rate_limited(self._generation, retry_after_s)
