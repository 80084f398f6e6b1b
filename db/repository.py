"""Small repository functions over a session: save what the engine produced, record what reviewers decided.

Every function takes an open :class:`~sqlalchemy.orm.Session` and leaves committing to the caller (normally
:func:`db.session.session_scope`), so a page can group several calls in one transaction. Input is validated
completely before anything is added to the session: a :class:`~db.errors.FeedbackError` means nothing was written.
Each decision and its audit row are added together and flushed together, so they commit or vanish as one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.models import (
    Analysis,
    AuditLog,
    Decision,
    ModelVersion,
    Note,
    SentenceDecision,
    Suggestion,
    Summary,
    SummarySentenceRow,
    utcnow,
)
from engine.types import LABELS, TRAITS, assertion_from_traits

ENTITY_DECISIONS = ("accept", "reject", "correct")
"""What :func:`record_decision` accepts; ``add`` is written only by :func:`add_missed_entity`."""
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


# ---------------------------------------------------------------------------------------------------- validation


def _reviewer(reviewer: object) -> str:
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise FeedbackError(FeedbackCode.EMPTY_REVIEWER, "a decision needs a reviewer name (got an empty one)")
    reviewer = reviewer.strip()
    if len(reviewer) > MAX_REVIEWER:
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"reviewer name longer than {MAX_REVIEWER} characters")
    return reviewer


def _comment(comment: object) -> str | None:
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"comment must be text, got {type(comment).__name__}")
    if len(comment) > MAX_COMMENT:
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"comment longer than {MAX_COMMENT} characters")
    return comment.strip() or None


def _label(label: object) -> str:
    if label not in LABELS:
        raise FeedbackError(FeedbackCode.BAD_LABEL, f"label {label!r} is not one of {', '.join(LABELS)}")
    return str(label)


def _code(code: object, what: str = "code") -> str:
    if not isinstance(code, str) or not ICD10CM_CODE.match(code.strip().upper()):
        raise FeedbackError(FeedbackCode.BAD_CODE, f"{what} {code!r} is not an ICD-10-CM code such as I21.9")
    return code.strip().upper()


def _span(start: object, end: object, text: str, trimmed: bool = False) -> tuple[int, int]:
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


def _audit(
    session: Session, kind: str, ref_id: int, actor: str, payload: dict[str, Any], when: datetime | None = None
) -> AuditLog:
    row = AuditLog(kind=kind, ref_id=ref_id, actor=actor, payload=payload, created_at=when or utcnow())
    session.add(row)
    return row


def _add_decision(session: Session, row: Decision, suggestion: Suggestion) -> None:
    """Write a decision and its audit row in the caller's transaction (both or neither reach the database)."""
    session.add(row)
    session.flush()  # the audit row names the decision's id
    _audit(session, "decision", row.id, row.reviewer, _decision_payload(row, suggestion), row.created_at)
    session.flush()


# ---------------------------------------------------------------------------------------------------- notes, analyses


def save_note(session: Session, text: str, source: str | None = None) -> Note:
    """Store a note once per distinct text and return it (the existing row when the text is already there).

    Args:
        session: An open session.
        text: The note exactly as analysed (offsets refer to it).
        source: Where it came from (file name, EHR id), kept from the first save.

    Raises:
        FeedbackError: ``bad_input`` when ``text`` is not a non-empty string.
    """
    if not isinstance(text, str) or not text:
        raise FeedbackError(FeedbackCode.BAD_INPUT, "a note needs a non-empty text")
    digest = sha256_text(text)
    note = session.scalar(select(Note).where(Note.sha256 == digest))
    if note is not None:
        return note
    note = Note(sha256=digest, text=text, source=source)
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
    if not isinstance(raw, dict):
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"entity {index} is not an object")
    for key in ("start", "end", "label"):
        if key not in raw:
            raise FeedbackError(FeedbackCode.BAD_INPUT, f"entity {index} lacks {key!r}")
    start, end = _span(raw["start"], raw["end"], text)
    label = _label(raw["label"])
    given = raw.get("text")
    if given is not None and given != text[start:end]:
        raise FeedbackError(
            FeedbackCode.BAD_SPAN, f"entity {index}: text {given!r} != note[{start}:{end}] {text[start:end]!r}"
        )
    traits = list(raw.get("traits") or [])
    if any(t not in TRAITS for t in traits):
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"entity {index}: unknown trait in {traits!r}")
    codes = list(raw.get("codes") or [])
    for code in codes:
        if not isinstance(code, dict) or "code" not in code:
            raise FeedbackError(FeedbackCode.BAD_INPUT, f"entity {index}: a code object lacks 'code'")
        _code(code["code"])
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


