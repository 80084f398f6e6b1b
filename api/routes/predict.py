"""``POST /predict`` and ``POST /predict/batch``: the analysis of notes, seed fields and the engine's richer ones."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api import store
from api.auth import Key
from api.errors import ApiError, engine_error, feedback_error, validation_body
from api.inference import QueueFull
from api.routes.common import check_note_size, settings_of, wait_for, worker_of
from api.schemas.common import ErrorBody, ErrorResponse
from api.schemas.predict import (
    BadNote,
    BatchItem,
    BatchRequest,
    BatchResponse,
    CodeOut,
    EntityOut,
    PredictRequest,
    PredictResponse,
    SentenceOut,
    SummaryOut,
    note_id_of,
)
from db.errors import FeedbackError
from engine.encounter.service import build_encounter
from engine.errors import EngineError
from engine.types import sort_traits

log = logging.getLogger("api.predict")
router = APIRouter(tags=["analysis"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (401, 413, 422, 503, 504)}


def entity_out(entity: Any, suggestion_id: int | None = None) -> EntityOut:
    """An engine :class:`~engine.types.Entity` in the API's shape (seed names first)."""
    traits = sort_traits(entity.traits)
    negated = "negated" in traits
    return EntityOut(
        text=entity.text, type=entity.label, start_char=entity.start, end_char=entity.end,
        confidence=round(float(entity.score), 4), icd_codes=[c.code for c in entity.codes], is_negated=negated,
        # The engine names the words behind the first trait; negation leads the trait order, so when the entity
        # is negated that trigger is the negation's.
        negation_trigger=entity.trigger if negated else None,
        assertion=entity.assertion, traits=traits, trigger=entity.trigger, section=entity.section,
        codes=[CodeOut(**c.to_dict()) for c in entity.codes], coding_note=entity.note, suggestion_id=suggestion_id,
    )


def summary_out(summary: Any, model_version: str, sentence_ids: list[int] | None = None,
                summary_id: int | None = None) -> SummaryOut:
    """An engine summary in the API's shape (with stored ids when it was stored)."""
    ids = sentence_ids or [None] * len(summary.sentences)
    sentences = [SentenceOut(**s.to_dict(), sentence_id=i) for s, i in zip(summary.sentences, ids, strict=True)]
    return SummaryOut(sentences=sentences, model_version=model_version, summary_id=summary_id)


def encounter_setting(builder: Any, req: PredictRequest) -> tuple[str, str | None]:
    """The setting to build the encounter with, and why when it came from ``note_type``.

    An explicit ``setting`` wins. Otherwise a ``note_type`` that names a setting ("inpatient progress note") or
    has the encounter builder's own inpatient words ("discharge summary", ``encounter_context.tsv``) decides;
    anything else is ``auto``: the builder reads the note's own words.
    """
    if req.setting is not None:
        return req.setting, None
    note_type = (req.note_type or "").lower()
    for name in ("inpatient", "outpatient"):
        if name in note_type:
            return name, f"{name}: the note type says {name}"
    found = builder.rules.words("inpatient", note_type) if note_type else []
    if found:
        return "inpatient", f"inpatient: the note type is {found[0]}"
    return "auto", None


def _after(req: PredictRequest) -> Any:
    """The job run on the engine thread right after the note's analysis: ``(summary, encounter)``, each
    ``None`` unless asked for."""
    want_summary = req.include_summary or req.summary_sentences is not None
    want_encounter = req.include_encounter or req.setting is not None
    if not (want_summary or want_encounter):
        return None

    def extras(pipeline: Any, result: Any) -> tuple[Any, dict[str, Any] | None]:
        summary = pipeline.summarize(req.note_text, req.summary_sentences, req.note_id) if want_summary else None
        encounter = None
        if want_encounter:
            setting, why = encounter_setting(pipeline.stage("encounter"), req)
            encounter = build_encounter(pipeline, result, req.note_text, setting).to_dict()
            if why is not None:
                encounter["setting_reason"] = why
        return summary, encounter

    return extras


