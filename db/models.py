"""ORM models of the feedback store (SQLAlchemy 2.0 typed mappings).

Timestamps are naive UTC datetimes (``utcnow()``), so SQLite and PostgreSQL compare them the same way.
The schema itself is created by the Alembic migrations in ``db/migrations``; these classes only describe it.
``audit_log`` is append-only: the migration adds triggers that refuse UPDATE and DELETE on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Named constraints, so batch-mode migrations on SQLite can find and alter them later."""


def utcnow() -> datetime:
    """The current time as a naive UTC datetime (the store's one time convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING)


class Note(Base):
    """A clinical note, stored once per distinct text (``sha256`` of its UTF-8 bytes)."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    analyses: Mapped[list[Analysis]] = relationship(back_populates="note", passive_deletes=True)


class Analysis(Base):
    """One run of the engine on a note: its model versions, timings and the full result JSON."""

    __tablename__ = "analyses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(500))
    """The ``id`` given to the engine (the contract's result ``id``), if any."""
    models: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timings_ms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    ner_version: Mapped[str | None] = mapped_column(String(200), index=True)
    icd_version: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    """Who marked the note (as this analysis shows it) fully reviewed; ``None`` while it is not."""
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    """When it was marked fully reviewed: only such notes are exported as gold by default."""

    note: Mapped[Note] = relationship(back_populates="analyses")
    suggestions: Mapped[list[Suggestion]] = relationship(
        back_populates="analysis", order_by="Suggestion.id", passive_deletes=True
    )


class Suggestion(Base):
    """One entity of an analysis (``origin='model'``) or one a reviewer added (``origin='reviewer'``)."""

    __tablename__ = "suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    analysis_id: Mapped[int] = mapped_column(ForeignKey("analyses.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    """Index of the entity in the result's ``entities`` list (reviewer-added ones come after)."""
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(16), index=True)
    score: Mapped[float | None] = mapped_column(Float)
    assertion: Mapped[str | None] = mapped_column(String(32))
    traits: Mapped[list[Any]] = mapped_column(JSON, default=list)
    trigger: Mapped[str | None] = mapped_column(Text)
    section: Mapped[str | None] = mapped_column(String(200))
    codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    origin: Mapped[str] = mapped_column(String(16), default="model")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    analysis: Mapped[Analysis] = relationship(back_populates="suggestions")
    decisions: Mapped[list[Decision]] = relationship(
        back_populates="suggestion", order_by="Decision.id", passive_deletes=True
    )

    def to_entity(self) -> dict[str, Any]:
        """The suggestion as the contract's entity object."""
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "label": self.label,
            "score": self.score,
            "assertion": self.assertion,
            "traits": list(self.traits or []),
            "trigger": self.trigger,
            "section": self.section,
            "codes": list(self.codes or []),
        }


class Decision(Base):
    """A reviewer's decision on an entity or on one of its codes.

    ``decision`` is ``accept``, ``reject`` or ``correct`` (with the corrected span, label or code), or ``add`` for
    an entity the model missed (the suggestion then has ``origin='reviewer'``).
    """

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_created_at_id", "created_at", "id"),
        Index("ix_decisions_analysis_id_id", "analysis_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    suggestion_id: Mapped[int] = mapped_column(ForeignKey("suggestions.id", ondelete="CASCADE"), index=True)
    analysis_id: Mapped[int] = mapped_column(ForeignKey("analyses.id", ondelete="CASCADE"))
    """Denormalised from the suggestion so exports can filter and group without a join."""
    target: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(16), index=True)
    code: Mapped[str | None] = mapped_column(String(16))
    """For ``target='code'``: the suggested code the decision is about."""
    corrected_start: Mapped[int | None] = mapped_column(Integer)
    corrected_end: Mapped[int | None] = mapped_column(Integer)
    corrected_label: Mapped[str | None] = mapped_column(String(16))
    corrected_code: Mapped[str | None] = mapped_column(String(16))
    reviewer: Mapped[str] = mapped_column(String(200), index=True)
    comment: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    role: Mapped[str] = mapped_column(String(16), default="reviewer", server_default="reviewer")
    """``reviewer``, or ``adjudicator`` for a decision that resolves a conflict between reviewers."""

    suggestion: Mapped[Suggestion] = relationship(back_populates="decisions")

    def to_dict(self) -> dict[str, Any]:
        """The decision as exported (timestamps in ISO 8601, UTC)."""
        return {
            "id": self.id,
            "target": self.target,
            "decision": self.decision,
            "code": self.code,
            "corrected_start": self.corrected_start,
            "corrected_end": self.corrected_end,
            "corrected_label": self.corrected_label,
            "corrected_code": self.corrected_code,
            "reviewer": self.reviewer,
            "comment": self.comment,
            "model_version": self.model_version,
            "created_at": self.created_at.isoformat(),
            "role": self.role,
        }


