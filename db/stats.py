"""Data access of monitoring: per-analysis statistics (``analysis_stats``) and the decisions override rates need.

Writers call :func:`record_analysis` with :func:`engine.monitoring.profile.profile_analysis`'s dict (the app when
it stores an analysis, the API, ``python -m engine monitor ingest`` for a batch job's ``*.stats.jsonl``); readers
get plain arrays (:func:`load_table`) and plain rows (:func:`decision_rows`) for the pure computations of
:mod:`engine.monitoring`. Every function takes an open session; none commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.models import AnalysisStats, Decision, Suggestion, utcnow
from engine.monitoring.profile import pack_vocab, profile_analysis
from engine.monitoring.table import NUMERIC_COLUMNS, StatsTable, from_arrays, vocab_from_blobs
from engine.types import LABELS

SOURCES = ("app", "batch", "api")
_LABEL_COLUMNS = {label: f"label_{label.lower()}" for label in LABELS}
_SCALARS = ("n_chars", "n_words", "n_entities", "score_sum", "n_scored", "n_low_confidence", "n_coded",
            "code_score_sum", "token_entropy", "o_share", "n_tokens", "profile_version")


def _row(stats: Mapping[str, Any], source: str, analysis_id: int | None, external_id: str | None,
         created_at: datetime | None) -> dict[str, Any]:
    if source not in SOURCES:
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"stats source {source!r} is not one of {', '.join(SOURCES)}")
    if not isinstance(stats, Mapping) or not isinstance(stats.get("label_counts"), Mapping):
        raise FeedbackError(FeedbackCode.BAD_INPUT, "monitoring stats need 'label_counts' (profile_analysis output)")
    models = stats.get("models") or {}
    row: dict[str, Any] = {key: stats.get(key) for key in _SCALARS}
    for key in ("n_chars", "n_words", "n_entities", "score_sum", "n_scored", "n_low_confidence", "n_coded",
                "code_score_sum"):
        row[key] = row[key] or 0
    row["profile_version"] = row["profile_version"] or 1
    row.update({column: int(stats["label_counts"].get(label, 0)) for label, column in _LABEL_COLUMNS.items()})
    row.update(
        analysis_id=analysis_id,
        source=source,
        external_id=None if external_id is None else str(external_id)[:500],
        ner_version=models.get("ner"),
        icd_version=models.get("icd"),
        vocab=pack_vocab(stats.get("vocab") or []),
        created_at=created_at or utcnow(),
    )
    return row


def record_analysis(
    session: Session,
    stats: Mapping[str, Any],
    *,
    source: str = "app",
    analysis_id: int | None = None,
    external_id: str | None = None,
    created_at: datetime | None = None,
) -> int:
    """Store one analysis's monitoring statistics and return the row id.

    Args:
        session: An open session (the caller's transaction; not committed).
        stats: :func:`engine.monitoring.profile.profile_analysis` output (no note text in it).
        source: ``app``, ``batch`` or ``api``.
        analysis_id: The stored :class:`~db.models.Analysis` it describes, if any.
        external_id: The note's id as given to the engine, if any.
        created_at: When it was analysed (naive UTC; default now).

    Raises:
        FeedbackError: ``bad_input`` for an unknown source or a dict that is not a profile.
    """
    # One Core INSERT on the session's connection (same transaction): no ORM object and no flush, which would
    # walk every object of the caller's session (the app's analysis and its suggestions); a third of the cost.
    done = session.connection().execute(insert(AnalysisStats.__table__),
                                        [_row(stats, source, analysis_id, external_id, created_at)])
    return int(done.inserted_primary_key[0])


def record_result(session: Session, text: str, result: Any, *, source: str = "app", analysis_id: int | None = None,
                  external_id: str | None = None, low_confidence: float | None = None) -> int:
    """Profile one analysed note and store its statistics: the one call the app, the API and the batch make.

    Args:
        session: An open session (flushed, not committed).
        text: The note exactly as analysed (only numbers derived from it are stored).
        result: Its :class:`~engine.types.AnalysisResult`, or the contract's dict (then without token statistics
            unless the dict carries ``token_stats``).
        source: ``app``, ``batch`` or ``api``.
        analysis_id: The stored analysis it describes, if any.
        external_id: The note's id, if any.
        low_confidence: The low-confidence threshold (default ``MonitorSettings().low_confidence``).
    """
    if low_confidence is None:
        from engine.settings import MonitorSettings

        low_confidence = MonitorSettings().low_confidence
    stats = profile_analysis(text, result, low_confidence)
    return record_analysis(session, stats, source=source, analysis_id=analysis_id, external_id=external_id)


def record_many(session: Session, items: Iterable[tuple[Mapping[str, Any], str | None]], source: str = "batch",
                created_at: datetime | None = None, chunk: int = 5000) -> int:
    """Store many ``(stats, external_id)`` pairs with bulk inserts; returns how many were stored."""
    count, rows = 0, []
    for stats, external_id in items:
        rows.append(_row(stats, source, None, external_id, created_at))
        if len(rows) >= chunk:
            session.execute(insert(AnalysisStats), rows)
            count, rows = count + len(rows), []
    if rows:
        session.execute(insert(AnalysisStats), rows)
        count += len(rows)
    return count


def count_stats(session: Session) -> int:
    """Stored statistics rows."""
    return session.scalar(select(func.count()).select_from(AnalysisStats)) or 0


def load_table(session: Session, last: int | None = None, ner_version: str | None = None) -> StatsTable:
    """The stored statistics, oldest first, as a :class:`~engine.monitoring.table.StatsTable`.

    Args:
        session: An open session.
        last: Only the newest ``last`` rows (by id); all when ``None``.
        ner_version: Only rows of this NER model version.
    """
    # A Core query on the session's connection (no ORM row processing), the numbers in one ``np.array`` and the
    # vocabulary blobs decoded together: 100,000 rows load in about a second instead of four (docs/monitoring.md).
    names = [*_LABEL_COLUMNS.values(), *NUMERIC_COLUMNS[len(LABELS):]]  # NUMERIC_COLUMNS' order, the db's names
    columns = [getattr(AnalysisStats, name) for name in names]
    stmt = select(*columns, AnalysisStats.created_at, AnalysisStats.vocab)
    if ner_version is not None:
        stmt = stmt.where(AnalysisStats.ner_version == ner_version)
    if last is None:
        rows = session.connection().execute(stmt.order_by(AnalysisStats.id)).all()
    else:
        rows = session.connection().execute(stmt.order_by(AnalysisStats.id.desc()).limit(last)).all()[::-1]
    k = len(NUMERIC_COLUMNS)
    numbers = np.array([row[:k] for row in rows], dtype=np.float64).reshape(len(rows), k)
    stamps = np.fromiter((np.nan if r[k] is None else r[k].timestamp() for r in rows), dtype=np.float64,
                         count=len(rows))
    return from_arrays(numbers, vocab_from_blobs([row[k + 1] for row in rows]), stamps)


def decision_rows(session: Session, since: datetime | None = None) -> list[dict[str, Any]]:
    """Entity and code decisions as plain rows for :mod:`engine.monitoring.overrides` (oldest first).

    Each row: ``id``, ``suggestion_id``, ``created_at``, ``target``, ``decision``, ``label`` (the corrected or added
    label for reviewer-added entities, else the suggestion's), ``code``.
    """
    stmt = (
        select(Decision.id, Decision.suggestion_id, Decision.created_at, Decision.target, Decision.decision,
               Suggestion.label, Decision.code)
        .join(Suggestion, Suggestion.id == Decision.suggestion_id)
        .order_by(Decision.id)
    )
    if since is not None:
        stmt = stmt.where(Decision.created_at >= since)
    keys = ("id", "suggestion_id", "created_at", "target", "decision", "label", "code")
    return [dict(zip(keys, row, strict=True)) for row in session.execute(stmt)]
