"""The database's ``model_versions`` table as a mirror of the model registry (stage ``model_set``), for reporting.

Activation and rollback write the registry (:mod:`engine.versions`), the source of truth; the app syncs this
mirror after every change it makes.
"""

from __future__ import annotations

from typing import Any

from db.repository import activate_model_version, list_model_versions, register_model_version
from db.session import session_scope
from engine import versions
from engine.settings import Settings

MIRROR_STAGE = "model_set"


def sync_db_mirror(db_engine: Any, settings: Settings | None = None, actor: str = "app") -> int:
    """Mirror the registry into the database's ``model_versions`` (stage ``model_set``); returns rows added.

    The registry stays the source of truth: rows are only added (never edited) and the active flag follows it.
    """
    settings = settings or Settings()
    active = versions.active_version(settings)
    added = 0
    with session_scope(db_engine) as session:
        rows = {row.name: row for row in list_model_versions(session, MIRROR_STAGE)}
        for info in versions.list_versions(settings):
            if info.id not in rows:
                rows[info.id] = register_model_version(
                    session, name=info.id, stage=MIRROR_STAGE, path=str(versions.version_model_dir(settings, info.id)),
                    metrics=info.metrics, parent=info.parent, data_hash=info.data_hash,
                    config={"status": info.status, "stages": info.stages, "gate": info.gate,
                            "training": info.training_config},
                    actor=actor,
                )
                added += 1
        target = rows.get(active)
        if target is not None and not target.active:
            activate_model_version(session, target.id, actor=actor)
    return added
