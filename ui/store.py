"""The app's reads and exports of the feedback store: what the History, Export and Models pages show.

With :mod:`ui.review` (the reviewer's writes) this is the app's one seam to the database: pages call these
functions with the engine from :func:`ui.resources.get_db_engine` and never open a session themselves. Each call is
one short read-only transaction and returns plain Python values, so pages keep no ORM objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from db import export as db_export
from db import repository
from db.session import session_scope

EXPORT_FORMATS: tuple[str, ...] = db_export.FORMATS
"""The formats :func:`export_dataset` writes (see :mod:`db.export`)."""


def decision_rows(
    engine: Any, filters: repository.ExportFilters | None = None, *, limit: int = 20_000, **keywords: Any
) -> list[dict[str, Any]]:
    """Reviewers' decisions matching the filters, newest first, as table rows (see ``DecisionView.to_dict``).

    Args:
        engine: The store's SQLAlchemy engine.
        filters: Which decisions (:class:`~db.repository.filters.ExportFilters`).
        limit: At most this many rows.
        **keywords: Instead of ``filters``, its fields (``since``, ``until``, ``reviewer``, ``model_version``,
            ``decision``, ``label``), as the History page passes them.
    """
    filters = repository.ExportFilters.from_keywords(filters, keywords)
    with session_scope(engine, write=False) as session:
        return [v.to_dict() for v in repository.list_decisions(session, filters, limit=limit)]


def export_dataset(engine: Any, fmt: str, out: Path, **options: Any) -> db_export.Manifest:
    """Write an export in ``fmt`` to ``out`` and return its manifest (options as for ``db.export.export_dataset``).

    Raises:
        FeedbackError: Bad filters or format (nothing is written).
    """
    with session_scope(engine, write=False) as session:
        return db_export.export_dataset(session, fmt, out, **options)


def model_version_rows(engine: Any) -> list[dict[str, Any]]:
    """The model versions recorded in the store, as table rows (metrics cut to 200 characters)."""
    with session_scope(engine, write=False) as session:
        return [
            {"stage": m.stage, "name": m.name, "active": "✅" if m.active else "", "parent": m.parent,
             "created": m.created_at, "activated": m.activated_at, "metrics": json.dumps(m.metrics)[:200]}
            for m in repository.list_model_versions(session)
        ]
