"""Checks shared by every repository function: reviewer, comment, label, code, span; the audit row; time filters.

Each check returns the cleaned value or raises :class:`~db.errors.FeedbackError`, before anything is added to the
session, so a refused input writes nothing.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.models import AuditLog, utcnow
from engine.types import LABELS, TRAITS

ENTITY_DECISIONS = ("accept", "reject", "correct")
"""What :func:`db.repository.record_decision` accepts; ``add`` is written only by ``add_missed_entity``."""
ALL_DECISIONS = (*ENTITY_DECISIONS, "add")
TARGETS = ("entity", "code")
SENTENCE_DECISIONS = ("keep", "drop")
ICD10CM_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
"""ICD-10-CM code shape, written with its dot (``I21.9``, ``S72.001A``) as in the contract."""
MAX_REVIEWER = 200
MAX_COMMENT = 10_000


def sha256_text(text: str) -> str:
    """SHA-256 hex digest of a text's UTF-8 bytes (how notes are de-duplicated)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def to_utc_naive(value: datetime | str | None) -> datetime | None:
    """Normalise a filter time to the store's convention (naive UTC); ISO strings are accepted."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise FeedbackError(FeedbackCode.BAD_INPUT, f"not an ISO 8601 date or time: {value!r}") from exc
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def check_reviewer(reviewer: object) -> str:
    """The reviewer name, stripped; refused when empty or too long."""
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise FeedbackError(FeedbackCode.EMPTY_REVIEWER, "a decision needs a reviewer name (got an empty one)")
    reviewer = reviewer.strip()
    if len(reviewer) > MAX_REVIEWER:
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"reviewer name longer than {MAX_REVIEWER} characters")
    return reviewer


def check_role(role: object, reviewer: str) -> str:
    """The role a decision is made in: ``reviewer``, or ``adjudicator`` for a name in
    :func:`db.settings.adjudicators` (``$CLINICAL_NLP_ADJUDICATORS``); refused otherwise."""
    from db.settings import ENV_ADJUDICATORS, adjudicators

    if role == "reviewer":
        return role
    if role != "adjudicator":
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"role {role!r} is not 'reviewer' or 'adjudicator'")
    if reviewer not in adjudicators():
        raise FeedbackError(FeedbackCode.NOT_ADJUDICATOR,
                            f"{reviewer!r} is not an adjudicator (names in {ENV_ADJUDICATORS}); decide as a reviewer")
    return role


def check_comment(comment: object) -> str | None:
    """The comment, stripped (``None`` when empty); refused when not text or too long."""
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"comment must be text, got {type(comment).__name__}")
    if len(comment) > MAX_COMMENT:
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"comment longer than {MAX_COMMENT} characters")
    return comment.strip() or None


def check_label(label: object) -> str:
    """The label; refused unless it is one of the contract's five."""
    if label not in LABELS:
        raise FeedbackError(FeedbackCode.BAD_LABEL, f"label {label!r} is not one of {', '.join(LABELS)}")
    return str(label)


def check_traits(traits: list[str], where: str = "") -> list[str]:
    """The traits; refused when one is not a contract trait."""
    if any(t not in TRAITS for t in traits):
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"{where}unknown trait in {traits!r}")
    return traits


def check_code(code: object, what: str = "code") -> str:
    """The code, upper-cased; refused unless it has the ICD-10-CM shape."""
    if not isinstance(code, str) or not ICD10CM_CODE.match(code.strip().upper()):
        raise FeedbackError(FeedbackCode.BAD_CODE, f"{what} {code!r} is not an ICD-10-CM code such as I21.9")
    return code.strip().upper()


def check_span(start: object, end: object, text: str, trimmed: bool = False) -> tuple[int, int]:
    """``(start, end)``; refused unless it is a non-blank span of ``text`` (with ``trimmed``: no edge spaces)."""
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int):
        raise FeedbackError(FeedbackCode.BAD_SPAN, f"span start/end must be integers, got {start!r}, {end!r}")
    if not 0 <= start < end <= len(text):
        raise FeedbackError(
            FeedbackCode.BAD_SPAN, f"span [{start}, {end}) does not fit a note of {len(text)} characters"
        )
    if not text[start:end].strip():
        raise FeedbackError(FeedbackCode.BAD_SPAN, f"span [{start}, {end}) covers only whitespace")
    if trimmed and text[start:end] != text[start:end].strip():
        raise FeedbackError(
            FeedbackCode.BAD_SPAN, f"span [{start}, {end}) {text[start:end]!r} starts or ends with whitespace"
        )
    return start, end


def add_audit(
    session: Session, kind: str, ref_id: int, actor: str, payload: dict[str, Any], when: datetime | None = None
) -> AuditLog:
    """Add an audit row to the caller's transaction."""
    row = AuditLog(kind=kind, ref_id=ref_id, actor=actor, payload=payload, created_at=when or utcnow())
    session.add(row)
    return row


def signed(reviewer: str, comment: str | None, model_version: str | None) -> dict[str, Any]:
    """The fields every decision row records (entity, code, sentence and code-set decisions alike): who decided,
    their comment, the model version they decided on, and when (now, naive UTC)."""
    return {"reviewer": reviewer, "comment": comment, "model_version": model_version, "created_at": utcnow()}
