"""Repository functions over a session: save what the engine produced, record what reviewers decided, query it.

Every function takes an open :class:`~sqlalchemy.orm.Session` as its first argument and leaves committing to the
caller (normally :func:`db.session.session_scope`), so a page can group several calls in one transaction. Input is
validated completely before anything is added to the session: a :class:`~db.errors.FeedbackError` means nothing
was written. One module per job: :mod:`~db.repository.analyses` (notes, analyses), :mod:`~db.repository.decisions`
(entity and code decisions), :mod:`~db.repository.summaries`, :mod:`~db.repository.queries` (read-only views),
:mod:`~db.repository.registry` (model versions), :mod:`~db.repository.filters` (which decisions a query selects),
:mod:`~db.repository.review` (the "fully reviewed" mark, who decided what) and :mod:`~db.repository.conflicts`
(agreement, conflict and adjudication between reviewers).
"""

from db.repository.analyses import (
    get_analysis,
    latest_decisions,
    list_analyses,
    list_suggestions,
    save_analysis,
    save_note,
)
from db.repository.decisions import add_missed_entity, record_decision
from db.repository.filters import ExportFilters
from db.repository.queries import DecisionView, count_rows, list_decisions, list_sentence_decisions
from db.repository.registry import (
    activate_model_version,
    active_model_version,
    list_model_versions,
    register_model_version,
)
from db.repository.review import NoteReview, ReviewItem, note_review, set_fully_reviewed
from db.repository.summaries import record_sentence_decision, save_summary
from db.repository.validation import (
    ALL_DECISIONS,
    ENTITY_DECISIONS,
    ICD10CM_CODE,
    SENTENCE_DECISIONS,
    TARGETS,
    sha256_text,
    to_utc_naive,
)

__all__ = [
    "ALL_DECISIONS",
    "ENTITY_DECISIONS",
    "ICD10CM_CODE",
    "SENTENCE_DECISIONS",
    "TARGETS",
    "DecisionView",
    "ExportFilters",
    "NoteReview",
    "ReviewItem",
    "activate_model_version",
    "active_model_version",
    "add_missed_entity",
    "count_rows",
    "get_analysis",
    "latest_decisions",
    "list_analyses",
    "list_decisions",
    "list_model_versions",
    "list_sentence_decisions",
    "list_suggestions",
    "note_review",
    "record_decision",
    "record_sentence_decision",
    "register_model_version",
    "save_analysis",
    "save_note",
    "save_summary",
    "set_fully_reviewed",
    "sha256_text",
    "to_utc_naive",
]
