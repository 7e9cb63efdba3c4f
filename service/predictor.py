"""Runs the CPU-bound `predict` off the event loop, one call at a time, with a bounded wait.

Requests that arrive while the model is busy are classified together in the next call (the
encoder is several times cheaper per answer in a batch), without ever waiting for a batch to
fill: a lone request is classified at once. A caller waits at most `timeout` seconds; then it gets
`PredictTimeout` and, if its answers were not started yet, they are never classified.

Batching must never let one answer fail another: when a call on several answers raises, each
answer is classified again on its own, and only the requests whose answer fails get the error
(`ItemFailed`, with the answer's index in its request).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from reason_classifier.classifier import Prediction


class PredictTimeout(Exception):
    """The model did not answer within the configured time."""


class ItemFailed(Exception):
    """The model raised on the answer at `index` of a request (the cause is chained)."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(f"answer {index}: {type(error).__name__}: {error}")
        self.index, self.error = index, error


@dataclass
class _Job:
    texts: Sequence[str]
    future: asyncio.Future[list[Prediction]] = field(repr=False)


class Predictor:
    """`await predictor.predict(texts, timeout)`: predictions in order, or `PredictTimeout` / the model's error."""

    def __init__(
        self,
        predict: Callable[[list[str]], list[Prediction]],
        max_batch: int = 64,
        on_batch: Callable[[float], None] | None = None,
        threads: int = 1,
    ) -> None:
        self._predict = predict
        self._max_batch = max_batch
        self._on_batch = on_batch or (lambda seconds: None)
        self._threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="predict")
        self._queue: asyncio.Queue[_Job] | None = None
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start `threads` batching loops, each with one model call at a time; call inside the running event loop."""
        self._queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._workers = [loop.create_task(self._run(), name=f"predictor-{i}") for i in range(self._threads)]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def predict(self, texts: Sequence[str], timeout: float) -> list[Prediction]:
        assert self._queue is not None, "Predictor.start() was not called"
        job = _Job(texts, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        try:
            return await asyncio.wait_for(job.future, timeout)
        except TimeoutError:
            raise PredictTimeout(f"the model did not answer within {timeout:g} s") from None

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            size = len(jobs[0].texts)
            while size < self._max_batch and not self._queue.empty():
                job = self._queue.get_nowait()
                jobs.append(job)
                size += len(job.texts)
            jobs = [job for job in jobs if not job.future.done()]  # timed out while queued
            if not jobs:
                continue
            texts = [text for job in jobs for text in job.texts]
            started = time.perf_counter()
            try:
                predictions = await loop.run_in_executor(self._executor, self._predict, texts)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await self._one_by_one(jobs, error, len(texts))
                continue
            self._on_batch(time.perf_counter() - started)
            start = 0
            for job in jobs:
                end = start + len(job.texts)
                if not job.future.done():
                    job.future.set_result(predictions[start:end])
                start = end

    async def _one_by_one(self, jobs: list[_Job], error: Exception, size: int) -> None:
        """After a failed call: classify each answer alone, so only the requests whose own answer fails get an error."""
        loop = asyncio.get_running_loop()
        if size == 1:
            if not jobs[0].future.done():
                jobs[0].future.set_exception(ItemFailed(0, error))
            return
        for job in jobs:
            predictions: list[Prediction] = []
            for index, text in enumerate(job.texts):
                if job.future.done():
                    break
                try:
                    predictions.extend(await loop.run_in_executor(self._executor, self._predict, [text]))
                except asyncio.CancelledError:
                    raise
                except Exception as own:
                    job.future.set_exception(ItemFailed(index, own))
                    break
            if not job.future.done():
                job.future.set_result(predictions)
