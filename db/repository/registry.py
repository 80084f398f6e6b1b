"""The model registry: trained versions per stage, at most one active per stage, every change audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.models import ModelVersion, utcnow
from db.repository.validation import add_audit


def register_model_version(
    session: Session,
    *,
    name: str,
    stage: str,
    path: str,
    metrics: dict[str, Any],
    parent: str | None = None,
    data_hash: str | None,
    config: dict[str, Any],
    activate: bool = False,
    actor: str = "system",
) -> ModelVersion:
    """Register a trained model version (and optionally make it the stage's active one).

    Args:
        session: An open session.
        name: The version name (unique per stage), as in the model folder's ``config.json``.
        stage: ``ner``, ``summarizer``, ...
        path: The model folder.
        metrics: Its evaluation figures.
        parent: The version it was trained from (linked when registered in the same stage).
        data_hash: Hash of the training data.
        config: Its training configuration.
        activate: Make it the active version of its stage.
        actor: Who registered it (audit).

    Raises:
        FeedbackError: ``duplicate`` when the stage already has this name; ``bad_input`` for empty fields.
    """
    for key, value in (("name", name), ("stage", stage), ("path", path)):
        if not isinstance(value, str) or not value.strip():
            raise FeedbackError(FeedbackCode.BAD_INPUT, f"a model version needs a non-empty {key}")
    if session.scalar(select(ModelVersion.id).where(ModelVersion.stage == stage, ModelVersion.name == name)):
        raise FeedbackError(FeedbackCode.DUPLICATE, f"stage {stage!r} already has a version named {name!r}")
    parent_id = None
    if parent is not None:
        parent_id = session.scalar(
            select(ModelVersion.id).where(ModelVersion.stage == stage, ModelVersion.name == parent)
        )
    row = ModelVersion(
        name=name,
        stage=stage,
        path=str(path),
        metrics=dict(metrics or {}),
        config=dict(config or {}),
        parent=parent,
        parent_id=parent_id,
        data_hash=data_hash,
        active=False,
    )
    session.add(row)
    session.flush()
    add_audit(
        session,
        "model_registered",
        row.id,
        actor,
        {"name": name, "stage": stage, "path": str(path), "parent": parent, "data_hash": data_hash},
    )
    if activate:
        activate_model_version(session, row.id, actor=actor)
    session.flush()
    return row


def list_model_versions(session: Session, stage: str | None = None) -> list[ModelVersion]:
    """Registered versions, newest first (optionally of one stage)."""
    stmt = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    if stage is not None:
        stmt = stmt.where(ModelVersion.stage == stage)
    return list(session.scalars(stmt))


def activate_model_version(session: Session, version_id: int, *, actor: str = "system") -> ModelVersion:
    """Make a version the active one of its stage (the previous active one is deactivated).

    Raises:
        FeedbackError: ``unknown_model_version`` for an id that is not registered.
    """
    row = session.get(ModelVersion, version_id) if isinstance(version_id, int) else None
    if row is None:
        raise FeedbackError(FeedbackCode.UNKNOWN_MODEL_VERSION, f"no model version with id {version_id!r}")
    previous = active_model_version(session, row.stage)
    # Deactivate first and flush, so the one-active-per-stage unique index never sees two.
    session.execute(
        update(ModelVersion).where(ModelVersion.stage == row.stage, ModelVersion.active.is_(True)).values(active=False)
    )
    session.flush()
    row.active = True
    row.activated_at = utcnow()
    session.flush()
    add_audit(
        session,
        "model_activated",
        row.id,
        actor,
        {
            "name": row.name,
            "stage": row.stage,
            "previous": None if previous is None else previous.name,
        },
    )
    session.flush()
    return row


def active_model_version(session: Session, stage: str) -> ModelVersion | None:
    """The active version of a stage, or ``None``."""
    return session.scalar(select(ModelVersion).where(ModelVersion.stage == stage, ModelVersion.active.is_(True)))
