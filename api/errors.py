"""Every error answer has one shape, ``{"error": {"code", "message", "field", "fields"}}``, and a stable code.

Nothing a client sends may produce a 500: validation errors become 422 naming the field, feedback-store refusals
keep their :class:`~db.errors.FeedbackCode`, engine refusals their :class:`~engine.errors.ErrorCode`. Messages
never quote note text (they reach logs and dashboards); pydantic's ``input`` echo is dropped for that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.inference import QueueFull
from api.schemas.common import ErrorBody, FieldError
from api.schemas.feedback import DECISION_TAGS
from db.errors import FeedbackCode, FeedbackError
from engine.errors import EngineError

FEEDBACK_STATUS = {
    FeedbackCode.UNKNOWN_SUGGESTION: 404,
    FeedbackCode.UNKNOWN_ANALYSIS: 404,
    FeedbackCode.UNKNOWN_SENTENCE: 404,
    FeedbackCode.UNKNOWN_NOTE: 404,
    FeedbackCode.UNKNOWN_MODEL_VERSION: 404,
    FeedbackCode.DUPLICATE: 409,
}
"""Feedback-store refusals that are not 422."""
HTTP_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
              415: "unsupported_media_type", 501: "not_available", 503: "overloaded", 504: "timeout"}


class ApiError(Exception):
    """An error answer raised by a route.

    Args:
        status: HTTP status.
        code: Stable code (see :class:`~api.schemas.common.ErrorBody`).
        message: One line for a person, without note text.
        field: The field at fault, when one is.
    """

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(code=code, message=message, field=field,
                              fields=[] if field is None else [FieldError(field=field, message=message, type=code)])


def field_name(loc: Sequence[Any], error_type: str = "") -> str:
    """A pydantic error location as a dotted field name (``body`` and union tags dropped)."""
    if error_type == "json_invalid":  # its location is a character offset, not a field
        return "body"
    parts = [str(p) for p in loc if p not in ("body", "query", "header", "path") and p not in DECISION_TAGS]
    return ".".join(parts) or "body"


def validation_body(errors: Sequence[dict[str, Any]], prefix: str = "") -> ErrorBody:
    """The 422 body of pydantic errors (``prefix`` e.g. ``notes.3.`` for one note of a batch)."""
    def name(e: dict[str, Any]) -> str:
        field = field_name(e.get("loc", ()), str(e.get("type", "")))
        return prefix.rstrip(".") if prefix and field == "body" else prefix + field

    fields = [FieldError(field=name(e), message=str(e.get("msg", "invalid")), type=str(e.get("type", "invalid")))
              for e in errors]
    if not fields:
        fields = [FieldError(field=prefix.rstrip(".") or "body", message="invalid request", type="invalid")]
    first = fields[0]
    return ErrorBody(code="invalid_request", message=f"{first.field}: {first.message}", field=first.field,
                     fields=fields)


def feedback_error(exc: FeedbackError) -> tuple[int, ErrorBody]:
    """Status and body of a feedback-store refusal."""
    return FEEDBACK_STATUS.get(exc.code, 422), ErrorBody(code=exc.code.value, message=exc.message)


def engine_error(exc: EngineError) -> tuple[int, ErrorBody]:
    """Status and body of an engine refusal (bad input: 422)."""
    code = getattr(exc, "code", None)
    return 422, ErrorBody(code=str(getattr(code, "value", code or "engine_error")), message=str(exc))


def respond(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON answer of an error."""
    return JSONResponse({"error": body.model_dump()}, status_code=status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Map every exception a route may raise to the one error shape."""

    @app.exception_handler(ApiError)
    async def _api(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return respond(exc.status, exc.body, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(422, validation_body(exc.errors()))

    @app.exception_handler(FeedbackError)
    async def _feedback(_request: Request, exc: FeedbackError) -> JSONResponse:
        return respond(*feedback_error(exc))

    @app.exception_handler(EngineError)
    async def _engine(_request: Request, exc: EngineError) -> JSONResponse:
        return respond(*engine_error(exc))

    @app.exception_handler(QueueFull)
    async def _full(_request: Request, exc: QueueFull) -> JSONResponse:
        return respond(503, ErrorBody(code="overloaded", message=str(exc)), {"Retry-After": "1"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return respond(exc.status_code, ErrorBody(code=code, message=str(exc.detail)))
