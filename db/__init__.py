"""Feedback store: reviewed notes, model suggestions, reviewer decisions, audit trail, model registry, exports.

The engine never imports this package; this package uses ``engine.types`` only for label and trait names.
"""

from db.errors import FeedbackCode, FeedbackError
from db.session import get_engine, init_db, session_scope
from db.settings import DbSettings

__all__ = ["DbSettings", "FeedbackCode", "FeedbackError", "get_engine", "init_db", "session_scope"]