class Summary(Base):
    """An extractive summary of a note (the contract's summary result)."""

    __tablename__ = "summaries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(500))
    model_version: Mapped[str | None] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    note: Mapped[Note] = relationship()
    sentences: Mapped[list[SummarySentenceRow]] = relationship(
        back_populates="summary", order_by="SummarySentenceRow.start", passive_deletes=True
    )


class SummarySentenceRow(Base):
    """One extracted sentence of a summary."""

    __tablename__ = "summary_sentences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    summary_id: Mapped[int] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"), index=True)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    rank: Mapped[int | None] = mapped_column(Integer)

    summary: Mapped[Summary] = relationship(back_populates="sentences")
    decisions: Mapped[list[SentenceDecision]] = relationship(
        back_populates="sentence", order_by="SentenceDecision.id", passive_deletes=True
    )


class SentenceDecision(Base):
    """A reviewer's ``keep`` or ``drop`` on a summary sentence."""

    __tablename__ = "sentence_decisions"
    __table_args__ = (Index("ix_sentence_decisions_created_at_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sentence_id: Mapped[int] = mapped_column(ForeignKey("summary_sentences.id", ondelete="CASCADE"), index=True)
    summary_id: Mapped[int] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(8))
    reviewer: Mapped[str] = mapped_column(String(200), index=True)
    comment: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    sentence: Mapped[SummarySentenceRow] = relationship(back_populates="decisions")


class ModelVersion(Base):
    """A trained model in the registry. At most one version per stage is active (a partial unique index)."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("stage", "name", name="uq_model_versions_stage_name"),
        Index(
            "uq_model_versions_active_stage",
            "stage",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(50), index=True)
    path: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parent: Mapped[str | None] = mapped_column(String(200))
    """The name of the version this one was trained from (it need not be registered)."""
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    data_hash: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime)


class AuditLog(Base):
    """Append-only record of every decision and registry change (UPDATE/DELETE refused by triggers)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_kind_ref_id", "kind", "ref_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    """``decision``, ``sentence_decision``, ``model_registered`` or ``model_activated``."""
    ref_id: Mapped[int] = mapped_column(Integer)
    """The id of the row the event created or changed (a decision, a sentence decision, a model version)."""
    actor: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class ApiKey(Base):
    """A key of the REST API (``api/``), bound to a reviewer; only the SHA-256 of the key is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    """The key's first characters, shown by ``python -m db keys list`` so a person can tell keys apart."""
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reviewer: Mapped[str] = mapped_column(String(200), index=True)
    """Decisions sent with this key are recorded under this name."""
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class ApiFeedbackRequest(Base):
    """A feedback request already applied, by the client's ``request_id``: a retried request is not stored twice."""

    __tablename__ = "api_feedback_requests"
    __table_args__ = (UniqueConstraint("api_key_id", "request_id", name="uq_api_feedback_requests_key_request"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(String(200))
    body_sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    """``decision`` or ``sentence_decision``: the table ``ref_id`` points into."""
    ref_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AnalysisStats(Base):
    """Monitoring statistics of one analysed note, without its text (``engine.monitoring.profile``).

    Written by the app, the batch job (``python -m engine monitor ingest``) and the API alike through
    ``db.stats.record_analysis``; ``analysis_id`` is set when the analysis itself is stored too.
    """

    __tablename__ = "analysis_stats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    analysis_id: Mapped[int | None] = mapped_column(ForeignKey("analyses.id", ondelete="SET NULL"), index=True)
    source: Mapped[str] = mapped_column(String(16), default="app")
    """``app``, ``batch`` or ``api``."""
    external_id: Mapped[str | None] = mapped_column(String(500))
    ner_version: Mapped[str | None] = mapped_column(String(200))
    icd_version: Mapped[str | None] = mapped_column(String(200))
    n_chars: Mapped[int] = mapped_column(Integer, default=0)
    n_words: Mapped[int] = mapped_column(Integer, default=0)
    n_entities: Mapped[int] = mapped_column(Integer, default=0)
    label_diag: Mapped[int] = mapped_column(Integer, default=0)
    label_proc: Mapped[int] = mapped_column(Integer, default=0)
    label_med: Mapped[int] = mapped_column(Integer, default=0)
    label_test: Mapped[int] = mapped_column(Integer, default=0)
    label_anat: Mapped[int] = mapped_column(Integer, default=0)
    score_sum: Mapped[float] = mapped_column(Float, default=0.0)
    n_scored: Mapped[int] = mapped_column(Integer, default=0)
    n_low_confidence: Mapped[int] = mapped_column(Integer, default=0)
    n_coded: Mapped[int] = mapped_column(Integer, default=0)
    code_score_sum: Mapped[float] = mapped_column(Float, default=0.0)
    token_entropy: Mapped[float | None] = mapped_column(Float)
    o_share: Mapped[float | None] = mapped_column(Float)
    n_tokens: Mapped[int | None] = mapped_column(Integer)
    vocab: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    """Hashed unigram counts: ``uint16`` buckets then ``uint16`` counts (``engine.monitoring.profile.pack_vocab``)."""
    profile_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    """No index on it or ``ner_version``: the monitor reads the newest rows by id (see its migration)."""


# --- code-set decisions (issue 19 item 6; migration 0004_codeset) -------------------------------------------------
class CodesetDecision(Base):
    """A coder's decision on the encounter's code set of an analysis: accept, remove, move or add one line.

    Rows of one analysis replay in ``id`` order (:func:`engine.encounter.replay`); each keeps the code set it
    started from (``suggested``: the engine's codes in order) and the one it left (``final``), so an export needs
    no engine. ``model_version`` is the analysis's ICD version, ``conventions`` the code-set builder and the
    ICD-10-CM package whose Tabular notes checked the decision.
    """

    __tablename__ = "codeset_decisions"
    __table_args__ = (Index("ix_codeset_decisions_analysis_id_id", "analysis_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    analysis_id: Mapped[int] = mapped_column(ForeignKey("analyses.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(16))
    to_sequence: Mapped[int | None] = mapped_column(Integer)
    """For ``move`` (and optionally ``add``): the line's new 1-based sequence number."""
    setting: Mapped[str] = mapped_column(String(16))
    suggested: Mapped[list[Any]] = mapped_column(JSON, default=list)
    final: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reviewer: Mapped[str] = mapped_column(String(200), index=True)
    comment: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(200))
    conventions: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    def to_dict(self) -> dict[str, Any]:
        """The decision as exported (the engine's decision form plus who, when and which versions)."""
        out: dict[str, Any] = {"id": self.id, "action": self.action, "code": self.code}
        if self.to_sequence is not None:
            out["to"] = self.to_sequence
        if self.comment:
            out["note"] = self.comment
        out.update(reviewer=self.reviewer, model_version=self.model_version, conventions=self.conventions,
                   created_at=self.created_at.isoformat(), final=list(self.final or []))
        return out