async def analyse(request: Request, req: PredictRequest, t0: float) -> PredictResponse:
    """Analyse one validated note: size check, engine job, optional storing, the response."""
    settings = settings_of(request)
    check_note_size(req.note_text, settings.max_note_chars)
    worker = worker_of(request)
    future = worker.analyze(req.note_text, req.note_id, req.priority, _after(req))
    result, extras = await wait_for(future, settings.request_timeout_s)
    summary, encounter = extras or (None, None)
    models = dict(result.models)
    if req.store:  # the monitoring statistics go in the same transaction, linked to the stored analysis
        stored = await run_in_threadpool(store.store_analysis, request.app.state.db, req.note_text, result,
                                         summary, models.get("summarizer"), req.note_id)
    else:
        stored = None
        await record_stats(request, req.note_text, result, req.note_id)
    ids = stored.suggestion_ids if stored else [None] * len(result.entities)
    request.app.state.metrics.observe_note([float(e.score) for e in result.entities])
    return PredictResponse(
        note_id=req.note_id, note_type=req.note_type, metadata=req.metadata.model_dump(exclude_none=True),
        entities=[entity_out(e, i) for e, i in zip(result.entities, ids, strict=True)],
        processing_time_ms=round((time.perf_counter() - t0) * 1000, 2), model_version=models.get("ner", "unknown"),
        models=models, timings_ms={k: round(float(v), 3) for k, v in result.timings_ms.items()},
        summary=None if summary is None else summary_out(summary, models.get("summarizer", "unknown"),
                                                          stored.sentence_ids if stored else None,
                                                          stored.summary_id if stored else None),
        encounter=encounter, analysis_id=stored.analysis_id if stored else None,
    )


async def record_stats(request: Request, text: str, result: Any, note_id: str | None) -> None:
    """The note's monitoring statistics (``db.stats``, source ``api``); a failed write is logged, the answer sent.

    The client asked for the analysis, not for monitoring, so a locked or full database must not cost it its
    answer; the log line names the exception type only (its message could quote the note).
    """
    try:
        await run_in_threadpool(store.record_stats, request.app.state.db, text, result, note_id)
    except Exception as exc:
        log.error("monitoring statistics not stored: %s", type(exc).__name__)


@router.post("/predict", response_model=PredictResponse, responses=ERRORS, summary="Analyse one note")
async def predict(req: PredictRequest, request: Request, _key: Key) -> PredictResponse:
    """Entities with assertion, traits, section and ICD-10-CM codes; the summary on request.

    A note over the size limit gets 413; with ``store`` the analysis is kept for ``POST /feedback``.
    """
    return await analyse(request, req, time.perf_counter())


async def _batch_item(request: Request, index: int, raw: Any, t0: float) -> BatchItem:
    note_id = note_id_of(raw)
    try:
        try:
            req = PredictRequest.model_validate(raw)
        except ValidationError as exc:
            raise BadNote(422, validation_body(exc.errors(), prefix=f"notes.{index}.")) from None
        result = await analyse(request, req, t0)
        return BatchItem(index=index, note_id=note_id, status=200, result=result)
    except BadNote as exc:
        return BatchItem(index=index, note_id=note_id, status=exc.status, error=exc.error)
    except ApiError as exc:
        error = exc.body
        if error.field:
            fields = [f.model_copy(update={"field": f"notes.{index}.{f.field}"}) for f in error.fields]
            error = error.model_copy(update={"field": f"notes.{index}.{error.field}", "fields": fields})
        return BatchItem(index=index, note_id=note_id, status=exc.status, error=error)
    except EngineError as exc:
        status, error = engine_error(exc)
        return BatchItem(index=index, note_id=note_id, status=status, error=error)
    except FeedbackError as exc:
        status, error = feedback_error(exc)
        return BatchItem(index=index, note_id=note_id, status=status, error=error)
    except QueueFull as exc:
        return BatchItem(index=index, note_id=note_id, status=503, error=ErrorBody(code="overloaded",
                                                                                   message=str(exc)))


@router.post("/predict/batch", response_model=BatchResponse, responses=ERRORS,
             summary="Analyse up to 32 notes; one result or error per note, in order")
async def predict_batch(body: BatchRequest, request: Request,
                        _key: Key) -> BatchResponse:
    """Each note is validated and analysed on its own; the engine batches their forward passes together."""
    limit = settings_of(request).max_batch_notes
    if len(body.notes) > limit:
        raise ApiError(422, "invalid_request", f"notes: at most {limit} notes per batch, got {len(body.notes)}",
                       "notes")
    t0 = time.perf_counter()
    items = await asyncio.gather(*(_batch_item(request, i, raw, t0) for i, raw in enumerate(body.notes)))
    ok = sum(1 for item in items if item.status == 200)
    return BatchResponse(results=list(items), succeeded=ok, failed=len(items) - ok,
                         processing_time_ms=round((time.perf_counter() - t0) * 1000, 2))

