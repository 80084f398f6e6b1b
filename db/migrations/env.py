"""Alembic environment: uses the connection handed over by db.session.init_db, or opens one itself (CLI)."""

from __future__ import annotations

from alembic import context

from db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the given connection (init_db) or the configured URL (alembic CLI)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from db.session import get_engine

    url = config.get_main_option("sqlalchemy.url") or None
    with get_engine(url).begin() as conn:
        _run(conn)


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
