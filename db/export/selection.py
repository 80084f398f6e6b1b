"""Which documents an export holds and what their gold is: keyset pages of analyses with selected decisions.

Reads in batches (keyset pages of analyses, ``yield_per`` inside a page), so the memory needed does not grow with
the number of decisions. By default only notes marked *fully reviewed* are exported (``status='gold'``); with
``include_silver`` the others come too (``status='silver'``), each span saying whether it is ``gold`` (a reviewer
decided) or ``silver`` (the model's, undecided). Notes whose reviewers disagree on an item no adjudicator resolved
are left out (``conflicts='exclude'``) or exported with their ``conflicts`` listed (``'flag'``). What an entity
becomes: :mod:`db.export.gold`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from db.export.gold import entity_gold
from db.export.manifest import split_of
from db.export.options import ExportOptions
from db.models import Analysis, Decision, Note, Suggestion
from db.repository import ExportFilters
from engine.deid.offsets import map_entities

ENTITY_COLUMNS = (
    Suggestion.start,
    Suggestion.end,
    Suggestion.text,
    Suggestion.label,
    Suggestion.score,
    Suggestion.assertion,
    Suggestion.traits,
    Suggestion.trigger,
    Suggestion.section,
    Suggestion.codes,
    Suggestion.id.label("suggestion_id"),
    Suggestion.origin,
    Suggestion.analysis_id,
)
DECISION_COLUMNS = (
    Decision.id,
    Decision.suggestion_id,
    Decision.target,
    Decision.decision,
    Decision.code,
    Decision.corrected_start,
    Decision.corrected_end,
    Decision.corrected_label,
    Decision.corrected_code,
    Decision.reviewer,
    Decision.comment,
    Decision.model_version,
    Decision.created_at,
    Decision.role,
)


def pages(ids: Iterator[int], size: int) -> Iterator[list[int]]:
    """``ids`` in lists of ``size`` (the last one shorter)."""
    page: list[int] = []
    for value in ids:
        page.append(value)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def keyset_ids(fetch: Callable[[int, int], list[int]], batch: int) -> Iterator[int]:
    """Ascending ids from ``fetch(after, limit)`` pages, each starting after the last id of the one before."""
    last = 0
    while True:
        ids = fetch(last, batch)
        if not ids:
            return
        yield from ids
        last = ids[-1]


def _matching_analysis_ids(
    session: Session, filters: ExportFilters, batch: int, include_silver: bool
) -> Iterator[int]:
    """Analysis ids with at least one selected decision (only fully reviewed ones unless ``include_silver``),
    plus, when no filter is set, fully reviewed analyses without any decision; ascending, in keyset pages."""
    conditions = filters.decision_conditions()
    unfiltered = filters == ExportFilters()

    def fetch(after: int, limit: int) -> list[int]:
        decided = select(Decision.analysis_id.label("aid")).where(Decision.analysis_id > after, *conditions)
        if filters.joins_suggestion:
            decided = decided.join(Suggestion, Suggestion.id == Decision.suggestion_id)
        if not include_silver:
            decided = decided.join(Analysis, Analysis.id == Decision.analysis_id).where(
                Analysis.reviewed_at.is_not(None))
        if unfiltered:
            marked = select(Analysis.id.label("aid")).where(Analysis.id > after, Analysis.reviewed_at.is_not(None))
            both = union(decided, marked).subquery()
            stmt = select(both.c.aid).order_by(both.c.aid).limit(limit)
        else:
            stmt = decided.group_by(Decision.analysis_id).order_by(Decision.analysis_id).limit(limit)
        return list(session.scalars(stmt))

    return keyset_ids(fetch, batch)


def _page_heads(session: Session, page: list[int]) -> dict[int, Any]:
    stmt = (
        select(
            Analysis.id,
            Analysis.result["deid"]["store_text"].as_string().label("store_text"),
            Analysis.external_id,
            Analysis.models,
            Analysis.timings_ms,
            Analysis.created_at,
            Analysis.reviewed_by,
            Analysis.reviewed_at,
            Note.text,
            Note.sha256,
            Note.source,
        )
        .join(Note, Note.id == Analysis.note_id)
        .where(Analysis.id.in_(page))
    )
    return {row.id: row for row in session.execute(stmt)}


def _page_entities(
    session: Session, page: list[int], filters: ExportFilters, conditions: list[Any]
) -> dict[int, list[dict[str, Any]]]:
    """Every entity of the page's analyses, each with its selected decisions (oldest first)."""
    entities: dict[int, list[dict[str, Any]]] = defaultdict(list)
    by_suggestion: dict[int, dict[str, Any]] = {}
    stmt = (
        select(*ENTITY_COLUMNS)
        .where(Suggestion.analysis_id.in_(page))
        .order_by(Suggestion.analysis_id, Suggestion.position, Suggestion.id)
        .execution_options(yield_per=1000)
    )
    conn = session.connection()
    keys = tuple(c.key for c in ENTITY_COLUMNS)
    for row in conn.execute(stmt):
        # Core rows unpacked by position: this loop runs once per entity, so it is kept lean.
        entity = dict(zip(keys, row, strict=True))
        analysis_id = entity.pop("analysis_id")
        entity["traits"] = list(entity["traits"] or [])
        entity["codes"] = list(entity["codes"] or [])
        entity["decisions"] = []
        entities[analysis_id].append(entity)
        by_suggestion[entity["suggestion_id"]] = entity
    stmt = select(*DECISION_COLUMNS).where(Decision.analysis_id.in_(page), *conditions)
    if filters.joins_suggestion:
        stmt = stmt.join(Suggestion, Suggestion.id == Decision.suggestion_id)
    stmt = stmt.order_by(Decision.analysis_id, Decision.id).execution_options(yield_per=2000)
    dkeys = tuple(c.key for c in DECISION_COLUMNS)
    for row in conn.execute(stmt):
        d = dict(zip(dkeys, row, strict=True))
        d["created_at"] = d["created_at"].isoformat()
        by_suggestion[d.pop("suggestion_id")]["decisions"].append(d)
    return entities


