"""One request memo: every ask of the same request shares one answer.

The benchmarks remember their model requests for a while (Game of 24's critic values in
an episode, Tic-Tac-Toe's model answers until a model is updated, ALFWorld's requests in
an episode) and all need the same async rules, written once here:

- ``get(key, make)`` answers ``key``: the first asker starts ``make()`` as a task; every
  later asker, while it runs or after it finished, shares that one task and its answer.
- A request that fails (or whose task is cancelled) is not remembered: its waiters get
  the error and the next ``get`` of the key starts it again.
- An asker waits through ``asyncio.shield``: cancelling one asker stops only its wait; the
  request runs on for the others and its answer is remembered.
- ``prefetch(key, make)`` starts a request a later ``get`` will probably make, without
  waiting for it. A prefetched request no ``get`` claimed before it failed, was
  invalidated or ``settle()`` was called is *wasted* (it was paid for, and not used).
- ``invalidate(where=None)`` forgets every answer (or those whose key matches). A request
  still running is forgotten too: its current waiters get its answer, nobody else does.
- ``snapshot()`` / ``Memo(answers)``: the finished answers, to save and to restore.

The counters (``hits``, ``started``, ``prefetched``, ``wasted``) are the memo's own, so
one memo per episode (or per player) counts that episode's sharing and waste. A memo
serves one event loop (requests are its tasks); it may be created outside it.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Awaitable, Callable, Generic, Hashable, Mapping, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Make = Callable[[], Awaitable[V]]


class Memo(Generic[K, V]):
    """Answers by request key, with shared in-flight requests, prefetch and waste counting."""

    def __init__(self, answers: Mapping[K, V] | None = None) -> None:
        self._answers: dict[K, V] = dict(answers or {})
        self._running: dict[K, asyncio.Future[V]] = {}
        self._unclaimed: set[K] = set()  # prefetched, not asked for yet
        self._in_flight: set[asyncio.Future[V]] = set()  # forgotten ones too: settle() waits for them
        self._hits = self._started = self._prefetched = self._wasted = 0

    # -- asking ----------------------------------------------------------------------------
    async def get(self, key: K, make: Make[V]) -> V:
        """The answer for ``key``, from memory, from the request in flight, or from ``make()``."""
        self._unclaimed.discard(key)
        if key in self._answers:
            self._hits += 1
            return self._answers[key]
        task = self._running.get(key)
        if task is None:
            task = self._start(key, make)
        else:
            self._hits += 1
        return await asyncio.shield(task)

    def prefetch(self, key: K, make: Make[V]) -> bool:
        """Start ``key``'s request without waiting; False if it is answered or running already."""
        if key in self._answers or key in self._running:
            return False
        self._start(key, make)
        self._unclaimed.add(key)
        self._prefetched += 1
        return True

    def invalidate(self, where: Callable[[K], bool] | None = None) -> int:
        """Forget every answer and running request (or those whose key ``where`` accepts);
        how many were forgotten. Unclaimed prefetches among them count as wasted."""
        keys = [k for k in dict.fromkeys([*self._answers, *self._running]) if where is None or where(k)]
        for key in keys:
            self._answers.pop(key, None)
            self._running.pop(key, None)
            self._waste(key)
        return len(keys)

    async def settle(self) -> None:
        """Wait for every request still running and count the unclaimed prefetches as wasted.

        Nothing is cancelled: a provider bills a request it has started anyway, and waiting
        keeps the usage and the logs the same whatever the timing was. A failure is not
        raised here (its waiters saw it). Cancelling ``settle`` cancels no request."""
        self._wasted += len(self._unclaimed)
        self._unclaimed.clear()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight))

    # -- what it holds -------------------------------------------------------------------------
    def snapshot(self) -> dict[K, V]:
        """The finished answers (in the order they finished), e.g. to save; ``Memo(it)`` restores."""
        return dict(self._answers)

    def __contains__(self, key: object) -> bool:
        return key in self._answers or key in self._running

    @property
    def unclaimed(self) -> frozenset[K]:
        return frozenset(self._unclaimed)

    @property
    def hits(self) -> int:
        """Asks answered without starting a request (from memory, in flight, or prefetched)."""
        return self._hits

    @property
    def started(self) -> int:
        """Requests started, prefetches included."""
        return self._started

    @property
    def prefetched(self) -> int:
        return self._prefetched

    @property
    def wasted(self) -> int:
        """Prefetched requests that no ask claimed (failed, invalidated, or unasked at ``settle``)."""
        return self._wasted

    # -- inside --------------------------------------------------------------------------------
    def _start(self, key: K, make: Make[V]) -> asyncio.Future[V]:
        task = asyncio.ensure_future(make())
        self._running[key] = task
        self._in_flight.add(task)
        self._started += 1
        # Added before any waiter's callback: waiters resume with the answer remembered.
        task.add_done_callback(partial(self._finished, key))
        return task

    def _finished(self, key: K, task: asyncio.Future[V]) -> None:
        self._in_flight.discard(task)
        # Reading the exception marks it retrieved: a failed prefetch nobody awaited is no warning.
        failed = task.cancelled() or task.exception() is not None
        if self._running.get(key) is not task:
            return  # forgotten while it ran: its answer is not remembered
        del self._running[key]
        if failed:
            self._waste(key)
        else:
            self._answers[key] = task.result()

    def _waste(self, key: K) -> None:
        if key in self._unclaimed:
            self._unclaimed.discard(key)
            self._wasted += 1
