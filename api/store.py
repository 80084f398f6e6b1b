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
from db.models import Analysis, Decision, Note, SentenceDecision, Suggestion
from db.repository.validation import add_audit, sha256_text
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


class _Redactor:
    """Original text -> :class:`~engine.deid.stage.DeidResult` for one note, computed at most once."""

    def __init__(self, text: str) -> None:
        self.digest = sha256_text(text)
        self.result: Any = None

    def __call__(self, text: str) -> Any:
        if self.result is None:
            from engine.deid.export import default_deidentifier

            self.result = default_deidentifier().deidentify(text, note_id=self.digest)
        return self.result


def _mode(session: Any, text: str, store_text: str | None) -> str:
    """``store_text`` (default ``Settings().store_text``, as in the app), or the form the note was stored in."""
    from engine.deid.export import kept_mode
    from engine.settings import Settings

    kept = session.scalar(select(Note.text).where(Note.sha256 == sha256_text(text)))
    return kept_mode(kept, text, store_text or Settings().store_text)


def _save_summary(session: Any, note: Note, text: str, summary: Any, version: str | None, mode: str,
                  redact: _Redactor) -> tuple[int | None, list[int]]:
    """Store a summary as ``store_text`` says (sentences mapped onto a redacted note), with its audit row."""
    from engine.deid.export import summary_payload

    _, kept, audit = summary_payload(text, summary.to_dict(), mode, redact)
    rows = repository.save_summary(session, note, kept, model_version=version)
    by_span = {(r.start, r.end): r.id for r in rows}
    summary_id = rows[0].summary_id if rows else None
    if summary_id is not None:
        add_audit(session, "summary_stored", summary_id, API_SOURCE, audit)
    return summary_id, [by_span[(int(s["start"]), int(s["end"]))] for s in kept["sentences"]]


def store_analysis(engine: Engine, text: str, result: Any, summary: Any | None, summary_version: str | None,
                   source: str | None, store_text: str | None = None) -> StoredAnalysis:
    """Store the note, its analysis (one suggestion per entity, in order), its monitoring statistics (same
    transaction, linked to the analysis) and optionally its summary.

    What is kept follows ``store_text`` exactly as in the app (``ui.review.store_analysis``; default
    ``Settings().store_text``, ``CLINICAL_NLP_STORE_TEXT``): ``deidentified`` keeps the redacted note with the
    analysis and summary mapped onto it, ``original`` the note as given, ``none`` no wording. The mode is
    recorded in the stored result (``deid``) and in ``analysis_stored`` / ``summary_stored`` audit rows.
    """
    from engine.deid.export import store_payload

    with session_scope(engine) as session:
        mode = _mode(session, text, store_text)
        redact = _Redactor(text)
        kept, kept_result = store_payload(text, result.to_dict(), mode, redact)
        note = repository.save_note(session, text, source=source or API_SOURCE, stored=kept)
        analysis = repository.save_analysis(session, note, kept_result)
        session.flush()
        add_audit(session, "analysis_stored", analysis.id, API_SOURCE, dict(kept_result["deid"]))
        db_stats.record_result(session, text, result, source=API_SOURCE, analysis_id=analysis.id,
                               external_id=source)
        suggestions = [s.id for s in repository.list_suggestions(session, analysis.id)]
        summary_id = sentence_ids = None
        if summary is not None:
            summary_id, sentence_ids = _save_summary(session, note, text, summary, summary_version, mode, redact)
        return StoredAnalysis(analysis.id, suggestions, summary_id, sentence_ids)


def store_summary(engine: Engine, text: str, summary: Any, model_version: str | None, source: str | None,
                  store_text: str | None = None) -> tuple[int | None, list[int]]:
    """Store a summary (what is kept follows ``store_text`` as in :func:`store_analysis`); its id and its
    sentences' ids in the summary's order."""
    from engine.deid.export import summary_payload

    with session_scope(engine) as session:
        mode = _mode(session, text, store_text)
        redact = _Redactor(text)
        kept, _, _ = summary_payload(text, {"sentences": []}, mode, redact)
        note = repository.save_note(session, text, source=source or API_SOURCE, stored=kept)
        return _save_summary(session, note, text, summary, model_version, mode, redact)


def _original_spans(session: Any, decision: str, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with a span of the note the client sent mapped onto the stored (de-identified) note.

    Clients send offsets into their own text; a note stored ``deidentified`` has other offsets, so an added or
    corrected span is mapped with the analysis's stored offset map. Anything the map cannot apply to (unknown
    ids, no span, a note kept as given) is passed on unchanged for the repository to accept or refuse.
    """
    from engine.deid.export import stored_map

    if decision == "add":
        keys, analysis = ("start", "end"), _get(session, Analysis, fields.get("analysis_id"))
    elif fields.get("corrected_start") is not None and fields.get("corrected_end") is not None:
        suggestion = _get(session, Suggestion, fields.get("suggestion_id"))
        keys, analysis = ("corrected_start", "corrected_end"), suggestion.analysis if suggestion else None
    else:
        return fields
    start, end = fields.get(keys[0]), fields.get(keys[1])
    omap = stored_map(analysis.note.text, dict(analysis.result or {})) if analysis is not None else None
    if omap is None or not isinstance(start, int) or not isinstance(end, int):
        return fields
    mapped = omap.map_span(start, end) if 0 <= start < end else (start, end)
    return {**fields, keys[0]: mapped[0], keys[1]: mapped[1]}


def _get(session: Any, model: Any, ident: object) -> Any:
    return session.get(model, ident) if isinstance(ident, int) and not isinstance(ident, bool) else None


def body_digest(body: dict[str, Any]) -> str:
    """SHA-256 of a feedback body in canonical JSON (a retry must send the same body)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _apply(session: Any, reviewer: str, body: dict[str, Any]) -> tuple[str, Any]:
    """Record one decision through the repository; returns (kind, row)."""
    fields = {k: v for k, v in body.items() if k not in ("decision", "request_id")}
    decision = body["decision"]
    fields = _original_spans(session, decision, fields)
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
