"""Summary records for the ``summary_jsonl`` export: each summary sentence with its keep/drop decisions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.export.manifest import split_of
from db.export.options import ExportOptions
from db.export.selection import keyset_ids, pages
from db.models import Note, SentenceDecision, Summary, SummarySentenceRow
from db.repository import ExportFilters
from db.repository.validation import sha256_text


def _summary_ids(session: Session, conditions: list[Any], batch: int) -> Iterator[int]:
    def fetch(after: int, limit: int) -> list[int]:
        stmt = (
            select(SentenceDecision.summary_id)
            .where(SentenceDecision.summary_id > after, *conditions)
            .group_by(SentenceDecision.summary_id)
            .order_by(SentenceDecision.summary_id)
            .limit(limit)
        )
        return list(session.scalars(stmt))

    return keyset_ids(fetch, batch)


def _page_sentences(session: Session, page: list[int], conditions: list[Any]) -> dict[int, list[dict[str, Any]]]:
    """The sentences of the page's summaries in note order, each with its selected decisions and newest label."""
    sentences: dict[int, list[dict[str, Any]]] = defaultdict(list)
    by_id: dict[int, dict[str, Any]] = {}
    for s in session.execute(
        select(
            SummarySentenceRow.id,
            SummarySentenceRow.summary_id,
            SummarySentenceRow.start,
            SummarySentenceRow.end,
            SummarySentenceRow.text,
            SummarySentenceRow.score,
            SummarySentenceRow.rank,
        )
        .where(SummarySentenceRow.summary_id.in_(page))
        .order_by(SummarySentenceRow.summary_id, SummarySentenceRow.start, SummarySentenceRow.id)
    ):
        row = {
            "sentence_id": s.id,
            "start": s.start,
            "end": s.end,
            "text": s.text,
            "score": s.score,
            "rank": s.rank,
            "label": None,
            "decisions": [],
        }
        sentences[s.summary_id].append(row)
        by_id[s.id] = row
    for d in session.execute(
        select(
            SentenceDecision.id,
            SentenceDecision.sentence_id,
            SentenceDecision.decision,
            SentenceDecision.reviewer,
            SentenceDecision.comment,
            SentenceDecision.model_version,
            SentenceDecision.created_at,
        )
        .where(SentenceDecision.summary_id.in_(page), *conditions)
        .order_by(SentenceDecision.id)
        .execution_options(yield_per=2000)
    ):
        row = by_id[d.sentence_id]
        row["label"] = d.decision
        row["decisions"].append(
            {
                "id": d.id,
                "decision": d.decision,
                "reviewer": d.reviewer,
                "comment": d.comment,
                "model_version": d.model_version,
                "created_at": d.created_at.isoformat(),
            }
        )
    return sentences


def iter_summaries(
    session: Session, filters: ExportFilters | None = None, options: ExportOptions | None = None
) -> Iterator[dict[str, Any]]:
    """Yield one record per summary with selected sentence decisions; each sentence's ``label`` is the newest
    selected decision (``keep``/``drop``), ``None`` when it has none.

    Args:
        session: An open session.
        filters: Which sentence decisions to select (no ``label``; ``decision`` is keep/drop).
        options: Split, paging and text options (:class:`~db.export.options.ExportOptions`; ``batch`` counts
            summaries; ``include_silver`` and ``conflicts`` do not apply). As for documents, a note stored with its
            original text is redacted here (sentences mapped onto the redacted text) unless ``deidentify`` is
            False; notes kept without text (``store_text=none``) are left out.
    """
    opts = options or ExportOptions()
    conditions = (filters or ExportFilters()).sentence_conditions()
    for page in pages(_summary_ids(session, conditions, opts.batch), opts.batch):
        heads = {
            r.id: r
            for r in session.execute(
                select(Summary.id, Summary.external_id, Summary.model_version, Note.text, Note.sha256, Note.source)
                .join(Note, Note.id == Summary.note_id)
                .where(Summary.id.in_(page))
            )
        }
        sentences = _page_sentences(session, page, conditions)
        for summary_id in page:
            head = heads[summary_id]
            text, rows = head.text, sentences.pop(summary_id, [])
            if not text:
                continue
            original = sha256_text(text) == head.sha256
            if opts.deidentify and original:
                text, rows = _redacted_sentences(text, head.sha256, rows)
            yield {
                "id": head.external_id if head.external_id is not None else f"summary-{summary_id}",
                "summary_id": summary_id,
                "note_sha256": head.sha256,
                "source": head.source,
                "model_version": head.model_version,
                "split": split_of(head.sha256, opts.split, opts.seed),
                "text": text,
                "deidentified": text is not head.text or not original,
                "sentences": rows,
            }


def _redacted_sentences(text: str, digest: str, rows: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The note de-identified at export, each sentence's span and text mapped onto it."""
    from engine.deid.export import default_deidentifier
    from engine.deid.offsets import map_entities

    result = default_deidentifier().deidentify(text, note_id=digest)
    return result.text, map_entities(result.offsets, rows)
