"""Dynamic batching: pictures from concurrent requests share network calls.

Requests put a :class:`Job` on a bounded queue and await its future. One loop takes the first job,
waits up to ``max_wait`` seconds for more (``max_batch`` at most), and runs the batch in a single
worker thread, so the event loop keeps answering while the network runs. Pictures of any size
share a batch: each is letterboxed to its request's input size, and jobs with different input
sizes run as separate network calls within the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from darkyolo.data.letterbox import Letterbox, letterbox
from darkyolo.postprocess import NmsMethod, postprocess, scale_to_original
from darkyolo.serve.requests import DetectOptions


@dataclass
class Job:
    """One picture to detect in: RGB ``uint8 [H, W, 3]`` pixels and the request's options."""

    pixels: np.ndarray
    options: DetectOptions
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class Found:
    """A job's detections in the picture's pixels: boxes ``[K, 4]`` xyxy, scores, labels, and the
    seconds it waited in the queue and spent in the batch's network call."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    queued_s: float
    inference_s: float
    batch_size: int


class Batcher:
    """Batches jobs for ``backend`` (``float32 [B, H, W, 3]`` -> decoded rows ``[B, N, 5+C]``).

    ``on_batch(size)`` is called for every network batch (for metrics).
    """

    def __init__(
        self,
        backend: Callable[[np.ndarray], Any],
        *,
        max_batch: int,
        max_wait_s: float,
        queue_size: int,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self.backend = backend
        self.nms: NmsMethod = getattr(backend, "nms", NmsMethod())
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=queue_size)
        self.on_batch = on_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="darkyolo-net")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.executor.shutdown(wait=True)

    def submit(self, pixels: np.ndarray, options: DetectOptions) -> asyncio.Future:
        """Queue a picture; raises :class:`asyncio.QueueFull` when the queue is full."""
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(Job(pixels, options, future))
        return future

    def run_now(self, pixels: np.ndarray, options: DetectOptions) -> Found:
        """One picture through the same path, synchronously (warm-up, tests)."""
        loop = asyncio.new_event_loop()
        try:
            job = Job(pixels, options, loop.create_future())
            return self._run([job])[0]
        finally:
            loop.close()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = time.perf_counter() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), left))
                except asyncio.TimeoutError:
                    break
            batch = [job for job in batch if not job.future.done()]  # timed out meanwhile
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self.executor, self._run, batch)
            except Exception as error:  # the network failed: every waiting request hears it
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            for job, found in zip(batch, results):
                if not job.future.done():
                    job.future.set_result(found)

    def _run(self, batch: list[Job]) -> list[Found]:
        """Letterbox, one network call per input size, post-process each job with its options."""
        self.on_batch(len(batch))
        started = time.perf_counter()
        prepared: list[tuple[np.ndarray, Letterbox]] = [
            letterbox(job.pixels, job.options.input_hw) for job in batch
        ]
        rows: list[Any] = [None] * len(batch)
        for hw in {job.options.input_hw for job in batch}:
            members = [i for i, job in enumerate(batch) if job.options.input_hw == hw]
            out = self.backend(np.stack([prepared[i][0] for i in members]))
            for k, i in enumerate(members):
                rows[i] = out[k : k + 1]
        inference = time.perf_counter() - started
        results = []
        for job, (_, box), row in zip(batch, prepared, rows):
            o = job.options
            found = postprocess(row, o.input_hw, o.conf, o.iou, o.max_det, o.classes, nms=self.nms)
            found = scale_to_original(found, [box])[0]
            results.append(
                Found(
                    found.boxes.numpy().astype(np.float32),
                    found.scores.numpy().astype(np.float32),
                    found.labels.numpy().astype(np.int64),
                    started - job.queued_at,
                    inference,
                    len(batch),
                )
            )
        return results
