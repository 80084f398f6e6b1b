"""One loaded pipeline, one inference thread: how concurrent requests share the engine.

Design: every use of the engine (analyse, summarise, link, de-identify, the encounter code set) is a job on one
priority queue, run by one thread that owns the :class:`~engine.pipeline.Pipeline`. Request handlers never touch
the pipeline; they submit a job and await its future, so the event loop and the HTTP threads stay free while the
engine works. Why one thread and not a lock around a thread pool: on CPU the forward pass already uses every core
(torch intra-op threads), so two concurrent forwards only fight over the same cores, and the stages' Python parts
(assertion, ICD linking, caches) are then touched by one thread only, with no locking to get wrong. What one
thread gains instead is batching: analyse jobs waiting together (up to ``infer_batch`` notes and
``infer_batch_chars`` characters) go through :meth:`Pipeline.analyze_many`, which batches their NER windows.

Jobs are ordered by priority (``stat`` before ``urgent`` before ``routine``; the readiness probe before all),
then by arrival. A full queue refuses new work (:class:`QueueFull`, 503) rather than letting latency grow without
bound.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("api.inference")

PRIORITY = {"probe": 0, "stat": 1, "urgent": 2, "routine": 3}
"""Queue order of the request ``priority`` values (lower first)."""
READY_TEXT = "Patient denies chest pain. History of hypertension treated with lisinopril."
"""The readiness probe's test sentence."""


class QueueFull(RuntimeError):
    """The inference queue is full: the service is overloaded."""


@dataclass(order=True)
class _Job:
    rank: int
    seq: int
    kind: str = field(compare=False)
    """``analyze`` (batched with its neighbours) or ``call``."""
    future: Future = field(compare=False)
    text: str = field(default="", compare=False)
    note_id: str | None = field(default=None, compare=False)
    fn: Callable[[Any, Any], Any] | None = field(default=None, compare=False)
    """For ``call``: ``fn(pipeline, None)``; for ``analyze``: an optional ``fn(pipeline, result)`` run after."""


class InferenceWorker:
    """The thread that owns the pipeline and runs queued jobs.

    Args:
        load: Builds the pipeline (called once, on the worker thread, when :meth:`start` runs).
        infer_batch: Most analyse jobs per :meth:`Pipeline.analyze_many` call.
        infer_batch_chars: Most characters per such call.
        max_queue: Most waiting jobs.
    """

    def __init__(self, load: Callable[[], Any], *, infer_batch: int = 8, infer_batch_chars: int = 40_000,
                 max_queue: int = 256) -> None:
        self._load = load
        self.infer_batch = infer_batch
        self.infer_batch_chars = infer_batch_chars
        self.max_queue = max_queue
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.pipeline: Any = None
        self.loaded = threading.Event()
        self.load_error: BaseException | None = None
        self.load_seconds: float | None = None
        self.last_done = 0.0
        """``time.monotonic()`` when the last job finished (0: none yet)."""
        self.on_batch: Callable[[int, float], None] | None = None
        """Called with (notes, seconds) after each analyse call (metrics)."""

    # ------------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the thread; the pipeline loads and warms on it (see :attr:`loaded`)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the running job; waiting jobs fail with ``RuntimeError``."""
        self._stop.set()
        self._queue.put(_Job(-1, -1, "stop", Future()))
        if self._thread is not None:
            self._thread.join(timeout)
        self.stop_pending(RuntimeError("the service is shutting down"))

    @property
    def alive(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def depth(self) -> int:
        """Jobs waiting (not counting the one running)."""
        return self._queue.qsize()

    # ------------------------------------------------------------------------------------------------ submitting

    def _submit(self, job: _Job) -> Future:
        if self.load_error is not None:
            job.future.set_exception(self.load_error)
            return job.future
        if job.kind != "stop" and self._queue.qsize() >= self.max_queue:
            raise QueueFull(f"{self.max_queue} requests are already waiting for the engine")
        self._queue.put(job)
        return job.future

    def analyze(self, text: str, note_id: str | None = None, priority: str = "routine",
                after: Callable[[Any, Any], Any] | None = None) -> Future:
        """Queue a note; the future gives ``(AnalysisResult, after(pipeline, result) or None)``."""
        rank = PRIORITY.get(priority, PRIORITY["routine"])
        return self._submit(_Job(rank, next(self._seq), "analyze", Future(), text, note_id, after))

    def call(self, fn: Callable[[Any], Any], priority: str = "routine") -> Future:
        """Queue ``fn(pipeline)``; the future gives its return value."""
        rank = PRIORITY.get(priority, PRIORITY["routine"])
        return self._submit(_Job(rank, next(self._seq), "call", Future(), fn=lambda p, _r: fn(p)))

    # ------------------------------------------------------------------------------------------------ the thread

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            self.pipeline = self._load()
        except BaseException as exc:  # the service stays up to say why in /ready
            log.error("pipeline failed to load: %s", type(exc).__name__)
            self.load_error = exc
            self.loaded.set()
            self.stop_pending(exc)
            return
        self.load_seconds = time.perf_counter() - t0
        self.loaded.set()
        held: list[_Job] = []
        while not self._stop.is_set():
            job = held.pop(0) if held else self._queue.get()
            if job.kind == "stop":
                break
            if job.kind == "call":
                self._run_call(job)
                continue
            batch = [job]
            chars = len(job.text)
            while len(batch) < self.infer_batch and chars < self.infer_batch_chars:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt.kind != "analyze" or chars + len(nxt.text) > self.infer_batch_chars:
                    held.append(nxt)  # runs next, before anything queued later
                    break
                batch.append(nxt)
                chars += len(nxt.text)
            self._run_batch(batch)

    def stop_pending(self, exc: BaseException) -> None:
        """Fail every waiting job with ``exc`` (the pipeline could not load)."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if not job.future.done():
                job.future.set_exception(exc)

    def _run_call(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            assert job.fn is not None
            job.future.set_result(job.fn(self.pipeline, None))
        except BaseException as exc:
            job.future.set_exception(exc)
        self.last_done = time.monotonic()

    def _run_batch(self, batch: list[_Job]) -> None:
        batch = [j for j in batch if j.future.set_running_or_notify_cancel()]
        if not batch:
            return
        t0 = time.perf_counter()
        try:
            results = self.pipeline.analyze_many([(j.note_id, j.text) for j in batch])
        except BaseException:
            # One bad note must not fail its neighbours: run them one by one to find which one raised.
            results = None
        if self.on_batch is not None:
            try:
                self.on_batch(len(batch), time.perf_counter() - t0)
            except Exception:  # metrics must never fail a request
                log.exception("batch metrics callback failed")
        for i, job in enumerate(batch):
            try:
                result = results[i] if results is not None else self.pipeline.analyze(job.text, job.note_id)
                extra = job.fn(self.pipeline, result) if job.fn is not None else None
                job.future.set_result((result, extra))
            except BaseException as exc:
                job.future.set_exception(exc)
        self.last_done = time.monotonic()
