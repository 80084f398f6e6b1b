"""Reviewer actions against the feedback store, shared by the pages.

Thin wrappers over :mod:`db.repository` that add the app's rules: a decision needs the reviewer's name, and every
write happens in one short transaction. Functions return plain ids, so pages keep no ORM objects in session state.
"""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from db import repository
from db.errors import FeedbackError
from db.repository.validation import add_audit, sha256_text
from db.session import session_scope
from db.stats import record_result


class ReviewError(ValueError):
    """An action the app refuses before touching the database; ``str(err)`` is the message to show."""


NO_REVIEWER = "Enter your name in the sidebar (Reviewer name) before recording a decision."


def require_reviewer(name: str | None) -> str:
    """The reviewer's name, stripped.

    Raises:
        ReviewError: The name is empty.
    """
    name = (name or "").strip()
    if not name:
        raise ReviewError(NO_REVIEWER)
    return name


@dataclass
class StoredAnalysis:
    """Ids of a stored analysis and of its suggestions, by entity position."""

    analysis_id: int
    suggestion_ids: list[int] = field(default_factory=list)


_OFFSETS: OrderedDict[int, Any] = OrderedDict()
"""Analysis id -> the ``OffsetMap`` from the note the page shows (the original) onto the stored redacted one,
for the analyses stored by this process; a reopened analysis shows the stored text, so it needs none."""
_OFFSETS_KEPT = 256


def _remember_offsets(analysis_id: int, offsets: Any) -> None:
    _OFFSETS[analysis_id] = offsets
    while len(_OFFSETS) > _OFFSETS_KEPT:
        _OFFSETS.popitem(last=False)


def _stored_span(analysis_id: int, start: int | None, end: int | None) -> tuple[int | None, int | None]:
    """A span of the shown note as a span of the stored note (unchanged when both are the same text)."""
    offsets = _OFFSETS.get(analysis_id)
    if offsets is None or start is None or end is None:
        return start, end
    return offsets.map_span(int(start), int(end))


def _kept_mode(session: Any, text: str, mode: str) -> str:
    """``mode``, or the mode this note was first stored in: a note row keeps its first form (see ``save_note``)."""
    from sqlalchemy import select

    from db.models import Note
    from db.repository.validation import sha256_text

    kept = session.scalar(select(Note.text).where(Note.sha256 == sha256_text(text)))
    if kept is None:
        return mode
    return "original" if kept == text else "none" if kept == "" else "deidentified"


def store_analysis(engine: Any, text: str, result: dict[str, Any], source: str | None,
                   store_text: str | None = None, token_stats: dict[str, Any] | None = None) -> StoredAnalysis:
    """Store the note (once per distinct text) and one analysis of it with a suggestion per entity.

    ``token_stats`` (the engine result's ``AnalysisResult.token_stats``, which ``to_dict()`` leaves out) goes into
    the monitoring row, so the app's rows have ``token_entropy`` and ``o_share`` as the API's and the batch's do.

    What is kept follows ``store_text`` (default ``Settings().store_text``; see
    :func:`engine.deid.export.store_payload`): ``deidentified`` keeps the redacted note and the analysis mapped
    onto it, ``original`` the note as given, ``none`` no wording at all. The mode is recorded in the stored
    result (``deid.store_text``) and in an ``analysis_stored`` audit row.
    """
    from engine.deid.export import default_deidentifier, store_payload
    from engine.settings import Settings

    with session_scope(engine) as session:
        mode = _kept_mode(session, text, store_text or Settings().store_text)
        digest = sha256_text(text)
        redacted: list[Any] = []

        def deidentify(t: str) -> Any:
            redacted.append(default_deidentifier().deidentify(t, note_id=digest))
            return redacted[-1]

        kept, kept_result = store_payload(text, result, mode, deidentify)
        note = repository.save_note(session, text, source=source, stored=kept)
        analysis = repository.save_analysis(session, note, kept_result)
        session.flush()
        add_audit(session, "analysis_stored", analysis.id, "app", dict(kept_result["deid"]))
        if redacted:
            _remember_offsets(analysis.id, redacted[0].offsets)
        # monitoring (issue 24): the analysis's statistics, numbers only, in the same transaction
        monitored = result if token_stats is None else {**result, "token_stats": token_stats}
        record_result(session, text, monitored, source="app", analysis_id=analysis.id, external_id=result.get("id"))
        ids = [s.id for s in sorted(analysis.suggestions, key=lambda s: s.position)]
        return StoredAnalysis(analysis.id, ids)


def store_in_background(engine: Any, text: str, result: dict[str, Any], source: str | None,
                        token_stats: dict[str, Any] | None = None) -> Future:
    """Start :func:`store_analysis` on the app's writer thread and return its future (see :func:`stored_ids`)."""
    from ui.resources import get_writer

    return get_writer().submit(store_analysis, engine, text, result, source, None, token_stats)


def stored_ids(analysis: dict[str, Any], timeout: float = 60.0) -> StoredAnalysis:
    """The database ids of an analysis shown on the page, waiting for its background store if needed.

    Raises:
        ReviewError: Storing failed (the message says why), so nothing can be decided on this analysis.
    """
    try:
        return analysis["stored"].result(timeout=timeout)
    except FutureTimeout:
        raise ReviewError("The analysis is still being stored; try again in a moment.") from None
    except FeedbackError as err:
        raise ReviewError(f"The analysis could not be stored, so decisions are disabled: {err.message}") from None
    except Exception as err:
        raise ReviewError(f"The analysis could not be stored, so decisions are disabled: {err}") from None