# ---------------------------------------------------------------------------------------------------- decisions


def _decision_payload(decision: Decision, suggestion: Suggestion) -> dict[str, Any]:
    payload = decision.to_dict()
    payload.update(
        suggestion_id=suggestion.id,
        analysis_id=suggestion.analysis_id,
        span=[suggestion.start, suggestion.end],
        label=suggestion.label,
        text=suggestion.text,
    )
    return payload


def record_decision(
    session: Session,
    *,
    suggestion_id: int,
    reviewer: str,
    decision: str,
    target: str = "entity",
    code: str | None = None,
    corrected_start: int | None = None,
    corrected_end: int | None = None,
    corrected_label: str | None = None,
    corrected_code: str | None = None,
    comment: str | None = None,
) -> Decision:
    """Record a reviewer's decision on an entity or one of its codes, with its audit row, atomically.

    Args:
        session: An open session.
        suggestion_id: The :class:`Suggestion` decided on.
        reviewer: Who decided (non-empty).
        decision: ``accept``, ``reject`` or ``correct``.
        target: ``entity`` (the span and label) or ``code`` (one suggested code; give ``code``).
        code: For ``target='code'``: which code; it must be one of the suggestion's codes, except for a
            ``correct`` that adds a code the model missed (then only ``corrected_code`` is needed).
        corrected_start: For an entity ``correct``: the corrected span start (default: unchanged).
        corrected_end: For an entity ``correct``: the corrected span end (default: unchanged).
        corrected_label: For an entity ``correct``: the corrected label (default: unchanged).
        corrected_code: For a code ``correct``: the right code.
        comment: Free text.

    Returns:
        The stored decision (flushed: it has its id). The model version is the analysis's NER version for
        entity decisions and its ICD version for code decisions.

    Raises:
        FeedbackError: For an unknown suggestion, an unknown decision or target, a label not in the contract, a
            malformed code, a span outside the note, a ``correct`` that changes nothing, or an empty reviewer.
            Nothing is written then.
    """
    reviewer = _reviewer(reviewer)
    comment = _comment(comment)
    if decision not in ENTITY_DECISIONS:
        raise FeedbackError(
            FeedbackCode.BAD_DECISION, f"decision {decision!r} is not one of {', '.join(ENTITY_DECISIONS)}"
        )
    if target not in TARGETS:
        raise FeedbackError(FeedbackCode.BAD_TARGET, f"target {target!r} is not one of {', '.join(TARGETS)}")
    if isinstance(suggestion_id, bool) or not isinstance(suggestion_id, int):
        raise FeedbackError(FeedbackCode.UNKNOWN_SUGGESTION, f"suggestion id {suggestion_id!r} is not an integer")
    suggestion = session.get(Suggestion, suggestion_id)
    if suggestion is None:
        raise FeedbackError(FeedbackCode.UNKNOWN_SUGGESTION, f"no suggestion with id {suggestion_id}")
    analysis = suggestion.analysis
    fields: dict[str, Any] = {}
    if target == "entity":
        if code is not None or corrected_code is not None:
            raise FeedbackError(FeedbackCode.BAD_TARGET, "an entity decision takes no code; use target='code'")
        if decision == "correct":
            start = suggestion.start if corrected_start is None else corrected_start
            end = suggestion.end if corrected_end is None else corrected_end
            start, end = _span(start, end, analysis.note.text, trimmed=True)
            label = suggestion.label if corrected_label is None else _label(corrected_label)
            if (start, end, label) == (suggestion.start, suggestion.end, suggestion.label):
                raise FeedbackError(FeedbackCode.BAD_INPUT, "a correction must change the span or the label")
            fields = {"corrected_start": start, "corrected_end": end, "corrected_label": label}
        elif corrected_start is not None or corrected_end is not None or corrected_label is not None:
            raise FeedbackError(FeedbackCode.BAD_INPUT, f"{decision!r} takes no corrected span or label")
        model_version = analysis.ner_version
    else:
        if corrected_start is not None or corrected_end is not None or corrected_label is not None:
            raise FeedbackError(FeedbackCode.BAD_TARGET, "a code decision takes no span or label")
        suggested = [c.get("code") for c in suggestion.codes or []]
        if code is not None:
            code = _code(code)
            if code not in suggested:
                raise FeedbackError(
                    FeedbackCode.BAD_CODE, f"code {code} is not among suggestion {suggestion_id}'s codes {suggested}"
                )
        elif decision != "correct":
            raise FeedbackError(FeedbackCode.BAD_CODE, f"{decision!r} on a code needs the code it is about")
        fields = {"code": code}
        if decision == "correct":
            if corrected_code is None:
                raise FeedbackError(FeedbackCode.BAD_CODE, "a code correction needs corrected_code")
            fields["corrected_code"] = _code(corrected_code, "corrected code")
        elif corrected_code is not None:
            raise FeedbackError(FeedbackCode.BAD_INPUT, f"{decision!r} takes no corrected code")
        model_version = analysis.icd_version
    row = Decision(
        suggestion_id=suggestion.id,
        analysis_id=suggestion.analysis_id,
        target=target,
        decision=decision,
        reviewer=reviewer,
        comment=comment,
        model_version=model_version,
        created_at=utcnow(),
        **fields,
    )
    _add_decision(session, row, suggestion)
    return row


