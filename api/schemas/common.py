"""Shapes shared by every area: the error body, strict integers."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, Strict

StrictInt = Annotated[int, Strict()]
"""An integer that must be a JSON integer (not ``"5"``, ``5.0`` or ``true``)."""


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="Dotted path of the field, e.g. notes.3.note_text or metadata.department.")
    message: str
    type: str


class ErrorBody(BaseModel):
    """What went wrong, with a stable code."""

    code: str = Field(description="Stable: unauthorized, too_large, invalid_request, not_found, unknown_suggestion, "
                      "bad_span, ..., overloaded, timeout, not_available, internal_error.")
    message: str
    field: str | None = Field(None, description="The (first) field at fault, when one is.")
    fields: list[FieldError] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """Every error answer: ``{"error": {...}}``."""

    error: ErrorBody
