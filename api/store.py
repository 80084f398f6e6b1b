"""The service's writes and reads of the feedback store, through :mod:`db.repository` like the app's.

Validation and audit are the repository's own (the same functions the app's review pages call), so a decision
sent here is refused or stored exactly as one made in the browser; the reviewer is the API key's. Each call is
one transaction. On SQLite writers take the write lock at ``BEGIN`` (``BEGIN IMMEDIATE``, see
:mod:`db.session`), so concurrent feedback writers queue on the lock instead of failing; the idempotency check
(``request_id``) and the decision are in the same transaction, so a retry racing its first attempt cannot store
twice (on PostgreSQL the unique (key, request id) constraint settles that race: the loser reads the winner's row).
These functions block: routes call them in the thread pool.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from db import keys as db_keys
from db import repository
from db import stats as db_stats
from db.errors import FeedbackCode, FeedbackError
from db.models import Decision, SentenceDecision
from db.session import session_scope

API_SOURCE = "api"


@dataclass(frozen=True, slots=True)
class StoredAnalysis:
    """Ids of what :func:`store_analysis` wrote."""

    analysis_id: int
    suggestion_ids: list[int]
    summary_id: int | None
    sentence_ids: list[int] | None


def record_stats(engine: Engine, text: str, result: Any, note_id: str | None) -> int:
    """Store one predicted note's monitoring statistics (numbers only, no text; ``source`` ``api``)."""
    with session_scope(engine) as session:
        return db_stats.record_result(session, text, result, source=API_SOURCE, external_id=note_id)


def store_analysis(engine: Engine, text: str, result: Any, summary: Any | None, summary_version: str | None,
                   source: str | None) -> StoredAnalysis:
    """Store the note, its analysis (one suggestion per entity, in order), its monitoring statistics (same
    transaction, linked to the analysis) and optionally its summary."""
    with session_scope(engine) as session:
        note = repository.save_note(session, text, source=source or API_SOURCE)
        analysis = repository.save_analysis(session, note, result.to_dict())
        db_stats.record_result(session, text, result, source=API_SOURCE, analysis_id=analysis.id,
                               external_id=source)
        suggestions = [s.id for s in repository.list_suggestions(session, analysis.id)]
        summary_id = sentence_ids = None
        if summary is not None:
            rows = repository.save_summary(session, note, summary.to_dict(), model_version=summary_version)
            by_span = {(r.start, r.end): r.id for r in rows}
            sentence_ids = [by_span[(s.start, s.end)] for s in summary.sentences]
            summary_id = rows[0].summary_id if rows else None
        return StoredAnalysis(analysis.id, suggestions, summary_id, sentence_ids)


def store_summary(engine: Engine, text: str, summary: Any, model_version: str | None, source: str | None
                  ) -> tuple[int | None, list[int]]:
    """Store a summary; its id and its sentences' ids in the summary's order."""
    with session_scope(engine) as session:
        note = repository.save_note(session, text, source=source or API_SOURCE)
        rows = repository.save_summary(session, note, summary.to_dict(), model_version=model_version)
        by_span = {(r.start, r.end): r.id for r in rows}
        return (rows[0].summary_id if rows else None), [by_span[(s.start, s.end)] for s in summary.sentences]


def body_digest(body: dict[str, Any]) -> str:
    """SHA-256 of a feedback body in canonical JSON (a retry must send the same body)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _apply(session: Any, reviewer: str, body: dict[str, Any]) -> tuple[str, Any]:
    """Record one decision through the repository; returns (kind, row)."""
    fields = {k: v for k, v in body.items() if k not in ("decision", "request_id")}
    decision = body["decision"]
    if decision in ("keep", "drop"):
        return "sentence_decision", repository.record_sentence_decision(
            session, reviewer=reviewer, decision=decision, **fields)
    if decision == "add":
        suggestion = repository.add_missed_entity(session, reviewer=reviewer, **fields)
        row = session.scalar(select(Decision).where(Decision.suggestion_id == suggestion.id,
                                                    Decision.decision == "add"))
        return "decision", row
    return "decision", repository.record_decision(session, reviewer=reviewer, decision=decision, **fields)


def _view(kind: str, row: Any, replayed: bool) -> dict[str, Any]:
    out = {"id": row.id, "kind": kind, "decision": row.decision, "reviewer": row.reviewer,
           "created_at": row.created_at, "replayed": replayed}
    if kind == "decision":
        out.update(suggestion_id=row.suggestion_id, analysis_id=row.analysis_id)
    else:
        out.update(sentence_id=row.sentence_id)
    return out


def _replay(session: Any, found: Any) -> dict[str, Any]:
    model = Decision if found.kind == "decision" else SentenceDecision
    return _view(found.kind, session.get(model, found.ref_id), True)


def record_feedback(engine: Engine, key: db_keys.KeyView, body: dict[str, Any]) -> dict[str, Any]:
    """Record one decision under the key's reviewer, at most once per ``request_id``.

    Raises:
        FeedbackError: The repository's refusals (nothing is written), or ``duplicate`` when the request id was
            used before with a different body.
    """
    request_id = body.get("request_id")
    digest = body_digest(body)
    try:
        with session_scope(engine) as session:
            if request_id is not None:
                found = db_keys.find_request(session, key.id, request_id, digest)
                if found is not None:
                    return _replay(session, found)
            kind, row = _apply(session, key.reviewer, body)
            if request_id is not None:
                db_keys.remember_request(session, api_key_id=key.id, request_id=request_id, body_sha256=digest,
                                         kind=kind, ref_id=row.id)
            return _view(kind, row, False)
    except IntegrityError:
        if request_id is None:
            raise
        # Another transaction stored the same request id first (PostgreSQL): answer with its decision.
        with session_scope(engine, write=False) as session:
            found = db_keys.find_request(session, key.id, request_id, digest)
            if found is None:
                raise FeedbackError(FeedbackCode.DUPLICATE, "the request conflicts with a stored one") from None
            return _replay(session, found)


def list_feedback(engine: Engine, filters: dict[str, Any], limit: int, offset: int) -> tuple[list[Any], bool]:
    """A page of decisions newest first, and whether more follow."""
    with session_scope(engine, write=False) as session:
        rows = repository.list_decisions(session, **filters, limit=offset + limit + 1)
    page = rows[offset:offset + limit]
    return page, len(rows) > offset + limit
