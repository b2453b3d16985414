"""The ``hf`` backend's request batcher: requests that arrive within a few milliseconds of each
other run as one batch on the model's worker thread (see :mod:`rafa_core.llm.hf`)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Hashable

# How long the batcher waits for company before running a request (seconds).
BATCH_WINDOW_S = 0.005


# ---------------------------------------------------------------------------------------
# The async batcher
# ---------------------------------------------------------------------------------------
@dataclass
class _Job:
    kind: str
    key: Hashable  # requests with equal (kind, key) may run as one batch
    payload: Any
    future: asyncio.Future


RunGroup = Callable[[str, Hashable, list[Any]], list[Any]]


class Batcher:
    """Queues requests briefly, then runs groups of same-kind requests on the worker thread.

    One batcher per event loop (futures belong to a loop); ``run_group(kind, key,
    payloads)`` runs on ``executor`` and returns one result per payload.
    """

    def __init__(
        self,
        run_group: RunGroup,
        executor: ThreadPoolExecutor,
        loop: asyncio.AbstractEventLoop,
        *,
        max_batch: int,
        window: float = BATCH_WINDOW_S,
    ) -> None:
        self.run_group = run_group
        self.executor = executor
        self.loop = loop
        self.max_batch = max(1, max_batch)
        self.window = window
        self._pending: list[_Job] = []
        self._drainer: asyncio.Task | None = None

    async def submit(self, kind: str, key: Hashable, payload: Any) -> Any:
        job = _Job(kind, key, payload, self.loop.create_future())
        self._pending.append(job)
        if self._drainer is None or self._drainer.done():
            self._drainer = self.loop.create_task(self._drain())
        return await job.future

    async def _drain(self) -> None:
        await asyncio.sleep(self.window)
        # Requests arriving while a batch runs wait here and form the next batches.
        while self._pending:
            jobs, self._pending = self._pending, []
            for batch in self._batches(jobs):
                await self._run(batch)

    def _batches(self, jobs: list[_Job]) -> list[list[_Job]]:
        groups: dict[tuple[str, Hashable], list[_Job]] = {}
        for job in jobs:
            groups.setdefault((job.kind, job.key), []).append(job)
        return [
            group[i : i + self.max_batch]
            for group in groups.values()
            for i in range(0, len(group), self.max_batch)
        ]

    async def _run(self, batch: list[_Job]) -> None:
        live = [job for job in batch if not job.future.done()]  # skip cancelled callers
        if not live:
            return
        first = live[0]
        try:
            results = await self.loop.run_in_executor(
                self.executor, self.run_group, first.kind, first.key, [j.payload for j in live]
            )
        except Exception as exc:  # handed to every caller waiting on this batch
            for job in live:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        for job, result in zip(live, results):
            if not job.future.done():
                job.future.set_result(result)
