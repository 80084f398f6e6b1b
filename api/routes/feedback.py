"""``POST /feedback`` (a reviewer's decision, recorded under the API key's reviewer) and ``GET /feedback``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request
from starlette.concurrency import run_in_threadpool

from api import store
from api.auth import Key
from api.routes.predict import ERRORS
from api.schemas.feedback import DecisionOut, FeedbackPage, FeedbackRequest, FeedbackResponse
from api.schemas.text import Label

router = APIRouter(tags=["feedback"])
FEEDBACK_ERRORS = {**ERRORS, 404: ERRORS[422], 409: ERRORS[422]}


@router.post("/feedback", response_model=FeedbackResponse, responses=FEEDBACK_ERRORS,
             summary="Record a decision (accept/reject/correct/add, keep/drop) under the key's reviewer")
async def post_feedback(body: Annotated[FeedbackRequest, Body()], request: Request,
                        key: Key) -> FeedbackResponse:
    """Validated and audited by the same repository functions as the app's review pages.

    Unknown ids get 404, a clash (an entity already there, a request id reused with another body) 409, other
    refusals 422 with the store's code. Send ``request_id`` to make retries safe.
    """
    out = await run_in_threadpool(store.record_feedback, request.app.state.db, key, body.model_dump())
    request.app.state.metrics.feedback.labels(out["kind"], str(out["replayed"]).lower()).inc()
    return FeedbackResponse(**out)


@router.get("/feedback", response_model=FeedbackPage, responses=ERRORS, summary="Stored decisions, newest first")
async def get_feedback(
    request: Request,
    _key: Key,
    since: Annotated[datetime | None, Query(description="Decisions at or after (ISO 8601; naive = UTC).")] = None,
    until: Annotated[datetime | None, Query(description="Decisions before.")] = None,
    reviewer: Annotated[str | None, Query(max_length=200)] = None,
    model_version: Annotated[str | None, Query(max_length=200)] = None,
    decision: Literal["accept", "reject", "correct", "add"] | None = None,
    label: Label | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> FeedbackPage:
    """Entity and code decisions with their suggestion's span and label (the app's History page rows)."""
    filters = {"since": since, "until": until, "reviewer": reviewer, "model_version": model_version,
               "decision": decision, "label": label}
    rows, more = await run_in_threadpool(store.list_feedback, request.app.state.db, filters, limit, offset)
    return FeedbackPage(items=[DecisionOut(**r.to_dict()) for r in rows], limit=limit, offset=offset,
                        next_offset=offset + limit if more else None)