def add_missed_entity(
    session: Session,
    *,
    analysis_id: int,
    start: int,
    end: int,
    label: str,
    reviewer: str,
    comment: str | None = None,
    traits: Iterable[str] = (),
) -> Suggestion:
    """Add an entity the model missed: a reviewer-origin suggestion plus an ``add`` decision and its audit row.

    Raises:
        FeedbackError: For an unknown analysis, a span outside the note, a bad label or trait, an empty reviewer,
            or a span and label the analysis already has.
    """
    reviewer = _reviewer(reviewer)
    comment = _comment(comment)
    analysis = session.get(Analysis, analysis_id) if isinstance(analysis_id, int) else None
    if analysis is None:
        raise FeedbackError(FeedbackCode.UNKNOWN_ANALYSIS, f"no analysis with id {analysis_id!r}")
    text = analysis.note.text
    start, end = _span(start, end, text, trimmed=True)
    label = _label(label)
    traits = list(traits)
    if any(t not in TRAITS for t in traits):
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"unknown trait in {traits!r}")
    clash = session.scalar(
        select(Suggestion.id).where(
            Suggestion.analysis_id == analysis.id,
            Suggestion.start == start,
            Suggestion.end == end,
            Suggestion.label == label,
        )
    )
    if clash is not None:
        raise FeedbackError(
            FeedbackCode.DUPLICATE, f"analysis {analysis.id} already has {label} [{start}, {end}) (suggestion {clash})"
        )
    position = session.scalar(
        select(func.coalesce(func.max(Suggestion.position), -1) + 1).where(Suggestion.analysis_id == analysis.id)
    )
    suggestion = Suggestion(
        analysis_id=analysis.id,
        position=position,
        start=start,
        end=end,
        text=text[start:end],
        label=label,
        score=None,
        assertion=assertion_from_traits(traits),
        traits=traits,
        trigger=None,
        section=None,
        codes=[],
        origin="reviewer",
    )
    session.add(suggestion)
    session.flush()
    row = Decision(
        suggestion_id=suggestion.id,
        analysis_id=analysis.id,
        target="entity",
        decision="add",
        corrected_start=start,
        corrected_end=end,
        corrected_label=label,
        reviewer=reviewer,
        comment=comment,
        model_version=analysis.ner_version,
        created_at=utcnow(),
    )
    _add_decision(session, row, suggestion)
    return suggestion


