"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from api.auth import require_key
from api.inference import READY_TEXT

router = APIRouter(tags=["service"])


@router.get("/health", summary="Liveness: the process answers (no key needed)")
async def health(request: Request) -> dict[str, object]:
    """Always 200 while the process runs; says whether the engine thread is alive."""
    worker = request.app.state.worker
    return {"status": "ok", "engine_thread_alive": worker.alive, "models_loaded": worker.loaded.is_set()}


@router.get("/ready", summary="Readiness: models loaded and a test sentence analysed in time (no key needed)")
async def ready(request: Request) -> JSONResponse:
    """200 when the engine analysed the test sentence within ``ready_timeout_s``; 503 otherwise (with why)."""
    worker = request.app.state.worker
    limit = request.app.state.settings.ready_timeout_s
    if worker.load_error is not None:
        return JSONResponse({"status": "failed", "reason": type(worker.load_error).__name__}, 503)
    if not worker.loaded.is_set():
        return JSONResponse({"status": "loading"}, 503, headers={"Retry-After": "5"})
    t0 = time.perf_counter()
    try:
        result, _ = await asyncio.wait_for(asyncio.wrap_future(worker.analyze(READY_TEXT, priority="probe")), limit)
    except TimeoutError:
        return JSONResponse({"status": "slow", "limit_s": limit}, 503)
    ms = (time.perf_counter() - t0) * 1000
    return JSONResponse({"status": "ready", "probe_ms": round(ms, 1), "probe_entities": len(result.entities),
                         "load_seconds": round(worker.load_seconds or 0.0, 2), "models": worker.pipeline.models,
                         "threads": request.app.state.threads})


@router.get("/metrics", summary="Prometheus text exposition", response_class=Response,
            dependencies=[Depends(require_key)])
async def metrics(request: Request) -> Response:
    """Latency per route, error counts, entities per note, mean confidence, engine batch sizes, and the monitoring
    gauges as the last background refresh left them (a scrape computes nothing, see :mod:`api.monitor`)."""
    m = request.app.state.metrics
    return Response(m.render(request.app.state.worker.depth), media_type=m.content_type)
