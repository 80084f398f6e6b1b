"""One loaded pipeline, a few inference threads: how concurrent requests share the engine.

Design: every use of the engine (analyse, summarise, link, de-identify, the encounter code set) is a job on one
priority queue, run by a small pool of engine threads that share the one :class:`~engine.pipeline.Pipeline`
(loaded once). Request handlers never touch the pipeline; they submit a job and await its future, so the event
loop and the HTTP threads stay free while the engine works.

Why several engine threads, each with few torch threads (:func:`serving_threads`: on 2 CPUs, 2 engine threads of
1 torch thread each), and not one thread with every core in its forward pass: after the forward pass (torch,
which releases the GIL) each note spends tens of milliseconds in Python (sections, assertion, ICD coding), during
which one engine thread leaves the cores idle; two overlap one note's Python with another's forward pass. And a
forward pass split over 2 intra-op threads waits at every operator for its slowest thread: on a machine where other
processes take a core that costs about 3x (measured, docs/api.md), while two 1-thread passes share what is free.
The pipeline's stages are the ones the app already shares between its sessions' threads (their caches are
per-call or guarded).

What each thread gains by taking several waiting jobs at once is batching: analyse jobs waiting together (up to
``infer_batch`` notes and ``infer_batch_chars`` characters, and at most a fair share of the queue so the other
threads get work too) go through :meth:`Pipeline.analyze_many`, which batches their NER windows.

Jobs are ordered by priority (``stat`` before ``urgent`` before ``routine``; the readiness probe before all),
then by arrival. A full queue refuses new work (:class:`QueueFull`, 503) rather than letting latency grow without
bound.
"""

from __future__ import annotations

import itertools
import logging
import os
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


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where there is one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def serving_threads(engine_threads: int = 0, torch_threads: int = 0, cpus: int | None = None) -> tuple[int, int]:
    """``(engine threads, torch threads per forward pass)`` for the settings; 0 means "choose".

    Engine threads default to one per usable CPU, at most 4 (past that, more intra-op threads per pass pay off
    better than more Python threads contending for the GIL); torch threads default to the CPUs shared out among
    them, at least 1.
    """
    cpus = cpus or usable_cpus()
    engines = engine_threads or max(1, min(cpus, 4))
    return engines, torch_threads or max(1, cpus // engines)


class InferenceWorker:
    """The engine threads that share the pipeline and run queued jobs.

    Args:
        load: Builds the pipeline (called once, on the first engine thread, when :meth:`start` runs).
        threads: Engine threads (they start once the pipeline is loaded).
        infer_batch: Most analyse jobs per :meth:`Pipeline.analyze_many` call.
        infer_batch_chars: Most characters per such call.
        max_queue: Most waiting jobs.
    """

    def __init__(self, load: Callable[[], Any], *, threads: int = 1, infer_batch: int = 8,
                 infer_batch_chars: int = 40_000, max_queue: int = 256) -> None:
        self._load = load
        self.threads = max(1, threads)
        self.infer_batch = infer_batch
        self.infer_batch_chars = infer_batch_chars
        self.max_queue = max_queue
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.pipeline: Any = None
        self.loaded = threading.Event()
        self.load_error: BaseException | None = None
        self.load_seconds: float | None = None
        self.last_done = 0.0
        """``time.monotonic()`` when the last job finished (0: none yet)."""
        self.on_batch: Callable[[int, float], None] | None = None
        """Called with (notes, seconds) after each analyse call (metrics; from any engine thread)."""

    # ------------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the first engine thread; it loads and warms the pipeline, then starts the others."""
        if not self._threads:
            self._threads.append(threading.Thread(target=self._first, name="inference-0", daemon=True))
            self._threads[0].start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the running jobs; waiting jobs fail with ``RuntimeError``."""
        self._stop.set()
        for _ in range(self.threads):
            self._queue.put(_Job(-1, -1, "stop", Future()))
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        self.stop_pending(RuntimeError("the service is shutting down"))

    @property
    def alive(self) -> bool:
        """Whether the engine threads run (all of them, once the pipeline is loaded)."""
        running = [t for t in self._threads if t.is_alive()]
        return bool(running) and (not self.loaded.is_set() or len(running) == self.threads)

    @property
    def depth(self) -> int:
        """Jobs waiting (not counting the ones running)."""
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

    def _first(self) -> None:
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
        for i in range(1, self.threads):
            thread = threading.Thread(target=self._run, name=f"inference-{i}", daemon=True)
            self._threads.append(thread)
            thread.start()
        self.loaded.set()
        self._run()

    def _share(self) -> int:
        """Most analyse jobs one call may take now: ``infer_batch``, but no more than a fair share of the queue,
        so that one thread does not take every waiting note while the others go idle."""
        return max(1, min(self.infer_batch, -(-(self._queue.qsize() + 1) // self.threads)))

    def _run(self) -> None:
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
            limit = self._share()
            while len(batch) < limit and chars < self.infer_batch_chars:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt.kind != "analyze" or chars + len(nxt.text) > self.infer_batch_chars:
                    held.append(nxt)  # runs next on this thread, before anything queued later
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
