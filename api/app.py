"""The FastAPI application: ``create_app()`` builds it (uvicorn calls it as a factory, see :mod:`api.__main__`).

One process holds one :class:`~api.inference.InferenceWorker` (one loaded pipeline, a few engine threads, see that
module for the concurrency design) and one database engine. The outer ASGI guard does three things for every
request: refuses bodies over ``max_body_bytes`` with 413 before they are parsed, turns anything unexpected into a
500 whose log line names only the exception type (never a message, which could quote the note), and records
latency and status per route template for ``/metrics``. The access log line holds method, route template, status
and time: no body, no query string.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.errors import install_handlers
from api.inference import InferenceWorker, serving_threads
from api.metrics import Metrics
from api.monitor import MonitorGauges, MonitorRefresher, report_builder
from api.schemas.common import ErrorBody
from api.settings import ApiSettings

log = logging.getLogger("api")
access_log = logging.getLogger("api.access")
PREFIX = "/api/v1"


def default_loader(settings: ApiSettings) -> Callable[[], Any]:
    """A function that loads and warms the engine as the settings say (run on the first engine thread)."""

    def load() -> Any:
        import torch

        from engine import load_pipeline

        # Process-wide: every engine thread's forward pass uses this many intra-op threads (api/inference.py).
        torch.set_num_threads(serving_threads(settings.engine_threads, settings.torch_threads)[1])
        from engine.encounter.service import build_encounter
        from engine.pipeline import ANALYSIS_STAGES, freeze_loaded_objects

        pipeline = load_pipeline(settings.model_dir or None, device=settings.device)
        # deid and encounter load in a fraction of a second; loading them here keeps that off the first request
        # and lets a broken model folder show in /ready rather than as a request's error.
        pipeline.warm((*ANALYSIS_STAGES, "summarizer", "deid", "encounter"), freeze=False)
        probe = "Patient denies chest pain. History of hypertension treated with lisinopril."
        build_encounter(pipeline, pipeline.analyze(probe), probe, "auto")
        pipeline.stage("deid").deidentify("Seen by Dr Smith on 03/04/2020.")
        freeze_loaded_objects()
        return pipeline

    return load


async def _send_error(send: Callable[..., Any], status: int, body: ErrorBody) -> None:
    import json

    payload = json.dumps({"error": body.model_dump()}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class Guard:
    """ASGI middleware: body size limit, no 500 with details, per-route metrics and a text-free access log."""

    def __init__(self, app: Any, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        state = {"status": 500, "started": False}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        try:
            receive = await self._limited(scope, receive)
            if receive is None:
                state["status"] = 413
                await _send_error(send, 413, ErrorBody(code="too_large", message=(
                    f"request body over {self.max_body_bytes} bytes")))
            else:
                await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # the one place an unexpected error ends; its text may quote a note
            log.error("internal error on %s %s: %s", scope.get("method"), scope.get("path"), type(exc).__name__)
            if not state["started"]:
                await _send_error(send, 500, ErrorBody(code="internal_error", message="internal error"))
            state["status"] = 500
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        if route.startswith("/") and not route.startswith(PREFIX) and scope.get("path", "").startswith(PREFIX):
            route = PREFIX + route  # routers are included under the prefix; their routes know only their own path
        seconds = time.perf_counter() - t0
        self.metrics.observe(route, scope.get("method", ""), int(state["status"]), seconds)
        access_log.info("%s %s %s %.1f ms", scope.get("method"), route, state["status"], seconds * 1000)

    async def _limited(self, scope: dict[str, Any], receive: Callable[..., Any]) -> Callable[..., Any] | None:
        """``receive`` replaying the whole body, or ``None`` when it is over the limit."""
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return None
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks_done = [message]
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                chunks_done = []
                break
        body = b"".join(chunks)
        pending = [{"type": "http.request", "body": body, "more_body": False}, *chunks_done]

        async def replay() -> dict[str, Any]:
            return pending.pop(0) if pending else await receive()

        return replay


def create_app(settings: ApiSettings | None = None, loader: Callable[[], Any] | None = None) -> FastAPI:
    """Build the service.

    Args:
        settings: Service settings (default: from ``CLINICAL_NLP_API_*``).
        loader: Builds the pipeline (default: :func:`default_loader`); called once, on the first engine thread.

    Returns:
        The FastAPI app; its lifespan migrates the database, then starts the engine threads (models load in
        the background: ``/ready`` says when they are there).
    """
    settings = settings or ApiSettings.from_env()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from db.session import init_db

        app.state.db = init_db(settings.db_url)
        threads, torch_threads = serving_threads(settings.engine_threads, settings.torch_threads)
        app.state.threads = {"engine": threads, "torch": torch_threads}
        worker = InferenceWorker(loader or default_loader(settings), threads=threads,
                                 infer_batch=settings.infer_batch, infer_batch_chars=settings.infer_batch_chars,
                                 max_queue=settings.max_queue)
        worker.on_batch = metrics.observe_batch
        app.state.worker = worker
        worker.start()
        refresher = MonitorRefresher(MonitorGauges(metrics.registry), report_builder(
            settings.db_url, settings.monitor_window, settings.model_dir), settings.monitor_interval_s)
        app.state.monitor = refresher
        if settings.monitor_interval_s > 0:
            refresher.start()
        try:
            yield
        finally:
            refresher.stop()
            worker.stop()

    app = FastAPI(title="Clinical NLP API", version="1", lifespan=lifespan, docs_url="/docs",
                  description="Entities, assertions, ICD-10-CM codes and summaries of clinical notes; reviewer "
                  "feedback; dataset export. Every route but /api/v1/health and /api/v1/ready needs an API key "
                  "(Authorization: Bearer <key>, from `python -m db keys create`).")
    app.state.settings = settings
    app.state.metrics = metrics
    install_handlers(app)
    from api.routes import export, feedback, health, predict, text

    for module in (health, predict, text, feedback, export):
        app.include_router(module.router, prefix=PREFIX)
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes, metrics=metrics)
    return app
