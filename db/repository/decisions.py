"""Reviewer decisions on entities and codes, and entities the model missed, each with its audit row.

A decision and its audit row are added and flushed together, so they commit or vanish as one; input is validated
completely first, so a :class:`~db.errors.FeedbackError` means nothing was written."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.models import Analysis, Decision, Suggestion
from db.repository.validation import (
    ENTITY_DECISIONS,
    TARGETS,
    add_audit,
    check_code,
    check_comment,
    check_label,
    check_reviewer,
    check_role,
    check_span,
    check_traits,
    signed,
)
from engine.types import assertion_from_traits


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
    role: str = "reviewer",
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
        role: ``reviewer``, or ``adjudicator`` to resolve a conflict (:mod:`db.repository.conflicts`).

    Returns:
        The stored decision (flushed: it has its id). The model version is the analysis's NER version for
        entity decisions and its ICD version for code decisions.

    Raises:
        FeedbackError: For an unknown suggestion, an unknown decision or target, a label not in the contract, a
            malformed code, a span outside the note, a ``correct`` that changes nothing, an empty reviewer, or
            ``not_adjudicator`` for the adjudicator role taken by someone else. Nothing is written then.
    """
    reviewer = check_reviewer(reviewer)
    role = check_role(role, reviewer)
    comment = check_comment(comment)
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
    corrected = (corrected_start, corrected_end, corrected_label)
    if target == "entity":
        if code is not None or corrected_code is not None:
            raise FeedbackError(FeedbackCode.BAD_TARGET, "an entity decision takes no code; use target='code'")
        fields = _entity_fields(suggestion, decision, *corrected)
        model_version = suggestion.analysis.ner_version
    else:
        if any(value is not None for value in corrected):
            raise FeedbackError(FeedbackCode.BAD_TARGET, "a code decision takes no span or label")
        fields = _code_fields(suggestion, decision, code, corrected_code)
        model_version = suggestion.analysis.icd_version
    row = Decision(
        suggestion_id=suggestion.id,
        analysis_id=suggestion.analysis_id,
        target=target,
        decision=decision,
        role=role,
        **signed(reviewer, comment, model_version),
        **fields,
    )
    _add_decision(session, row, suggestion)
    return row


def _entity_fields(
    suggestion: Suggestion, decision: str, start: int | None, end: int | None, label: str | None
) -> dict[str, Any]:
    """The corrected span and label of an entity decision (only a ``correct`` has them)."""
    if decision != "correct":
        if start is not None or end is not None or label is not None:
            raise FeedbackError(FeedbackCode.BAD_INPUT, f"{decision!r} takes no corrected span or label")
        return {}
    start = suggestion.start if start is None else start
    end = suggestion.end if end is None else end
    start, end = check_span(start, end, suggestion.analysis.note.text, trimmed=True)
    label = suggestion.label if label is None else check_label(label)
    if (start, end, label) == (suggestion.start, suggestion.end, suggestion.label):
        raise FeedbackError(FeedbackCode.BAD_INPUT, "a correction must change the span or the label")
    return {"corrected_start": start, "corrected_end": end, "corrected_label": label}


def _code_fields(suggestion: Suggestion, decision: str, code: str | None, corrected_code: str | None) -> dict[str, Any]:
    """The code a code decision is about and, for a ``correct``, the right one."""
    suggested = [c.get("code") for c in suggestion.codes or []]
    if code is not None:
        code = check_code(code)
        if code not in suggested:
            raise FeedbackError(
                FeedbackCode.BAD_CODE, f"code {code} is not among suggestion {suggestion.id}'s codes {suggested}"
            )
    elif decision != "correct":
        raise FeedbackError(FeedbackCode.BAD_CODE, f"{decision!r} on a code needs the code it is about")
    fields: dict[str, Any] = {"code": code}
    if decision == "correct":
        if corrected_code is None:
            raise FeedbackError(FeedbackCode.BAD_CODE, "a code correction needs corrected_code")
        fields["corrected_code"] = check_code(corrected_code, "corrected code")
    elif corrected_code is not None:
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"{decision!r} takes no corrected code")
    return fields


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
    reviewer = check_reviewer(reviewer)
    comment = check_comment(comment)
    analysis = session.get(Analysis, analysis_id) if isinstance(analysis_id, int) else None
    if analysis is None:
        raise FeedbackError(FeedbackCode.UNKNOWN_ANALYSIS, f"no analysis with id {analysis_id!r}")
    text = analysis.note.text
    start, end = check_span(start, end, text, trimmed=True)
    label = check_label(label)
    traits = check_traits(list(traits))
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
        **signed(reviewer, comment, analysis.ner_version),
    )
    _add_decision(session, row, suggestion)
    return suggestion


def _add_decision(session: Session, row: Decision, suggestion: Suggestion) -> None:
    """Write a decision and its audit row in the caller's transaction (both or neither reach the database)."""
    session.add(row)
    session.flush()  # the audit row names the decision's id
    add_audit(session, "decision", row.id, row.reviewer, _decision_payload(row, suggestion), row.created_at)
    session.flush()


