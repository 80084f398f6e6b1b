"""Where the feedback store lives: SQLite under ``db/`` by default, any SQLAlchemy URL by one setting."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DB_DIR = Path(__file__).resolve().parent
DEFAULT_SQLITE_PATH = DB_DIR / "clinical_nlp.sqlite"
ENV_URL = "CLINICAL_NLP_DB_URL"
ENV_ADJUDICATORS = "CLINICAL_NLP_ADJUDICATORS"


def default_url() -> str:
    """The URL used when nothing is configured: ``$CLINICAL_NLP_DB_URL`` or the SQLite file under ``db/``."""
    return os.environ.get(ENV_URL) or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def adjudicators() -> frozenset[str]:
    """Reviewer names allowed to adjudicate conflicts: ``$CLINICAL_NLP_ADJUDICATORS``, comma-separated (none by
    default). Read on every call, so a change needs no restart; each decision stores the role it was made in."""
    return frozenset(n.strip() for n in os.environ.get(ENV_ADJUDICATORS, "").split(",") if n.strip())


@dataclass(frozen=True, slots=True)
class DbSettings:
    """Database settings.

    Attributes:
        url: A SQLAlchemy URL, e.g. ``sqlite:////abs/path.sqlite`` or ``postgresql+psycopg://user@host/db``.
        busy_timeout_ms: How long a SQLite writer waits for the write lock before giving up.
        echo: Log every SQL statement (debugging only).
    """

    url: str = field(default_factory=default_url)
    busy_timeout_ms: int = 30_000
    echo: bool = False

    @property
    def is_sqlite(self) -> bool:
        """Whether :attr:`url` names a SQLite database."""
        return self.url.startswith("sqlite")
