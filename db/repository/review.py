"""A note's review as a whole: the "fully reviewed" mark, and who decided what on each entity and code.

The mark is kept on the analysis (the note as those model versions analysed it: the spans a reviewer went
through), with who set it and when, and an audit row for every change. Exports treat a marked note as gold: a
model entity nobody decided on stands as the model gave it (see :mod:`db.export.selection`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.models import Analysis, Decision, Suggestion, utcnow
from db.repository.conflicts import describe, resolve_entity
from db.repository.validation import add_audit, check_reviewer
from db.settings import adjudicators


def _analysis(session: Session, analysis_id: object) -> Analysis:
    analysis = session.get(Analysis, analysis_id) if isinstance(analysis_id, int) else None
    if analysis is None or isinstance(analysis_id, bool):
        raise FeedbackError(FeedbackCode.UNKNOWN_ANALYSIS, f"no analysis with id {analysis_id!r}")
    return analysis


def set_fully_reviewed(session: Session, *, analysis_id: int, reviewer: str, reviewed: bool = True) -> Analysis:
    """Mark a note (one analysis of it) fully reviewed, or clear the mark, with an audit row.

    Args:
        session: An open session.
        analysis_id: The analysis the reviewer went through.
        reviewer: Who marks it (non-empty); stored with the time.
        reviewed: False clears the mark (the note is no longer gold for exports).

    Raises:
        FeedbackError: ``unknown_analysis`` or ``empty_reviewer``; nothing is written then.
    """
    reviewer = check_reviewer(reviewer)
    analysis = _analysis(session, analysis_id)
    now = utcnow()
    before = {"reviewed_by": analysis.reviewed_by,
              "reviewed_at": None if analysis.reviewed_at is None else analysis.reviewed_at.isoformat()}
    analysis.reviewed_by, analysis.reviewed_at = (reviewer, now) if reviewed else (None, None)
    add_audit(session, "note_reviewed" if reviewed else "note_review_cleared", analysis.id, reviewer,
              {"analysis_id": analysis.id, "before": before}, now)
    session.flush()
    return analysis


@dataclass(slots=True)
class ReviewItem:
    """One entity or code of a note with each reviewer's decision on it (see :mod:`db.repository.conflicts`).

    Attributes:
        suggestion_id: The entity.
        position: Its place in the note's entity list.
        text: The entity's text.
        label: Its label (as the model or the reviewer who added it gave it).
        target: ``entity`` or ``code``.
        code: For a code item: the code.
        status: ``single``, ``agreed``, ``conflict`` or ``adjudicated``.
        by_reviewer: Reviewer -> their newest decision, in words.
        adjudication: The adjudicator's decision in words (with who), if any.
        options: The distinct outcomes reviewers chose, as decision dicts with ``shown`` (in words) and ``by``
            (who chose it): what an adjudicator can pick.
    """

    suggestion_id: int
    position: int
    text: str
    label: str
    target: str
    code: str | None
    status: str
    by_reviewer: dict[str, str] = field(default_factory=dict)
    adjudication: str | None = None
    options: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class NoteReview:
    """Who decided what on a note, and whether it is marked fully reviewed."""

    analysis_id: int
    reviewed_by: str | None
    reviewed_at: datetime | None
    reviewers: list[str]
    items: list[ReviewItem]
    adjudicators: list[str]

    @property
    def conflicts(self) -> list[ReviewItem]:
        """Items whose reviewers disagree and that no adjudicator resolved."""
        return [i for i in self.items if i.status == "conflict"]


def note_review(session: Session, analysis_id: int) -> NoteReview:
    """Every decided entity and code of an analysis with each reviewer's newest decision and its status.

    Raises:
        FeedbackError: ``unknown_analysis``.
    """
    analysis = _analysis(session, analysis_id)
    text = analysis.note.text
    suggestions = {s.id: s for s in session.scalars(select(Suggestion).where(Suggestion.analysis_id == analysis.id))}
    per_suggestion: dict[int, list[dict[str, Any]]] = {}
    for d in session.scalars(select(Decision).where(Decision.analysis_id == analysis.id).order_by(Decision.id)):
        per_suggestion.setdefault(d.suggestion_id, []).append({**d.to_dict(), "suggestion_id": d.suggestion_id})
    items: list[ReviewItem] = []
    reviewers: set[str] = set()
    for sid, decisions in per_suggestion.items():
        s = suggestions[sid]
        for (target, code), res in resolve_entity(decisions).items():
            reviewers.update(res.by_reviewer)
            options: dict[str, dict[str, Any]] = {}
            for name, d in sorted(res.by_reviewer.items()):
                shown = describe(d, text)
                options.setdefault(shown, {**d, "shown": shown, "by": []})["by"].append(name)
            adj = res.adjudication
            items.append(ReviewItem(
                suggestion_id=sid, position=s.position, text=s.text, label=s.label, target=target, code=code,
                status=res.status, by_reviewer={r: describe(d, text) for r, d in sorted(res.by_reviewer.items())},
                adjudication=None if adj is None else f"{describe(adj, text)} ({adj['reviewer']})",
                options=list(options.values()),
            ))
    items.sort(key=lambda i: (i.position, i.target != "entity", i.code or ""))
    return NoteReview(analysis.id, analysis.reviewed_by, analysis.reviewed_at, sorted(reviewers), items,
                      sorted(adjudicators()))
