"""The app's writes of monitoring statistics that are not tied to a stored analysis (the Batch page)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from db.session import session_scope
from db.stats import record_many


def store_batch_stats(engine: Any, records: Sequence[dict[str, Any] | None]) -> int:
    """Store the Batch page's monitoring lines and return how many were stored.

    Args:
        engine: The feedback store's SQLAlchemy engine.
        records: :func:`engine.batch.analyze_with_stats` lines (``{"id", ...profile}``, numbers only, with the NER
            token statistics); ``None`` for a note that failed.

    The rows get source ``batch``, as ``python -m engine monitor ingest`` gives the CLI batch's lines: the page
    runs the same batch analysis and, like the CLI, stores no analysis for its notes (only their statistics).
    """
    with session_scope(engine) as session:
        return record_many(session, ((r, r.get("id")) for r in records if r is not None), source="batch")
