"""Import a ``jsonl`` export back: every span checked against its text, decisions kept with their reviewer, time,
comment and model version, so exporting the imported data gives the same records (ids aside)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.models import Analysis, AuditLog, Decision, Suggestion, utcnow
from db.repository import ALL_DECISIONS, ICD10CM_CODE, save_analysis, save_note
from db.repository.conflicts import ROLES
from engine.types import LABELS


def read_jsonl(path: Path | str | IO[str]) -> Iterator[dict[str, Any]]:
    """Read a ``jsonl`` export, checking every entity, decision span and gold span against the text.

    Raises:
        FeedbackError: ``bad_input`` naming the line for invalid JSON or a span whose text differs.
    """
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(Path(path).open(encoding="utf-8")) if isinstance(path, str | Path) else path
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record["text"]
                for e in [*record["entities"], *record["gold"], *(record.get("silver") or [])]:
                    if text[e["start"] : e["end"]] != e["text"]:
                        raise ValueError(f"span [{e['start']}, {e['end']}) text differs from the note")
            except (ValueError, KeyError, TypeError) as exc:
                raise FeedbackError(FeedbackCode.BAD_INPUT, f"line {number}: {exc}") from exc
            yield record


@dataclass(slots=True)
class ImportReport:
    """What :func:`import_jsonl` stored."""

    documents: int = 0
    suggestions: int = 0
    decisions: int = 0


def import_jsonl(session: Session, path: Path | str | IO[str]) -> ImportReport:
    """Load a ``jsonl`` export into this database: notes, analyses, suggestions and decisions (with audit rows).

    Decisions keep their reviewer, time, comment and model version, so exporting the imported data gives the
    same records (ids aside). Each decision is validated as :func:`db.repository.record_decision` would.

    Raises:
        FeedbackError: For a line that does not read back or a decision that would be refused.
    """
    report = ImportReport()
    for record in read_jsonl(path):
        note = save_note(session, record["text"], record.get("source"))
        model_entities = [e for e in record["entities"] if e.get("origin", "model") == "model"]
        keys = ("start", "end", "text", "label", "score", "assertion", "traits", "trigger", "section", "codes")
        result = {
            "id": record.get("id"),
            "entities": [{k: e[k] for k in keys} for e in model_entities],
            "models": record.get("models") or {},
            "timings_ms": record.get("timings_ms") or {},
        }
        analysis = save_analysis(session, note, result)
        if record.get("created_at"):
            analysis.created_at = datetime.fromisoformat(record["created_at"])
        review = record.get("review") or {}
        if review.get("reviewed_at"):
            analysis.reviewed_by = str(review.get("reviewed_by") or "")
            analysis.reviewed_at = datetime.fromisoformat(review["reviewed_at"])
        suggestions = iter(analysis.suggestions)
        position = len(model_entities)
        for entity in record["entities"]:
            if entity.get("origin", "model") == "model":
                suggestion = next(suggestions)
            else:
                suggestion = Suggestion(
                    analysis=analysis,
                    position=position,
                    origin=entity["origin"],
                    **{k: entity[k] for k in keys},
                )
                position += 1
                session.add(suggestion)
                session.flush()
            report.suggestions += 1
            for d in entity["decisions"]:
                _import_decision(session, analysis, suggestion, d)
                report.decisions += 1
        report.documents += 1
    session.flush()
    return report


def _import_decision(session: Session, analysis: Analysis, suggestion: Suggestion, d: dict[str, Any]) -> None:
    text = analysis.note.text
    if d["decision"] not in ALL_DECISIONS or d["target"] not in ("entity", "code"):
        raise FeedbackError(FeedbackCode.BAD_DECISION, f"decision {d['decision']!r}/{d['target']!r} is unknown")
    if not str(d.get("reviewer") or "").strip():
        raise FeedbackError(FeedbackCode.EMPTY_REVIEWER, f"decision {d.get('id')} has no reviewer")
    if d["corrected_label"] is not None and d["corrected_label"] not in LABELS:
        raise FeedbackError(FeedbackCode.BAD_LABEL, f"decision {d.get('id')}: label {d['corrected_label']!r}")
    if d["corrected_start"] is not None and not 0 <= d["corrected_start"] < d["corrected_end"] <= len(text):
        raise FeedbackError(FeedbackCode.BAD_SPAN, f"decision {d.get('id')}: corrected span outside the note")
    if d.get("role", "reviewer") not in ROLES:
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"decision {d.get('id')}: role {d.get('role')!r}")
    for key in ("code", "corrected_code"):
        if d[key] is not None and not ICD10CM_CODE.match(d[key]):
            raise FeedbackError(FeedbackCode.BAD_CODE, f"decision {d.get('id')}: {key} {d[key]!r}")
    row = Decision(
        suggestion_id=suggestion.id,
        analysis_id=analysis.id,
        target=d["target"],
        decision=d["decision"],
        code=d["code"],
        corrected_start=d["corrected_start"],
        corrected_end=d["corrected_end"],
        corrected_label=d["corrected_label"],
        corrected_code=d["corrected_code"],
        reviewer=d["reviewer"],
        comment=d["comment"],
        model_version=d["model_version"],
        created_at=datetime.fromisoformat(d["created_at"]),
        role=d.get("role", "reviewer"),
    )
    session.add(row)
    session.flush()
    payload = {k: v for k, v in d.items() if k != "id"}
    payload.update(imported_from=d.get("id"), suggestion_id=suggestion.id, analysis_id=analysis.id)
    session.add(AuditLog(kind="decision", ref_id=row.id, actor=d["reviewer"], payload=payload, created_at=utcnow()))