def iter_documents(
    session: Session,
    filters: ExportFilters | None = None,
    options: ExportOptions | None = None,
    *,
    tally: dict[str, list[int]] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one export record per selected analysis, in analysis order (see the module doc for which).

    A record is the contract's analysis shape plus ``text``, ``decisions`` on every entity, reviewer-added
    entities, ``gold`` (the entities after review, each with its ``source`` and ``resolution``;
    :mod:`db.export.gold`), ``status`` (``gold`` for a note marked fully reviewed, else ``silver``),
    ``silver`` (undecided model spans of a note not fully reviewed, with ``include_silver``), ``review`` (who
    marked it, when), ``conflicts`` (unresolved ones) and ``store_text`` (how the note was kept).

    Exports are de-identified by default: a note stored de-identified is exported as stored; a note stored
    ``original`` (or before ``store_text`` existed) is redacted here, its entities, gold and corrected spans
    mapped onto the redacted text, so every exported span still equals its text. Notes stored with
    ``store_text=none`` kept no text and are left out.

    Args:
        session: An open session (read-only work: ``session_scope(engine, write=False)``).
        filters: Which decisions to select.
        options: Split, paging, text and review options (:class:`~db.export.options.ExportOptions`).
        tally: Filled with the analysis ids exported as ``gold``/``silver`` and those with conflicts
            (``conflict_flagged``/``conflict_excluded``), for the manifest.
    """
    opts = options or ExportOptions()
    filters = filters or ExportFilters()
    conditions = filters.decision_conditions()
    tally = tally if tally is not None else {}
    for key in ("gold", "silver", "conflict_flagged", "conflict_excluded"):
        tally.setdefault(key, [])
    for page in pages(_matching_analysis_ids(session, filters, 1000, opts.include_silver), opts.batch):
        heads = _page_heads(session, page)
        entities = _page_entities(session, page, filters, conditions)
        for analysis_id in page:
            head = heads[analysis_id]
            ents = entities.pop(analysis_id, [])
            if head.store_text == "none" or not head.text:
                continue
            reviewed = head.reviewed_at is not None
            gold, silver, open_conflicts = _after_review(ents, head.text, reviewed, opts.include_silver)
            if open_conflicts:
                tally["conflict_excluded" if opts.conflicts == "exclude" else "conflict_flagged"].append(analysis_id)
                if opts.conflicts == "exclude":
                    continue
            status = "gold" if reviewed else "silver"
            tally[status].append(analysis_id)
            text, store_text = head.text, head.store_text or "original"
            if opts.deidentify and store_text == "original":
                text, ents, gold, silver = _redacted(head.text, head.sha256, ents, gold, silver)
            yield {**_head_fields(head, analysis_id), "split": split_of(head.sha256, opts.split, opts.seed),
                   "text": text,
                   "store_text": store_text, "deidentified": store_text == "deidentified" or text is not head.text,
                   "entities": ents, "models": head.models, "timings_ms": head.timings_ms, "gold": gold,
                   "silver": silver, "status": status, "review": _review_fields(head), "conflicts": open_conflicts}


def _head_fields(head: Any, analysis_id: int) -> dict[str, Any]:
    """A record's identity fields, in the export's key order."""
    return {"id": head.external_id if head.external_id is not None else f"analysis-{analysis_id}",
            "analysis_id": analysis_id, "note_sha256": head.sha256, "source": head.source,
            "created_at": head.created_at.isoformat()}


def _review_fields(head: Any) -> dict[str, Any]:
    """Who marked the note fully reviewed and when (both ``None`` while it is not)."""
    return {"reviewed_by": head.reviewed_by,
            "reviewed_at": None if head.reviewed_at is None else head.reviewed_at.isoformat()}


def _after_review(ents: list[dict[str, Any]], text: str, reviewed: bool, include_silver: bool
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """A record's gold spans, silver spans (each sorted) and unresolved conflicts (:mod:`db.export.gold`)."""
    gold: list[dict[str, Any]] = []
    silver: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    for e in ents:
        span, found = entity_gold(e, text, reviewed=reviewed, silver=include_silver)
        conflicts += found
        if span is not None:
            (gold if span["source"] == "gold" else silver).append(span)
    gold.sort(key=lambda g: (g["start"], g["end"], g["label"]))
    silver.sort(key=lambda g: (g["start"], g["end"], g["label"]))
    return gold, silver, conflicts


def _redacted(text: str, digest: str, ents: list[dict[str, Any]], gold: list[dict[str, Any]],
              silver: list[dict[str, Any]]
              ) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The note de-identified at export, with entities, their corrected spans, gold and silver mapped onto it."""
    from engine.deid.export import default_deidentifier

    result = default_deidentifier().deidentify(text, note_id=digest)
    omap = result.offsets
    mapped = map_entities(omap, ents)
    for entity in mapped:
        for d in entity["decisions"]:
            if d.get("corrected_start") is not None and d.get("corrected_end") is not None:
                d["corrected_start"], d["corrected_end"] = omap.map_span(d["corrected_start"], d["corrected_end"])
    return result.text, mapped, map_entities(omap, gold), map_entities(omap, silver)