# ---------------------------------------------------------------------------------------------------- summaries


def save_summary(
    session: Session, note: Note, summary: dict[str, Any], *, model_version: str | None = None
) -> list[SummarySentenceRow]:
    """Store a summary result (the contract's summary object) and return its sentences in note order.

    Raises:
        FeedbackError: When a sentence's span does not fit the note or its text differs from the note's.
    """
    if not isinstance(summary, dict) or not isinstance(summary.get("sentences"), list):
        raise FeedbackError(FeedbackCode.BAD_INPUT, "a summary result needs a 'sentences' list")
    rows = []
    for i, raw in enumerate(summary["sentences"]):
        if not isinstance(raw, dict) or "start" not in raw or "end" not in raw:
            raise FeedbackError(FeedbackCode.BAD_INPUT, f"sentence {i} lacks start/end")
        start, end = _span(raw["start"], raw["end"], note.text)
        if raw.get("text") is not None and raw["text"] != note.text[start:end]:
            raise FeedbackError(FeedbackCode.BAD_SPAN, f"sentence {i}: text differs from note[{start}:{end}]")
        rows.append((start, end, raw.get("score"), raw.get("rank")))
    row = Summary(
        note=note,
        external_id=None if summary.get("id") is None else str(summary["id"]),
        model_version=model_version,
    )
    session.add(row)
    sentences = [
        SummarySentenceRow(
            summary=row, start=s, end=e, text=note.text[s:e], score=None if sc is None else float(sc), rank=rk
        )
        for s, e, sc, rk in sorted(rows)
    ]
    session.add_all(sentences)
    session.flush()
    return sentences


