"""REST API keys and idempotent feedback requests.

A key is shown once, when it is created; the store keeps only its SHA-256 (keys are 256 random bits, so a plain
digest cannot be reversed by guessing, and lookup by digest needs no per-key salt). Every key is bound to a
reviewer name: the API records feedback under it. Creating and revoking a key is written to ``audit_log`` in the
same transaction.

A feedback request may carry a client ``request_id``: :func:`remember_request` stores it beside the decision in
the same transaction, under a unique (key, request id) constraint, so a client that retries after a lost response
gets the first decision back instead of a second row (:func:`find_request`).

Like :mod:`db.repository`, every function takes an open session and leaves committing to the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.models import ApiFeedbackRequest, ApiKey, AuditLog, utcnow

KEY_PREFIX = "cnlp_"
PREFIX_CHARS = 12
"""Characters of a key kept in clear (``cnlp_`` and 7 random ones) to tell keys apart in listings."""
MAX_REQUEST_ID = 200
REQUEST_KINDS = ("decision", "sentence_decision")


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which a key is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key as listed (never the key itself)."""

    id: int
    prefix: str
    reviewer: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyView:
        """The view of a stored key."""
        return cls(row.id, row.prefix, row.reviewer, row.name, row.created_at, row.revoked_at)

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict (times in ISO 8601, UTC)."""
        return {
            "id": self.id,
            "prefix": self.prefix,
            "reviewer": self.reviewer,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
            "active": self.revoked_at is None,
        }


def _clean(value: object, what: str, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        code = FeedbackCode.EMPTY_REVIEWER if what == "reviewer" else FeedbackCode.BAD_INPUT
        raise FeedbackError(code, f"an API key needs a non-empty {what}")
    value = value.strip()
    if len(value) > 200:
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"{what} longer than 200 characters")
    return value


def create_key(session: Session, *, reviewer: str, name: str | None = None, actor: str = "system"
               ) -> tuple[KeyView, str]:
    """Create a key bound to ``reviewer``.

    Args:
        session: An open session.
        reviewer: The reviewer name feedback sent with this key is recorded under.
        name: What the key is for (``"epic-hook"``), shown in listings.
        actor: Who created it (audit).

    Returns:
        The stored key's view and the key itself, which is not stored and cannot be shown again.

    Raises:
        FeedbackError: ``empty_reviewer`` or ``bad_input`` for an empty or over-long name.
    """
    reviewer_clean = _clean(reviewer, "reviewer", True)
    name_clean = _clean(name, "name", False)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(prefix=key[:PREFIX_CHARS], key_hash=hash_key(key), reviewer=reviewer_clean, name=name_clean,
                 created_at=utcnow())
    session.add(row)
    session.flush()
    payload = {"id": row.id, "prefix": row.prefix, "reviewer": row.reviewer, "name": row.name}
    session.add(AuditLog(kind="api_key_created", ref_id=row.id, actor=actor, payload=payload, created_at=utcnow()))
    session.flush()
    return KeyView.of(row), key


def list_keys(session: Session, *, include_revoked: bool = True) -> list[KeyView]:
    """Keys, oldest first."""
    stmt = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return [KeyView.of(row) for row in session.scalars(stmt)]


def revoke_key(session: Session, key: int | str, *, actor: str = "system") -> KeyView:
    """Revoke a key, named by its id or its prefix (as listed); revoking twice changes nothing.

    Raises:
        FeedbackError: ``bad_input`` when no key, or more than one, matches.
    """
    if isinstance(key, int) and not isinstance(key, bool):
        rows = [r for r in [session.get(ApiKey, key)] if r is not None]
    elif isinstance(key, str) and key.strip().isdigit():
        rows = [r for r in [session.get(ApiKey, int(key.strip()))] if r is not None]
    elif isinstance(key, str) and key.strip():
        rows = list(session.scalars(select(ApiKey).where(ApiKey.prefix == key.strip()[:PREFIX_CHARS])))
    else:
        rows = []
    if len(rows) != 1:
        what = "no API key" if not rows else f"{len(rows)} API keys"
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"{what} match {key!r}; give the id shown by 'keys list'")
    row = rows[0]
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
        payload = {"id": row.id, "prefix": row.prefix, "reviewer": row.reviewer}
        session.add(AuditLog(kind="api_key_revoked", ref_id=row.id, actor=actor, payload=payload,
                             created_at=row.revoked_at))
        session.flush()
    return KeyView.of(row)


def authenticate(session: Session, presented: str | None) -> KeyView | None:
    """The active key matching ``presented``, or ``None`` (unknown, revoked or malformed)."""
    if not presented or not presented.startswith(KEY_PREFIX) or len(presented) > 200:
        return None
    digest = hash_key(presented)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return KeyView.of(row)


def find_request(session: Session, api_key_id: int, request_id: str, body_sha256: str) -> ApiFeedbackRequest | None:
    """The request already applied under this key and ``request_id``, or ``None``.

    Raises:
        FeedbackError: ``duplicate`` when the id was used before for a different body.
    """
    row = session.scalar(select(ApiFeedbackRequest).where(ApiFeedbackRequest.api_key_id == api_key_id,
                                                          ApiFeedbackRequest.request_id == request_id))
    if row is not None and row.body_sha256 != body_sha256:
        raise FeedbackError(FeedbackCode.DUPLICATE,
                            f"request_id {request_id!r} was already used for a different feedback body")
    return row


def remember_request(session: Session, *, api_key_id: int, request_id: str, body_sha256: str, kind: str,
                     ref_id: int) -> ApiFeedbackRequest:
    """Record that ``request_id`` produced the ``kind`` row ``ref_id`` (in the caller's transaction).

    Raises:
        FeedbackError: ``bad_input`` for an empty or over-long request id or an unknown kind.
    """
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > MAX_REQUEST_ID:
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"request_id must be 1 to {MAX_REQUEST_ID} characters")
    if kind not in REQUEST_KINDS:
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"request kind {kind!r} is not one of {REQUEST_KINDS}")
    row = ApiFeedbackRequest(api_key_id=api_key_id, request_id=request_id, body_sha256=body_sha256, kind=kind,
                             ref_id=ref_id, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


# ---------------------------------------------------------------------------------------------------- command line


def add_keys_parser(sub: Any) -> None:
    """Add ``keys create|list|revoke`` to ``python -m db``'s sub-commands."""
    keys = sub.add_parser("keys", help="REST API keys: create (shown once), list, revoke")
    verbs = keys.add_subparsers(dest="keys_verb", required=True)
    create = verbs.add_parser("create", help="create a key bound to a reviewer; prints the key once")
    create.add_argument("--reviewer", required=True, help="feedback sent with the key is recorded under this name")
    create.add_argument("--name", help="what the key is for, e.g. epic-hook")
    listing = verbs.add_parser("list", help="keys as JSON lines (never the keys themselves)")
    listing.add_argument("--active", action="store_true", help="only keys not revoked")
    revoke = verbs.add_parser("revoke", help="revoke a key by its id or prefix")
    revoke.add_argument("key", help="the id or the prefix shown by 'keys list'")


def run_keys(args: Any, engine: Any) -> list[dict[str, Any]]:
    """Run a ``keys`` verb and return the JSON objects to print, one a line."""
    import getpass

    from db.session import session_scope

    actor = f"cli:{getpass.getuser()}"
    with session_scope(engine, write=args.keys_verb != "list") as session:
        if args.keys_verb == "create":
            view, key = create_key(session, reviewer=args.reviewer, name=args.name, actor=actor)
            return [{**view.to_dict(), "key": key}]
        if args.keys_verb == "revoke":
            return [revoke_key(session, args.key, actor=actor).to_dict()]
        return [v.to_dict() for v in list_keys(session, include_revoked=not args.active)]
