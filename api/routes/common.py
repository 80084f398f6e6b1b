"""What every route shares: the worker, waiting for an engine job, the note size check."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

from fastapi import Request

from api.errors import ApiError
from api.inference import InferenceWorker
from api.settings import ApiSettings


def settings_of(request: Request) -> ApiSettings:
    """The app's settings."""
    return request.app.state.settings


def worker_of(request: Request) -> InferenceWorker:
    """The app's inference worker, or 503 while the models load or when they failed to."""
    worker: InferenceWorker = request.app.state.worker
    if worker.load_error is not None:
        raise ApiError(503, "not_ready", f"the engine failed to load ({type(worker.load_error).__name__})")
    return worker


def check_note_size(text: str, limit: int, field: str = "note_text") -> None:
    """413 when a note is over the character limit."""
    if len(text) > limit:
        raise ApiError(413, "too_large", f"{field} has {len(text)} characters; the limit is {limit}", field)


async def wait_for(future: Future, timeout: float) -> Any:
    """The job's result; 504 when it takes longer than ``timeout`` seconds (the job is cancelled if waiting)."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        future.cancel()
        raise ApiError(504, "timeout", f"the engine did not answer within {timeout:g} s") from None
