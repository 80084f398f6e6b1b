"""The code-set section of an export: ``codesets.jsonl``, one line per analysis a coder decided a code set on.

Written beside the files of a folder export (any format but ``summary_jsonl``) when at least one code-set decision
matches the filters (``since``, ``until``, ``reviewer``, ``model_version``; ``decision`` matches the action; a
``label`` filter selects entity decisions only, so no code sets). A line::

    {"analysis_id": 3, "note_id": "dc-1", "note_sha256": "...", "split": null, "setting": "inpatient",
     "suggested": ["I21.9", "I10", "R07.9"], "final": ["I10", "I21.9"],
     "decisions": [{"id": 1, "action": "move", "code": "I10", "to": 1, "reviewer": "...", "model_version": "...",
                    "conventions": "...", "created_at": "...", "final": [...]}, ...],
     "problems": []}

``final`` is the code set after the last decision listed. ``problems`` names every stored code that is not
ICD-10-CM (:func:`db.repository.codeset.stored_code_problems`): such a record is still written, and counted
under ``codeset_unknown_codes`` in the manifest, so a bad row is reported by name, never dropped silently.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.export.manifest import Outputs, split_of
from db.models import Analysis, CodesetDecision
from db.repository.codeset import CODESET_ACTIONS, stored_code_problems
from db.repository.filters import ExportFilters

CODESET_FILE = "codesets"


def _conditions(filters: ExportFilters) -> list[Any] | None:
    """SQL conditions on :class:`CodesetDecision`, or ``None`` when the filters can match no code-set decision."""
    if filters.label is not None or (filters.decision is not None and filters.decision not in CODESET_ACTIONS):
        return None
    conditions = filters.common_conditions(CodesetDecision)
    if filters.decision is not None:
        conditions.append(CodesetDecision.action == filters.decision)
    return conditions


def iter_codesets(session: Session, filters: ExportFilters, split: float | None = None,
                  seed: int = 13) -> Iterator[dict[str, Any]]:
    """Yield one record per analysis with matching code-set decisions, in analysis id order."""
    conditions = _conditions(filters)
    if conditions is None:
        return
    stmt = (select(CodesetDecision).where(*conditions)
            .order_by(CodesetDecision.analysis_id, CodesetDecision.id).execution_options(yield_per=200))
    for analysis_id, group in groupby(session.scalars(stmt), key=lambda r: r.analysis_id):
        rows = list(group)
        analysis = session.get(Analysis, analysis_id)
        assert analysis is not None  # the foreign key cascades deletes
        yield {
            "analysis_id": analysis_id,
            "note_id": analysis.external_id,
            "note_sha256": analysis.note.sha256,
            "split": split_of(analysis.note.sha256, split, seed),
            "setting": rows[-1].setting,
            "suggested": list(rows[0].suggested or []),
            "final": list(rows[-1].final or []),
            "decisions": [r.to_dict() for r in rows],
            "problems": stored_code_problems(rows),
        }


def write_codesets(session: Session, fmt: str, out_dir: Path | None, filters: ExportFilters, counts: Counter[str],
                   split: float | None = None, seed: int = 13) -> dict[str, dict[str, Any]]:
    """Write ``codesets.jsonl`` into ``out_dir`` when code-set decisions match; its manifest entry (or nothing).

    Nothing is written for a stream export or a ``summary_jsonl`` export, or when no code-set decision matches.
    """
    if out_dir is None or fmt == "summary_jsonl":
        return {}
    outputs: Outputs | None = None
    try:
        for record in iter_codesets(session, filters, split, seed):
            if outputs is None:
                outputs = Outputs(out_dir, None, CODESET_FILE, "jsonl", None)
            counts["codesets"] += 1
            counts["codeset_decisions"] += len(record["decisions"])
            counts["codeset_unknown_codes"] += len(record["problems"])
            outputs.get(None).write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        files = outputs.close() if outputs is not None else {}
    if not counts.get("codeset_unknown_codes"):
        counts.pop("codeset_unknown_codes", None)
    return files
