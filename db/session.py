"""Engines, schema migrations and transactional sessions.

SQLite is opened in WAL mode with foreign keys on and a busy timeout. Its transactions start with
``BEGIN IMMEDIATE`` by default: a writer takes the write lock before it reads, so concurrent writers wait for each
other (up to the busy timeout) instead of failing with "database is locked" when a read transaction tries to
upgrade. Read-only work (exports, history) can use ``session_scope(engine, write=False)`` to take no lock at all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from db.settings import DbSettings

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"
_BEGIN_MODES = {"IMMEDIATE": "BEGIN IMMEDIATE", "DEFERRED": "BEGIN DEFERRED", "EXCLUSIVE": "BEGIN EXCLUSIVE"}
_MIGRATION_LOCK_KEY = 724_118_066
"""PostgreSQL advisory lock id that serialises concurrent ``init_db`` calls."""

_engines: dict[str, Engine] = {}
_initialised: set[str] = set()
_lock = threading.Lock()


def _install_sqlite_events(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Take transaction control away from the sqlite3 module so "begin" below decides how a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(_BEGIN_MODES[mode])


def get_engine(url: str | None = None, settings: DbSettings | None = None) -> Engine:
    """Return the engine for a URL, created once per process and URL.

    Args:
        url: A SQLAlchemy URL; default :class:`DbSettings` ``.url`` (``$CLINICAL_NLP_DB_URL`` or ``db/*.sqlite``).
        settings: Other settings (busy timeout, echo); ``url`` wins over ``settings.url``.

    Returns:
        A cached :class:`~sqlalchemy.Engine`.
    """
    settings = settings or DbSettings()
    url = url or settings.url
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url,
                echo=settings.echo,
                connect_args={"timeout": settings.busy_timeout_ms / 1000, "check_same_thread": False},
            )
            _install_sqlite_events(engine, settings.busy_timeout_ms)
        else:
            engine = create_engine(url, echo=settings.echo, pool_pre_ping=True)
        _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine's connections (tests; before forking)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _initialised.clear()


def init_db(url: str | None = None) -> Engine:
    """Bring the schema to the newest Alembic revision and return the engine.

    Idempotent, and safe when several processes start at once: on SQLite the upgrade runs inside one
    ``BEGIN IMMEDIATE`` transaction (SQLite DDL is transactional), on PostgreSQL under an advisory lock, so a
    second process waits and then finds the schema current.

    Args:
        url: A SQLAlchemy URL (default as in :func:`get_engine`).

    Returns:
        The engine, ready to use.
    """
    from alembic import command
    from alembic.config import Config

    engine = get_engine(url)
    key = engine.url.render_as_string(hide_password=False)
    if key in _initialised:
        return engine
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(ALEMBIC_INI.parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", key.replace("%", "%%"))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with _lock:
        _initialised.add(key)
    return engine


@contextmanager
def session_scope(engine: Engine | None = None, *, write: bool = True) -> Iterator[Session]:
    """A session in one transaction: committed when the block ends, rolled back if it raises.

    Objects stay usable after the block (``expire_on_commit=False``), so a page can show what it saved.

    Args:
        engine: The engine (default :func:`get_engine` ``()``).
        write: On SQLite, ``False`` starts a deferred (lock-free, snapshot) transaction for read-only work.

    Yields:
        The session.
    """
    engine = engine or get_engine()
    bind = engine if write else engine.execution_options(sqlite_begin="DEFERRED")
    session = Session(bind=bind, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
