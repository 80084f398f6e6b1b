"""Notes and analyses: store what the engine produced, once per distinct note text, and read it back.

Every function takes an open session and leaves committing to the caller (:func:`db.session.session_scope`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.models import Analysis, Decision, Note, Suggestion
from db.repository.validation import check_code, check_label, check_span, check_traits, sha256_text
from engine.types import assertion_from_traits


def save_note(session: Session, text: str, source: str | None = None, stored: str | None = None) -> Note:
    """Store a note once per distinct text and return it (the existing row when the text is already there).

    Args:
        session: An open session.
        text: The note exactly as analysed; its hash identifies the note.
        source: Where it came from (file name, EHR id), kept from the first save.
        stored: The text to keep instead of ``text`` (``store_text``: the de-identified note, or ``""`` for
            ``none``); the analyses saved with this note must then point into it. Kept from the first save.

    Raises:
        FeedbackError: ``bad_input`` when ``text`` is not a non-empty string.
    """
    if not isinstance(text, str) or not text:
        raise FeedbackError(FeedbackCode.BAD_INPUT, "a note needs a non-empty text")
    digest = sha256_text(text)
    note = session.scalar(select(Note).where(Note.sha256 == digest))
    if note is not None:
        return note
    note = Note(sha256=digest, text=text if stored is None else stored, source=source)
    try:
        # A savepoint, so a concurrent insert of the same text (PostgreSQL) costs only this statement.
        with session.begin_nested():
            session.add(note)
    except IntegrityError:
        existing = session.scalar(select(Note).where(Note.sha256 == digest))
        if existing is None:
            raise
        return existing
    return note


def _validate_entity(raw: object, text: str, index: int) -> dict[str, Any]:
    """One entity checked against the note's stored text (a note kept without text: ``store_text`` = ``none``)."""
    if not isinstance(raw, dict):
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"entity {index} is not an object")
    for key in ("start", "end", "label"):
        if key not in raw:
            raise FeedbackError(FeedbackCode.BAD_INPUT, f"entity {index} lacks {key!r}")
    if text:
        start, end = check_span(raw["start"], raw["end"], text)
    else:  # no wording kept: offsets into the unkept note, checked as a span of a long enough text
        end_raw = raw["end"]
        length = end_raw if isinstance(end_raw, int) and not isinstance(end_raw, bool) and end_raw > 0 else 0
        start, end = check_span(raw["start"], end_raw, "x" * length)
    label = check_label(raw["label"])
    given = raw.get("text")
    if text and given is not None and given != text[start:end]:
        raise FeedbackError(
            FeedbackCode.BAD_SPAN, f"entity {index}: text {given!r} != note[{start}:{end}] {text[start:end]!r}"
        )
    traits = check_traits(list(raw.get("traits") or []), f"entity {index}: ")
    codes = list(raw.get("codes") or [])
    for code in codes:
        if not isinstance(code, dict) or "code" not in code:
            raise FeedbackError(FeedbackCode.BAD_INPUT, f"entity {index}: a code object lacks 'code'")
        check_code(code["code"])
    score = raw.get("score")
    return {
        "start": start,
        "end": end,
        "text": text[start:end],
        "label": label,
        "score": None if score is None else float(score),
        "assertion": raw.get("assertion") or assertion_from_traits(traits),
        "traits": traits,
        "trigger": raw.get("trigger"),
        "section": raw.get("section"),
        "codes": codes,
    }


def save_analysis(session: Session, note: Note, result: dict[str, Any]) -> Analysis:
    """Store one analysis result and one :class:`Suggestion` per entity.

    Args:
        session: An open session.
        note: The analysed note (from :func:`save_note`).
        result: The engine's ``AnalysisResult.to_dict()`` (the contract's analysis object).

    Raises:
        FeedbackError: When an entity's span, label, traits or codes do not fit the note or the contract.
    """
    if not isinstance(result, dict) or not isinstance(result.get("entities"), list):
        raise FeedbackError(FeedbackCode.BAD_INPUT, "an analysis result needs an 'entities' list")
    entities = [_validate_entity(raw, note.text, i) for i, raw in enumerate(result["entities"])]
    models = dict(result.get("models") or {})
    analysis = Analysis(
        note=note,
        external_id=None if result.get("id") is None else str(result["id"]),
        models=models,
        timings_ms=dict(result.get("timings_ms") or {}),
        result=result,
        ner_version=models.get("ner"),
        icd_version=models.get("icd"),
    )
    session.add(analysis)
    for position, entity in enumerate(entities):
        session.add(Suggestion(analysis=analysis, position=position, origin="model", **entity))
    session.flush()
    return analysis


def get_analysis(session: Session, analysis_id: int) -> Analysis | None:
    """The analysis with this id, or ``None``."""
    return session.get(Analysis, analysis_id)


def list_analyses(session: Session, *, note_id: int | None = None, limit: int | None = 100) -> list[Analysis]:
    """Analyses, newest first (optionally of one note)."""
    stmt = select(Analysis).order_by(Analysis.id.desc())
    if note_id is not None:
        stmt = stmt.where(Analysis.note_id == note_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def list_suggestions(session: Session, analysis_id: int) -> list[Suggestion]:
    """The suggestions of an analysis in result order (reviewer-added ones last)."""
    stmt = select(Suggestion).where(Suggestion.analysis_id == analysis_id).order_by(Suggestion.position, Suggestion.id)
    return list(session.scalars(stmt))


def latest_decisions(session: Session, analysis_id: int) -> dict[tuple[int, str, str | None], Decision]:
    """The newest decision per (suggestion, target, code) of an analysis: what a review page shows as current."""
    stmt = select(Decision).where(Decision.analysis_id == analysis_id).order_by(Decision.id)
    return {(d.suggestion_id, d.target, d.code): d for d in session.scalars(stmt)}


