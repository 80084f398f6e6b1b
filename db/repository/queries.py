"""Read-only queries for the History page, reports and dashboards: decisions as flat rows, row counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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
)
from db.repository.filters import ExportFilters


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
    role: str = "reviewer"
    """``reviewer`` or ``adjudicator`` (a decision that resolves a conflict)."""

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict (``when`` in ISO 8601)."""
        out = asdict(self)
        out["when"] = self.when.isoformat()
        return out


def list_decisions(
    session: Session, filters: ExportFilters | None = None, *, limit: int | None = None, **keywords: Any
) -> list[DecisionView]:
    """Decisions newest first, filtered, as flat :class:`DecisionView` rows.

    Args:
        session: An open session.
        filters: Which decisions (see :class:`~db.repository.filters.ExportFilters`).
        limit: At most this many rows.
        **keywords: Instead of ``filters``, its fields (``since``, ``until``, ``reviewer``, ``model_version``,
            ``decision``, ``label``).
    """
    conditions = ExportFilters.from_keywords(filters, keywords).decision_conditions()
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
        # The table shows the suggested code and the corrected one apart; the chapter follows what the reviewer
        # settled on.
        final = d.corrected_code or d.code
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
                code=d.code,
                chapter=final[0] if final else None,
                model_version=d.model_version,
                comment=d.comment,
                corrected_start=d.corrected_start,
                corrected_end=d.corrected_end,
                corrected_label=d.corrected_label,
                corrected_code=d.corrected_code,
                suggestion_id=d.suggestion_id,
                analysis_id=d.analysis_id,
                note_id=note_id,
                role=d.role,
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