def record_sentence_decision(
    session: Session, *, sentence_id: int, reviewer: str, decision: str, comment: str | None = None
) -> SentenceDecision:
    """Record ``keep`` or ``drop`` on a summary sentence, with its audit row, atomically.

    Raises:
        FeedbackError: For an unknown sentence, a decision other than keep/drop, or an empty reviewer.
    """
    reviewer = _reviewer(reviewer)
    comment = _comment(comment)
    if decision not in SENTENCE_DECISIONS:
        raise FeedbackError(FeedbackCode.BAD_DECISION, f"sentence decision {decision!r} is not keep or drop")
    sentence = session.get(SummarySentenceRow, sentence_id) if isinstance(sentence_id, int) else None
    if sentence is None:
        raise FeedbackError(FeedbackCode.UNKNOWN_SENTENCE, f"no summary sentence with id {sentence_id!r}")
    row = SentenceDecision(
        sentence_id=sentence.id,
        summary_id=sentence.summary_id,
        decision=decision,
        reviewer=reviewer,
        comment=comment,
        model_version=sentence.summary.model_version,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    payload = {
        "sentence_id": sentence.id,
        "summary_id": sentence.summary_id,
        "span": [sentence.start, sentence.end],
        "decision": decision,
        "reviewer": reviewer,
        "comment": comment,
        "model_version": row.model_version,
        "created_at": row.created_at.isoformat(),
    }
    _audit(session, "sentence_decision", row.id, reviewer, payload, row.created_at)
    session.flush()
    return row


# ---------------------------------------------------------------------------------------------------- history


@dataclass(frozen=True, slots=True)
class DecisionView:
    """One decision as a flat row for the History page and for reports."""

    id: int
    when: datetime
    reviewer: str
    decision: str
    target: str
    label: str
    entity_text: str
    start: int
    end: int
    code: str | None
    chapter: str | None
    """First letter of the code the decision is about (the corrected one for a code correction)."""
    model_version: str | None
    comment: str | None
    corrected_start: int | None
    corrected_end: int | None
    corrected_label: str | None
    corrected_code: str | None
    suggestion_id: int
    analysis_id: int
    note_id: int

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict (``when`` in ISO 8601)."""
        out = asdict(self)
        out["when"] = self.when.isoformat()
        return out


def decision_filters(
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    reviewer: str | None = None,
    model_version: str | None = None,
    decision: str | None = None,
    label: str | None = None,
) -> list[Any]:
    """SQL conditions on :class:`Decision` (joined with :class:`Suggestion` for ``label``) for these filters.

    ``since`` is inclusive and ``until`` exclusive; naive times are UTC.
    """
    conditions: list[Any] = []
    since_dt, until_dt = to_utc_naive(since), to_utc_naive(until)
    if since_dt is not None:
        conditions.append(Decision.created_at >= since_dt)
    if until_dt is not None:
        conditions.append(Decision.created_at < until_dt)
    if reviewer is not None:
        conditions.append(Decision.reviewer == reviewer)
    if model_version is not None:
        conditions.append(Decision.model_version == model_version)
    if decision is not None:
        if decision not in ALL_DECISIONS:
            raise FeedbackError(FeedbackCode.BAD_DECISION, f"decision filter {decision!r} not in {ALL_DECISIONS}")
        conditions.append(Decision.decision == decision)
    if label is not None:
        _label(label)
        conditions.append(func.coalesce(Decision.corrected_label, Suggestion.label) == label)
    return conditions


def list_decisions(
    session: Session,
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    reviewer: str | None = None,
    model_version: str | None = None,
    decision: str | None = None,
    label: str | None = None,
    limit: int | None = None,
) -> list[DecisionView]:
    """Decisions newest first, filtered, as flat :class:`DecisionView` rows.

    Args:
        session: An open session.
        since: Only decisions at or after this time (naive = UTC; ISO strings accepted).
        until: Only decisions before this time.
        reviewer: Only this reviewer's.
        model_version: Only decisions on results of this model version.
        decision: ``accept``, ``reject``, ``correct`` or ``add``.
        label: Only decisions whose (corrected) label is this.
        limit: At most this many rows.
    """
    conditions = decision_filters(
        since=since, until=until, reviewer=reviewer, model_version=model_version, decision=decision, label=label
    )
    stmt = (
        select(
            Decision,
            Suggestion.label,
            Suggestion.text,
            Suggestion.start,
            Suggestion.end,
            Analysis.note_id,
        )
        .join(Suggestion, Suggestion.id == Decision.suggestion_id)
        .join(Analysis, Analysis.id == Decision.analysis_id)
        .where(*conditions)
        .order_by(Decision.created_at.desc(), Decision.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    views = []
    for d, label_, text_, start, end, note_id in session.execute(stmt):
        code = d.corrected_code or d.code
        views.append(
            DecisionView(
                id=d.id,
                when=d.created_at,
                reviewer=d.reviewer,
                decision=d.decision,
                target=d.target,
                label=d.corrected_label or label_,
                entity_text=text_,
                start=start,
                end=end,
                code=code,
                chapter=code[0] if code else None,
                model_version=d.model_version,
                comment=d.comment,
                corrected_start=d.corrected_start,
                corrected_end=d.corrected_end,
                corrected_label=d.corrected_label,
                corrected_code=d.corrected_code,
                suggestion_id=d.suggestion_id,
                analysis_id=d.analysis_id,
                note_id=note_id,
            )
        )
    return views


def list_sentence_decisions(
    session: Session, *, summary_id: int | None = None, reviewer: str | None = None, limit: int | None = None
) -> list[SentenceDecision]:
    """Sentence decisions newest first (optionally of one summary or one reviewer)."""
    stmt = select(SentenceDecision).order_by(SentenceDecision.created_at.desc(), SentenceDecision.id.desc())
    if summary_id is not None:
        stmt = stmt.where(SentenceDecision.summary_id == summary_id)
    if reviewer is not None:
        stmt = stmt.where(SentenceDecision.reviewer == reviewer)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def count_rows(session: Session) -> dict[str, int]:
    """Row counts of every table (dashboards, tests)."""
    models = (
        Note,
        Analysis,
        Suggestion,
        Decision,
        Summary,
        SummarySentenceRow,
        SentenceDecision,
        ModelVersion,
        AuditLog,
    )
    return {m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0 for m in models}


# ---------------------------------------------------------------------------------------------------- model registry


def register_model_version(
    session: Session,
    *,
    name: str,
    stage: str,
    path: str,
    metrics: dict[str, Any],
    parent: str | None = None,
    data_hash: str | None,
    config: dict[str, Any],
    activate: bool = False,
    actor: str = "system",
) -> ModelVersion:
    """Register a trained model version (and optionally make it the stage's active one).

    Args:
        session: An open session.
        name: The version name (unique per stage), as in the model folder's ``config.json``.
        stage: ``ner``, ``summarizer``, ...
        path: The model folder.
        metrics: Its evaluation figures.
        parent: The version it was trained from (linked when registered in the same stage).
        data_hash: Hash of the training data.
        config: Its training configuration.
        activate: Make it the active version of its stage.
        actor: Who registered it (audit).

    Raises:
        FeedbackError: ``duplicate`` when the stage already has this name; ``bad_input`` for empty fields.
    """
    for key, value in (("name", name), ("stage", stage), ("path", path)):
        if not isinstance(value, str) or not value.strip():
            raise FeedbackError(FeedbackCode.BAD_INPUT, f"a model version needs a non-empty {key}")
    if session.scalar(select(ModelVersion.id).where(ModelVersion.stage == stage, ModelVersion.name == name)):
        raise FeedbackError(FeedbackCode.DUPLICATE, f"stage {stage!r} already has a version named {name!r}")
    parent_id = None
    if parent is not None:
        parent_id = session.scalar(
            select(ModelVersion.id).where(ModelVersion.stage == stage, ModelVersion.name == parent)
        )
    row = ModelVersion(
        name=name,
        stage=stage,
        path=str(path),
        metrics=dict(metrics or {}),
        config=dict(config or {}),
        parent=parent,
        parent_id=parent_id,
        data_hash=data_hash,
        active=False,
    )
    session.add(row)
    session.flush()
    _audit(
        session,
        "model_registered",
        row.id,
        actor,
        {"name": name, "stage": stage, "path": str(path), "parent": parent, "data_hash": data_hash},
    )
    if activate:
        activate_model_version(session, row.id, actor=actor)
    session.flush()
    return row


def list_model_versions(session: Session, stage: str | None = None) -> list[ModelVersion]:
    """Registered versions, newest first (optionally of one stage)."""
    stmt = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    if stage is not None:
        stmt = stmt.where(ModelVersion.stage == stage)
    return list(session.scalars(stmt))


def activate_model_version(session: Session, version_id: int, *, actor: str = "system") -> ModelVersion:
    """Make a version the active one of its stage (the previous active one is deactivated).

    Raises:
        FeedbackError: ``unknown_model_version`` for an id that is not registered.
    """
    row = session.get(ModelVersion, version_id) if isinstance(version_id, int) else None
    if row is None:
        raise FeedbackError(FeedbackCode.UNKNOWN_MODEL_VERSION, f"no model version with id {version_id!r}")
    previous = active_model_version(session, row.stage)
    # Deactivate first and flush, so the one-active-per-stage unique index never sees two.
    session.execute(
        update(ModelVersion).where(ModelVersion.stage == row.stage, ModelVersion.active.is_(True)).values(active=False)
    )
    session.flush()
    row.active = True
    row.activated_at = utcnow()
    session.flush()
    _audit(
        session,
        "model_activated",
        row.id,
        actor,
        {
            "name": row.name,
            "stage": row.stage,
            "previous": None if previous is None else previous.name,
        },
    )
    session.flush()
    return row


def active_model_version(session: Session, stage: str) -> ModelVersion | None:
    """The active version of a stage, or ``None``."""
    return session.scalar(select(ModelVersion).where(ModelVersion.stage == stage, ModelVersion.active.is_(True)))
