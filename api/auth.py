"""The API-key dependency: every route but health and readiness needs an active key.

A key is sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; only its SHA-256 is looked up
(:func:`db.keys.authenticate`). The key's reviewer name is what feedback is recorded under.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from db.keys import KeyView, authenticate
from db.session import session_scope


def presented_key(request: Request) -> str | None:
    """The key a request carries, or ``None``."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


def _lookup(engine: object, key: str) -> KeyView | None:
    with session_scope(engine, write=False) as session:  # type: ignore[arg-type]
        return authenticate(session, key)


async def require_key(request: Request) -> KeyView:
    """FastAPI dependency: the caller's active key, else 401."""
    key = presented_key(request)
    if key is None:
        raise ApiError(401, "unauthorized", "an API key is required (Authorization: Bearer <key>)")
    view = await run_in_threadpool(_lookup, request.app.state.db, key)
    if view is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key")
    request.state.reviewer = view.reviewer
    return view


Key = Annotated[KeyView, Depends(require_key)]
"""A route parameter typed ``Key`` requires an active key and receives its view."""
