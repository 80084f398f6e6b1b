"""Bodies of ``/feedback``: a reviewer's decision, told apart by ``decision``.

The reviewer is never in the body: it is the name the API key is bound to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from api.schemas.common import StrictInt
from api.schemas.text import Label
from db.repository import DecisionView

Trait = Literal["negated", "family", "hypothetical", "possible", "historical"]
RequestId = Annotated[str | None, Field(None, min_length=1, max_length=200, description=(
    "Your id for this request: sending it again (a retry) returns the first decision instead of storing a "
    "second one."))]
Comment = Annotated[str | None, Field(None, max_length=10_000)]


class EntityDecision(BaseModel):
    """accept, reject or correct an entity (``target='entity'``) or one of its codes (``target='code'``)."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["accept", "reject", "correct"]
    suggestion_id: StrictInt = Field(description="From POST /predict with store=true.")
    target: Literal["entity", "code"] = "entity"
    code: str | None = Field(None, max_length=16, description="target=code: the suggested code decided on.")
    corrected_start: StrictInt | None = None
    corrected_end: StrictInt | None = None
    corrected_label: Label | None = None
    corrected_code: str | None = Field(None, max_length=16)
    comment: Comment
    request_id: RequestId


class AddEntity(BaseModel):
    """add an entity the engine missed to a stored analysis."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["add"]
    analysis_id: StrictInt
    start: StrictInt
    end: StrictInt
    label: Label
    traits: list[Trait] = Field(default_factory=list)
    comment: Comment
    request_id: RequestId


class SentenceDecisionIn(BaseModel):
    """keep or drop a sentence of a stored summary."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["keep", "drop"]
    sentence_id: StrictInt = Field(description="From POST /summarize with store=true.")
    comment: Comment
    request_id: RequestId


FeedbackRequest = Annotated[EntityDecision | AddEntity | SentenceDecisionIn, Field(discriminator="decision")]
DECISION_TAGS = frozenset({"accept", "reject", "correct", "add", "keep", "drop"})
"""The discriminator values, which pydantic puts in an error's location (left out of the field name)."""


class FeedbackResponse(BaseModel):
    """The stored decision."""

    id: int
    kind: Literal["decision", "sentence_decision"]
    decision: str
    reviewer: str
    suggestion_id: int | None = None
    analysis_id: int | None = None
    sentence_id: int | None = None
    created_at: datetime
    replayed: bool = Field(False, description="True when request_id had been seen: nothing new was stored.")


@pydantic_dataclass(frozen=True)
class DecisionOut(DecisionView):
    """One stored decision, as GET /feedback lists it."""

    # The fields are the store's flat row (db.repository.queries.DecisionView), declared once there: the API lists
    # exactly what the History page shows. Being a pydantic dataclass, this validates the row (``when`` from its
    # ISO 8601 string) and is documented in the OpenAPI schema under its own name.


class FeedbackPage(BaseModel):
    """Decisions newest first."""

    items: list[DecisionOut]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Pass as offset for the next page; null at the end.")
