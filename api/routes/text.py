"""``POST /summarize``, ``POST /link`` and ``POST /deidentify``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api import store
from api.auth import Key
from api.errors import ApiError
from api.routes.common import check_note_size, settings_of, wait_for, worker_of
from api.routes.predict import ERRORS
from api.schemas.predict import CodeOut, SentenceOut
from api.schemas.text import (
    DeidentifyRequest,
    DeidentifyResponse,
    LinkRequest,
    LinkResponse,
    PhiOut,
    SummarizeRequest,
    SummarizeResponse,
)

router = APIRouter(tags=["analysis"])


@router.post("/summarize", response_model=SummarizeResponse, responses=ERRORS,
             summary="Key sentences of a note, verbatim, in note order")
async def summarize(req: SummarizeRequest, request: Request,
                    _key: Key) -> SummarizeResponse:
    """The extractive summary; with ``store`` each sentence gets a ``sentence_id`` for keep/drop feedback."""
    t0 = time.perf_counter()
    settings = settings_of(request)
    check_note_size(req.note_text, settings.max_note_chars)
    worker = worker_of(request)

    def job(pipeline: Any) -> tuple[Any, str]:
        return pipeline.summarize(req.note_text, req.sentences, req.note_id), pipeline.models["summarizer"]

    summary, version = await wait_for(worker.call(job), settings.request_timeout_s)
    summary_id, ids = None, [None] * len(summary.sentences)
    if req.store:
        summary_id, ids = await run_in_threadpool(store.store_summary, request.app.state.db, req.note_text, summary,
                                                  version, req.note_id)
    sentences = [SentenceOut(**s.to_dict(), sentence_id=i) for s, i in zip(summary.sentences, ids, strict=True)]
    return SummarizeResponse(note_id=req.note_id, sentences=sentences, model_version=version, summary_id=summary_id,
                             processing_time_ms=round((time.perf_counter() - t0) * 1000, 2))


@router.post("/link", response_model=LinkResponse, responses=ERRORS, summary="ICD-10-CM codes for a mention")
async def link(req: LinkRequest, request: Request, _key: Key) -> LinkResponse:
    """The engine's ``link`` verb: up to five codes, best first."""
    t0 = time.perf_counter()
    worker = worker_of(request)
    out = await wait_for(worker.call(lambda p: p.link(req.text, req.label, req.id)),
                         settings_of(request).request_timeout_s)
    return LinkResponse(id=req.id, label=req.label, codes=[CodeOut(**c) for c in out["codes"]],
                        processing_time_ms=round((time.perf_counter() - t0) * 1000, 2))


@router.post("/deidentify", response_model=DeidentifyResponse, responses=ERRORS,
             summary="The note with its PHI redacted, and the PHI spans (offsets into the input)")
async def deidentify(req: DeidentifyRequest, request: Request, _key: Key) -> DeidentifyResponse:
    """The engine's ``deidentify`` verb (``python -m engine deidentify``): same redaction, same spans."""
    t0 = time.perf_counter()
    settings = settings_of(request)
    check_note_size(req.text, settings.max_note_chars, "text")
    if "\x00" in req.text:  # the CLI's rule for this verb: a NUL byte means binary input, not a note
        raise ApiError(422, "invalid_request", "text: binary input (NUL byte), not a note", "text")
    worker = worker_of(request)
    out = await wait_for(worker.call(lambda p: p.stage("deid").deidentify(req.text, req.id).to_dict()),
                         settings.request_timeout_s)
    return DeidentifyResponse(id=out["id"], text=out["text"], phi=[PhiOut(**s) for s in out["phi"]],
                              processing_time_ms=round((time.perf_counter() - t0) * 1000, 2))