def recent_analyses(engine: Any, limit: int = 20) -> list[dict[str, Any]]:
    """The newest stored analyses as table rows (id, when, note id, source, entities, decisions made)."""
    with session_scope(engine, write=False) as session:
        rows = []
        for a in repository.list_analyses(session, limit=limit):
            decided = len(repository.latest_decisions(session, a.id))
            rows.append({"analysis": a.id, "when": a.created_at, "note id": a.external_id or "",
                         "source": a.note.source or "", "entities": len(a.result.get("entities", [])),
                         "decisions": decided, "start": " ".join(a.note.text[:80].split())})
        return rows


def find_stored_analysis(engine: Any, text: str, models: dict[str, str]) -> int | None:
    """The newest stored analysis of exactly this text made by exactly these model versions, or ``None``.

    Analysing the same note again with unchanged models would give the same result, so the page reopens the
    stored one (with its decisions) instead of adding a duplicate row, unless the user asks for a re-run.
    """
    from sqlalchemy import select

    from db.models import Analysis, Note

    with session_scope(engine, write=False) as session:
        stmt = (select(Analysis).join(Note, Analysis.note_id == Note.id)
                .where(Note.sha256 == sha256_text(text)).order_by(Analysis.id.desc()))
        for analysis in session.scalars(stmt):
            # a note kept without text (store_text=none) cannot be shown again: analyse it afresh
            if dict(analysis.models or {}) == dict(models) and analysis.note.text:
                return int(analysis.id)
    return None


def load_analysis(engine: Any, analysis_id: int) -> tuple[str, dict[str, Any], str | None, Future]:
    """A stored analysis to review again: note text, result, source, and a done future with its ids.

    Raises:
        ReviewError: No analysis has that id.
    """
    with session_scope(engine, write=False) as session:
        analysis = repository.get_analysis(session, analysis_id)
        if analysis is None:
            raise ReviewError(f"No stored analysis has id {analysis_id}.")
        if not analysis.note.text:
            raise ReviewError(f"Analysis {analysis_id} was stored with store_text=none: its note text was not kept, "
                              "so it cannot be reopened.")
        model = sorted((s for s in analysis.suggestions if s.origin == "model"), key=lambda s: s.position)
        done: Future = Future()
        done.set_result(StoredAnalysis(analysis.id, [s.id for s in model]))
        return analysis.note.text, dict(analysis.result), analysis.note.source, done


def record_decision(engine: Any, *, reviewer: str | None, suggestion_id: int, decision: str, **kwargs: Any) -> int:
    """Record a decision on an entity or one of its codes and return its id (see ``db.repository``)."""
    name = require_reviewer(reviewer)
    with session_scope(engine) as session:
        if kwargs.get("corrected_start") is not None and _OFFSETS:
            from db.models import Suggestion

            suggestion = session.get(Suggestion, suggestion_id)
            if suggestion is not None:
                kwargs["corrected_start"], kwargs["corrected_end"] = _stored_span(
                    suggestion.analysis_id, kwargs["corrected_start"], kwargs.get("corrected_end"))
        row = repository.record_decision(
            session, suggestion_id=suggestion_id, reviewer=name, decision=decision, **kwargs
        )
        session.flush()
        return int(row.id)


def add_missed_entity(
    engine: Any, *, reviewer: str | None, analysis_id: int, start: int, end: int, label: str, **kwargs: Any
) -> int:
    """Store an entity the engine missed and return its suggestion id."""
    name = require_reviewer(reviewer)
    start, end = _stored_span(analysis_id, start, end)
    with session_scope(engine) as session:
        row = repository.add_missed_entity(
            session, analysis_id=analysis_id, start=start, end=end, label=label, reviewer=name, **kwargs
        )
        session.flush()
        return int(row.id)


def store_summary(engine: Any, text: str, summary: dict[str, Any], model_version: str | None,
                  store_text: str | None = None) -> list[int]:
    """Store a summary of the note and return its sentence ids in the summary's order.

    What is kept follows ``store_text`` as in :func:`store_analysis` (see
    :func:`engine.deid.export.summary_payload`): ``deidentified`` keeps the redacted note with each sentence
    mapped onto it; the mode is recorded in a ``summary_stored`` audit row.
    """
    from engine.deid.export import default_deidentifier, summary_payload
    from engine.settings import Settings

    with session_scope(engine) as session:
        mode = _kept_mode(session, text, store_text or Settings().store_text)
        digest = sha256_text(text)
        kept, stored, audit = summary_payload(
            text, summary, mode, lambda t: default_deidentifier().deidentify(t, note_id=digest))
        note = repository.save_note(session, text, source="summary", stored=kept)
        rows = repository.save_summary(session, note, stored, model_version=model_version)
        session.flush()
        if rows:
            add_audit(session, "summary_stored", rows[0].summary_id, "app", audit)
        by_span = {(r.start, r.end): r.id for r in rows}
        return [by_span[(int(s["start"]), int(s["end"]))] for s in stored["sentences"]]


def record_sentence_decision(engine: Any, *, reviewer: str | None, sentence_id: int, decision: str) -> int:
    """Record ``keep`` or ``drop`` on a summary sentence and return the decision id."""
    name = require_reviewer(reviewer)
    with session_scope(engine) as session:
        row = repository.record_sentence_decision(
            session, sentence_id=sentence_id, reviewer=name, decision=decision
        )
        session.flush()
        return int(row.id)


def redacted_view(text: str, result: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The note and its entities as the de-identified store keeps them (as given when already redacted)."""
    if (result.get("deid") or {}).get("store_text") == "deidentified":
        return text, list(result["entities"])
    from engine.deid.export import default_deidentifier, redact_analysis

    redacted = redact_analysis(result, default_deidentifier().deidentify(text, note_id=sha256_text(text)))
    return redacted["text"], redacted["entities"]
