"""Export reviewed data for training and audit, streaming, with a manifest; and import the JSONL export back.

Formats:

- ``jsonl``: one line per analysis that has matching decisions, in the contract's analysis shape plus ``text``,
  ``decisions`` on every entity, reviewer-added entities, and ``gold`` (the entities after review).
- ``conll``: IOB2 tags, one token per line as ``token<TAB>start<TAB>end<TAB>tag``; a block per document.
- ``docbin``: spaCy ``DocBin`` shards (``spacy.blank("en")`` vocabulary) whose ``doc.text`` is the note exactly.
- ``brat``: BRAT standoff ``.txt``/``.ann`` pairs (traits as attributes, codes as annotator notes).
- ``summary_jsonl``: one line per summary with each sentence's keep/drop label.

Exports read in batches (keyset pages of documents, ``yield_per`` inside a page) and write as they go, so the
memory needed does not grow with the number of decisions. A ``manifest.json`` beside the files records the
filters, counts and SHA-256 of everything written. With ``split`` the documents are divided into ``train`` and
``dev`` deterministically by a hash of the note text and the seed, so one note never lands in both.

What counts as gold: for each entity, the newest of the selected entity decisions: ``accept`` keeps the span,
``correct``/``add`` give the corrected one, ``reject`` drops it; entities without a selected decision are not gold.
Codes likewise: ``accept`` keeps a code, ``reject`` removes it, ``correct`` replaces it.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.models import (
    Analysis,
    AuditLog,
    Decision,
    Note,
    SentenceDecision,
    Suggestion,
    Summary,
    SummarySentenceRow,
    utcnow,
)
from db.repository import (
    ALL_DECISIONS,
    ICD10CM_CODE,
    SENTENCE_DECISIONS,
    decision_filters,
    save_analysis,
    save_note,
    to_utc_naive,
)
from engine.types import LABELS

FORMATS = ("jsonl", "conll", "docbin", "brat", "summary_jsonl")
STREAMABLE = ("jsonl", "conll", "summary_jsonl")
SCHEMA_VERSION = 1
TOKEN = re.compile(r"\w+|[^\w\s]")
DOCBIN_SHARD = 1000
BRAT_TRAITS = {
    "negated": "Negated",
    "family": "Family",
    "hypothetical": "Hypothetical",
    "possible": "Possible",
    "historical": "Historical",
}


@dataclass(frozen=True, slots=True)
class ExportFilters:
    """Which decisions an export selects (``since`` inclusive, ``until`` exclusive, naive times UTC)."""

    since: datetime | None = None
    until: datetime | None = None
    reviewer: str | None = None
    model_version: str | None = None
    decision: str | None = None
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times in ISO 8601)."""
        out = asdict(self)
        for key in ("since", "until"):
            if out[key] is not None:
                out[key] = out[key].isoformat()
        return out


@dataclass(slots=True)
class Manifest:
    """What an export wrote: format, filters, counts and hashes."""

    format: str
    filters: dict[str, Any]
    split: float | None
    seed: int
    counts: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    sha256: str = ""
    created_at: str = field(default_factory=lambda: utcnow().isoformat())
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


# ---------------------------------------------------------------------------------------------------- writing


class _HashingWriter:
    """Writes text as UTF-8 to a binary file or a text stream, hashing and counting what it writes."""

    def __init__(self, target: IO[bytes] | IO[str], binary: bool) -> None:
        self._target = target
        self._binary = binary
        self.hash = hashlib.sha256()
        self.bytes = 0
        self.lines = 0

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.hash.update(data)
        self.bytes += len(data)
        self.lines += text.count("\n")
        if self._binary:
            self._target.write(data)  # type: ignore[arg-type]
        else:
            self._target.write(text)  # type: ignore[arg-type]

    def write_bytes(self, data: bytes) -> None:
        self.hash.update(data)
        self.bytes += len(data)
        self._target.write(data)  # type: ignore[arg-type]

    def info(self) -> dict[str, Any]:
        return {"sha256": self.hash.hexdigest(), "bytes": self.bytes, "lines": self.lines}


class _Outputs:
    """One writer per split (files ``<stem>-<split>.<ext>`` or ``<stem>.<ext>``, or the caller's stream)."""

    def __init__(self, out_dir: Path | None, stream: IO[str] | None, stem: str, ext: str, split: float | None) -> None:
        self.out_dir, self.stream, self.stem, self.ext, self.split = out_dir, stream, stem, ext, split
        self.writers: dict[str, _HashingWriter] = {}
        self._files: list[IO[bytes]] = []

    def name(self, split: str | None) -> str:
        return f"{self.stem}.{self.ext}" if split is None else f"{split}.{self.ext}"

    def get(self, split: str | None) -> _HashingWriter:
        name = "<stream>" if self.stream is not None else self.name(split)
        writer = self.writers.get(name)
        if writer is None:
            if self.stream is not None:
                writer = _HashingWriter(self.stream, binary=False)
            else:
                assert self.out_dir is not None
                handle = (self.out_dir / name).open("wb")
                self._files.append(handle)
                writer = _HashingWriter(handle, binary=True)
            self.writers[name] = writer
        return writer

    def close(self) -> dict[str, dict[str, Any]]:
        # An export that matched nothing still writes its (empty) files, so consumers find what they expect.
        if self.stream is None:
            for name in ("train", "dev") if self.split is not None else (None,):
                self.get(name)
        for handle in self._files:
            handle.close()
        return {name: w.info() for name, w in sorted(self.writers.items())}


def _combined_hash(files: dict[str, dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\t{files[name]['sha256']}\n".encode())
    return digest.hexdigest()


def split_of(note_sha256: str, split: float | None, seed: int) -> str | None:
    """``dev`` for about a ``split`` fraction of notes, else ``train``; ``None`` without a split. Deterministic."""
    if split is None:
        return None
    value = int.from_bytes(hashlib.sha256(f"{seed}:{note_sha256}".encode()).digest()[:8], "big") / 2**64
    return "dev" if value < split else "train"


# ---------------------------------------------------------------------------------------------------- reading


def _page(ids: Iterator[int], size: int) -> Iterator[list[int]]:
    page: list[int] = []
    for value in ids:
        page.append(value)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def _matching_analysis_ids(session: Session, filters: ExportFilters, batch: int) -> Iterator[int]:
    """Analysis ids with at least one selected decision, ascending, fetched in keyset pages."""
    conditions = decision_filters(**asdict(filters))
    last = 0
    while True:
        stmt = select(Decision.analysis_id).where(Decision.analysis_id > last, *conditions)
        if filters.label is not None:
            stmt = stmt.join(Suggestion, Suggestion.id == Decision.suggestion_id)
        stmt = stmt.group_by(Decision.analysis_id).order_by(Decision.analysis_id).limit(batch)
        ids = list(session.scalars(stmt))
        if not ids:
            return
        yield from ids
        last = ids[-1]


def _gold(entity: dict[str, Any], decisions: list[dict[str, Any]], text: str) -> dict[str, Any] | None:
    span: tuple[int, int, str] | None = None
    kept_codes: list[str] = []
    decided_entity = False
    for d in decisions:
        if d["target"] == "entity":
            decided_entity = True
            if d["decision"] == "accept":
                span = (entity["start"], entity["end"], entity["label"])
            elif d["decision"] == "reject":
                span = None
            else:  # correct / add
                span = (d["corrected_start"], d["corrected_end"], d["corrected_label"])
        else:
            if d["decision"] == "accept" and d["code"] not in kept_codes:
                kept_codes.append(d["code"])
            elif d["decision"] == "reject" and d["code"] in kept_codes:
                kept_codes.remove(d["code"])
            elif d["decision"] == "correct":
                if d["code"] in kept_codes:
                    kept_codes.remove(d["code"])
                if d["corrected_code"] not in kept_codes:
                    kept_codes.append(d["corrected_code"])
    if not decided_entity:
        if not kept_codes:
            return None
        span = (entity["start"], entity["end"], entity["label"])  # a code decision implies the entity stands
    if span is None:
        return None
    start, end, label = span
    return {
        "start": start,
        "end": end,
        "text": text[start:end],
        "label": label,
        "codes": kept_codes,
        "suggestion_id": entity["suggestion_id"],
    }


def iter_documents(
    session: Session,
    filters: ExportFilters | None = None,
    *,
    split: float | None = None,
    seed: int = 0,
    batch: int = 50,
) -> Iterator[dict[str, Any]]:
    """Yield one export record per analysis with selected decisions (see the module doc), in analysis order.

    Args:
        session: An open session (read-only work: ``session_scope(engine, write=False)``).
        filters: Which decisions to select.
        split: Fraction of notes for ``dev`` (``None``: no split; the record's ``split`` is then ``None``).
        seed: Seed of the split hash.
        batch: Documents fetched per page.
    """
    filters = filters or ExportFilters()
    conditions = decision_filters(**asdict(filters))
    for page in _page(_matching_analysis_ids(session, filters, 1000), batch):
        heads = {
            row.id: row
            for row in session.execute(
                select(
                    Analysis.id,
                    Analysis.external_id,
                    Analysis.models,
                    Analysis.timings_ms,
                    Analysis.created_at,
                    Note.text,
                    Note.sha256,
                    Note.source,
                )
                .join(Note, Note.id == Analysis.note_id)
                .where(Analysis.id.in_(page))
            )
        }
        entities: dict[int, list[dict[str, Any]]] = defaultdict(list)
        by_suggestion: dict[int, dict[str, Any]] = {}
        entity_columns = (
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
        stmt = (
            select(*entity_columns)
            .where(Suggestion.analysis_id.in_(page))
            .order_by(Suggestion.analysis_id, Suggestion.position, Suggestion.id)
            .execution_options(yield_per=1000)
        )
        conn = session.connection()
        keys = tuple(c.key for c in entity_columns)
        for row in conn.execute(stmt):
            # Core rows unpacked by position: this loop runs once per entity, so it is kept lean.
            entity = dict(zip(keys, row, strict=True))
            analysis_id = entity.pop("analysis_id")
            entity["traits"] = list(entity["traits"] or [])
            entity["codes"] = list(entity["codes"] or [])
            entity["decisions"] = []
            entities[analysis_id].append(entity)
            by_suggestion[entity["suggestion_id"]] = entity
        decision_columns = (
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
        )
        stmt = select(*decision_columns).where(Decision.analysis_id.in_(page), *conditions)
        if filters.label is not None:
            stmt = stmt.join(Suggestion, Suggestion.id == Decision.suggestion_id)
        stmt = stmt.order_by(Decision.analysis_id, Decision.id).execution_options(yield_per=2000)
        dkeys = tuple(c.key for c in decision_columns)
        for row in conn.execute(stmt):
            d = dict(zip(dkeys, row, strict=True))
            d["created_at"] = d["created_at"].isoformat()
            by_suggestion[d.pop("suggestion_id")]["decisions"].append(d)
        for analysis_id in page:
            head = heads[analysis_id]
            ents = entities.pop(analysis_id, [])
            gold = [g for e in ents if (g := _gold(e, e["decisions"], head.text)) is not None]
            gold.sort(key=lambda g: (g["start"], g["end"], g["label"]))
            yield {
                "id": head.external_id if head.external_id is not None else f"analysis-{analysis_id}",
                "analysis_id": analysis_id,
                "note_sha256": head.sha256,
                "source": head.source,
                "created_at": head.created_at.isoformat(),
                "split": split_of(head.sha256, split, seed),
                "text": head.text,
                "entities": ents,
                "models": head.models,
                "timings_ms": head.timings_ms,
                "gold": gold,
            }
        by_suggestion.clear()


def iter_summaries(
    session: Session,
    filters: ExportFilters | None = None,
    *,
    split: float | None = None,
    seed: int = 0,
    batch: int = 50,
) -> Iterator[dict[str, Any]]:
    """Yield one record per summary with selected sentence decisions; each sentence's ``label`` is the newest
    selected decision (``keep``/``drop``), ``None`` when it has none."""
    filters = filters or ExportFilters()
    conditions: list[Any] = []
    since, until = to_utc_naive(filters.since), to_utc_naive(filters.until)
    if since is not None:
        conditions.append(SentenceDecision.created_at >= since)
    if until is not None:
        conditions.append(SentenceDecision.created_at < until)
    if filters.reviewer is not None:
        conditions.append(SentenceDecision.reviewer == filters.reviewer)
    if filters.model_version is not None:
        conditions.append(SentenceDecision.model_version == filters.model_version)
    if filters.decision is not None:
        if filters.decision not in SENTENCE_DECISIONS:
            raise FeedbackError(FeedbackCode.BAD_DECISION, f"summary decision filter {filters.decision!r}: keep/drop")
        conditions.append(SentenceDecision.decision == filters.decision)

    def ids() -> Iterator[int]:
        last = 0
        while True:
            stmt = (
                select(SentenceDecision.summary_id)
                .where(SentenceDecision.summary_id > last, *conditions)
                .group_by(SentenceDecision.summary_id)
                .order_by(SentenceDecision.summary_id)
                .limit(batch)
            )
            page = list(session.scalars(stmt))
            if not page:
                return
            yield from page
            last = page[-1]

    for page in _page(ids(), batch):
        heads = {
            r.id: r
            for r in session.execute(
                select(Summary.id, Summary.external_id, Summary.model_version, Note.text, Note.sha256, Note.source)
                .join(Note, Note.id == Summary.note_id)
                .where(Summary.id.in_(page))
            )
        }
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
        for summary_id in page:
            head = heads[summary_id]
            yield {
                "id": head.external_id if head.external_id is not None else f"summary-{summary_id}",
                "summary_id": summary_id,
                "note_sha256": head.sha256,
                "source": head.source,
                "model_version": head.model_version,
                "split": split_of(head.sha256, split, seed),
                "text": head.text,
                "sentences": sentences.pop(summary_id, []),
            }


# ---------------------------------------------------------------------------------------------------- tokens


def tokenize(text: str, breaks: Iterable[int] = ()) -> list[tuple[int, int]]:
    """Word and punctuation tokens as ``(start, end)`` offsets, also split at every offset in ``breaks``.

    Splitting at entity boundaries guarantees every entity covers whole tokens, so IOB tags and spaCy spans
    reproduce its offsets exactly.
    """
    cuts = sorted(set(breaks))
    tokens: list[tuple[int, int]] = []
    for match in TOKEN.finditer(text):
        start, end = match.span()
        i = bisect.bisect_right(cuts, start)
        while i < len(cuts) and cuts[i] < end:
            tokens.append((start, cuts[i]))
            start = cuts[i]
            i += 1
        tokens.append((start, end))
    return tokens


def trimmed_spans(text: str, spans: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Spans with surrounding whitespace removed (token formats cannot start or end a span on whitespace), and
    how many needed it. Reviewer spans are refused with such whitespace; a model's could still carry it."""
    out, changed = [], 0
    for span in spans:
        piece = text[span["start"] : span["end"]]
        lead, trail = len(piece) - len(piece.lstrip()), len(piece) - len(piece.rstrip())
        if lead or trail:
            changed += 1
            span = {**span, "start": span["start"] + lead, "end": span["end"] - trail}
            span["text"] = text[span["start"] : span["end"]]
        if span["start"] < span["end"]:
            out.append(span)
    return out, changed


def non_overlapping(spans: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Keep spans that do not overlap an earlier kept one (by start, longest first); return them and the
    number dropped (IOB and spaCy entities cannot overlap)."""
    kept: list[dict[str, Any]] = []
    last_end = -1
    for span in sorted(spans, key=lambda s: (s["start"], -(s["end"] - s["start"]), s["label"])):
        if span["start"] >= last_end:
            kept.append(span)
            last_end = span["end"]
    return kept, len(spans) - len(kept)


def iob_tags(text: str, spans: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """``(start, end, tag)`` per token with IOB2 tags for non-overlapping ``spans``."""
    tokens = tokenize(text, [x for s in spans for x in (s["start"], s["end"])])
    tagged = []
    spans = sorted(spans, key=lambda s: s["start"])
    j = 0
    for start, end in tokens:
        while j < len(spans) and spans[j]["end"] <= start:
            j += 1
        if j < len(spans) and spans[j]["start"] <= start and end <= spans[j]["end"]:
            prefix = "B" if start == spans[j]["start"] else "I"
            tagged.append((start, end, f"{prefix}-{spans[j]['label']}"))
        else:
            tagged.append((start, end, "O"))
    return tagged


def spans_from_iob(rows: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Rebuild ``(start, end, label)`` spans from ``(start, end, tag)`` token rows (the CoNLL reader)."""
    spans: list[tuple[int, int, str]] = []
    current: list[Any] | None = None
    for start, end, tag in rows:
        if tag.startswith("B-") or (tag.startswith("I-") and (current is None or current[2] != tag[2:])):
            if current:
                spans.append(tuple(current))  # type: ignore[arg-type]
            current = [start, end, tag[2:]]
        elif tag.startswith("I-") and current is not None:
            current[1] = end
        else:
            if current:
                spans.append(tuple(current))  # type: ignore[arg-type]
            current = None
    if current:
        spans.append(tuple(current))  # type: ignore[arg-type]
    return spans


def read_conll(path_or_text: Path | str) -> dict[str, list[tuple[int, int, str]]]:
    """Read a CoNLL export back: document id to its ``(start, end, label)`` spans."""
    text = Path(path_or_text).read_text("utf-8") if isinstance(path_or_text, Path) else path_or_text
    docs: dict[str, list[tuple[int, int, str]]] = {}
    doc_id: str | None = None
    rows: list[tuple[int, int, str]] = []
    for line in text.split("\n"):
        if line.startswith("# doc_id = "):
            if doc_id is not None:
                docs[doc_id] = spans_from_iob(rows)
            doc_id, rows = line[len("# doc_id = ") :], []
        elif line and not line.startswith("#"):
            _token, start, end, tag = line.split("\t")
            rows.append((int(start), int(end), tag))
    if doc_id is not None:
        docs[doc_id] = spans_from_iob(rows)
    return docs


def spacy_doc(nlp: Any, text: str, spans: list[dict[str, Any]]) -> Any:
    """A spaCy ``Doc`` with ``doc.text == text`` exactly and ``spans`` (non-overlapping) as ``doc.ents``."""
    from spacy.tokens import Doc

    tokens = tokenize(text, [x for s in spans for x in (s["start"], s["end"])])
    words: list[str] = []
    spaces: list[bool] = []
    if tokens and tokens[0][0] > 0:
        words.append(text[: tokens[0][0]])
        spaces.append(False)
    if not tokens:
        words, spaces = [text], [False]
    for i, (start, end) in enumerate(tokens):
        words.append(text[start:end])
        gap = text[end : tokens[i + 1][0]] if i + 1 < len(tokens) else text[end:]
        if gap.startswith(" "):
            spaces.append(True)
            gap = gap[1:]
        else:
            spaces.append(False)
        if gap:
            words.append(gap)
            spaces.append(False)
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    if doc.text != text:
        raise FeedbackError(FeedbackCode.BAD_EXPORT, "spaCy doc text differs from the note (tokeniser bug)")
    ents = []
    for s in spans:
        span = doc.char_span(s["start"], s["end"], label=s["label"], alignment_mode="strict")
        if span is None:
            raise FeedbackError(FeedbackCode.BAD_EXPORT, f"span [{s['start']}, {s['end']}) misses token bounds")
        ents.append(span)
    doc.ents = ents
    return doc


def brat_fragments(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A span as BRAT fragments: BRAT cannot show an entity across a line break, so split at line breaks."""
    fragments = []
    for match in re.finditer(r"[^\n]+", text[start:end]):
        s, e = start + match.start(), start + match.end()
        frag_text = text[s:e]
        s += len(frag_text) - len(frag_text.lstrip())
        e -= len(frag_text) - len(frag_text.rstrip())
        if s < e:
            fragments.append((s, e))
    return fragments or [(start, end)]


def read_brat_ann(ann: str) -> list[tuple[int, int, str]]:
    """Entity spans ``(start, end, label)`` of a BRAT ``.ann`` (first fragment's start to last fragment's end)."""
    spans = []
    for line in ann.splitlines():
        if line.startswith("T"):
            _tid, body, _text = line.split("\t")
            label, offsets = body.split(" ", 1)
            frags = [tuple(map(int, f.split())) for f in offsets.split(";")]
            spans.append((frags[0][0], frags[-1][1], label))
    return spans


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:100]


# ---------------------------------------------------------------------------------------------------- export


def export_dataset(
    session: Session,
    fmt: str,
    out_dir: Path | str | None = None,
    *,
    stream: IO[str] | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    reviewer: str | None = None,
    model_version: str | None = None,
    decision: str | None = None,
    label: str | None = None,
    split: float | None = None,
    seed: int = 13,
    batch: int = 50,
) -> Manifest:
    """Export selected decisions in one format, streaming, and describe the export in a manifest.

    Args:
        session: An open session (use ``session_scope(engine, write=False)`` on SQLite, so writers are not held).
        fmt: ``jsonl``, ``conll``, ``docbin``, ``brat`` or ``summary_jsonl``.
        out_dir: Folder for the files and ``manifest.json`` (created).
        stream: Instead of ``out_dir``, a text stream (``jsonl``, ``conll``, ``summary_jsonl`` only); no manifest
            file is written then, the returned manifest still describes the output.
        since: Decisions at or after this time (naive = UTC; ISO strings accepted).
        until: Decisions before this time.
        reviewer: One reviewer's decisions.
        model_version: Decisions on results of this model version.
        decision: One kind of decision (``accept``/``reject``/``correct``/``add``; ``keep``/``drop`` for summaries).
        label: Decisions whose (corrected) label is this (not for summaries).
        split: Fraction of notes for the ``dev`` split (files ``train.*`` and ``dev.*``); ``None``: one file.
        seed: Seed of the deterministic split.
        batch: Documents per database page.

    Returns:
        The :class:`Manifest`.

    Raises:
        FeedbackError: ``bad_export`` for an unknown format or an impossible combination of options, and the
            filters' own errors (bad decision or label, unreadable time).
    """
    if fmt not in FORMATS:
        raise FeedbackError(FeedbackCode.BAD_EXPORT, f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if (out_dir is None) == (stream is None):
        raise FeedbackError(FeedbackCode.BAD_EXPORT, "give exactly one of out_dir and stream")
    if stream is not None and fmt not in STREAMABLE:
        raise FeedbackError(FeedbackCode.BAD_EXPORT, f"{fmt} writes several files: give out_dir")
    if split is not None and not 0.0 < split < 1.0:
        raise FeedbackError(FeedbackCode.BAD_EXPORT, f"split must be a fraction in (0, 1), got {split}")
    if fmt == "summary_jsonl" and label is not None:
        raise FeedbackError(FeedbackCode.BAD_EXPORT, "summary exports take no label filter")
    if decision is not None and fmt != "summary_jsonl" and decision not in ALL_DECISIONS:
        raise FeedbackError(FeedbackCode.BAD_DECISION, f"decision filter {decision!r} not in {ALL_DECISIONS}")
    filters = ExportFilters(
        since=to_utc_naive(since),
        until=to_utc_naive(until),
        reviewer=reviewer,
        model_version=model_version,
        decision=decision,
        label=label,
    )
    out_path = None
    if out_dir is not None:
        out_path = Path(out_dir)
        out_path.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(format=fmt, filters=filters.to_dict(), split=split, seed=seed)
    counts: Counter[str] = Counter()
    if fmt == "summary_jsonl":
        files = _write_jsonl(
            iter_summaries(session, filters, split=split, seed=seed, batch=batch),
            out_path,
            stream,
            "summaries",
            counts,
            split,
            summary=True,
        )
    else:
        docs = iter_documents(session, filters, split=split, seed=seed, batch=batch)
        if fmt == "jsonl":
            files = _write_jsonl(docs, out_path, stream, "data", counts, split)
        elif fmt == "conll":
            files = _write_conll(docs, out_path, stream, counts, split)
        elif fmt == "docbin":
            assert out_path is not None
            files = _write_docbin(docs, out_path, counts)
        else:
            assert out_path is not None
            files = _write_brat(docs, out_path, counts)
    manifest.counts = dict(sorted(counts.items()))
    manifest.files = files
    manifest.sha256 = _combined_hash(files)
    if out_path is not None:
        (out_path / "manifest.json").write_text(json.dumps(manifest.to_dict(), indent=2) + "\n", "utf-8")
    return manifest


def _count_doc(doc: dict[str, Any], counts: Counter[str]) -> None:
    counts["documents"] += 1
    if doc["split"] is not None:
        counts[f"documents_{doc['split']}"] += 1
    counts["entities"] += len(doc["entities"])
    for entity in doc["entities"]:
        counts["decisions"] += len(entity["decisions"])
        for d in entity["decisions"]:
            counts[f"decision_{d['target']}_{d['decision']}"] += 1
    counts["gold_entities"] += len(doc["gold"])
    for g in doc["gold"]:
        counts[f"gold_{g['label']}"] += 1


def _write_jsonl(
    records: Iterator[dict[str, Any]],
    out: Path | None,
    stream: IO[str] | None,
    stem: str,
    counts: Counter[str],
    split: float | None,
    summary: bool = False,
) -> dict[str, dict[str, Any]]:
    outputs = _Outputs(out, stream, stem, "jsonl", split)
    try:
        for record in records:
            if summary:
                counts["summaries"] += 1
                counts["sentences"] += len(record["sentences"])
                for s in record["sentences"]:
                    counts["sentence_decisions"] += len(s["decisions"])
                    counts[f"label_{s['label']}"] += 1
            else:
                _count_doc(record, counts)
            outputs.get(record["split"]).write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        files = outputs.close()
    return files


def _write_conll(
    docs: Iterator[dict[str, Any]], out: Path | None, stream: IO[str] | None, counts: Counter[str], split: float | None
) -> dict[str, dict[str, Any]]:
    outputs = _Outputs(out, stream, "data", "conll", split)
    try:
        for doc in docs:
            _count_doc(doc, counts)
            spans, trimmed = trimmed_spans(doc["text"], doc["gold"])
            spans, dropped = non_overlapping(spans)
            counts["whitespace_trimmed"] += trimmed
            counts["overlapping_dropped"] += dropped
            buffer = io.StringIO()
            buffer.write(f"# doc_id = {doc['analysis_id']}\n# id = {doc['id']}\n# note_sha256 = {doc['note_sha256']}\n")
            text = doc["text"]
            for start, end, tag in iob_tags(text, spans):
                buffer.write(f"{text[start:end]}\t{start}\t{end}\t{tag}\n")
                counts["tokens"] += 1
            buffer.write("\n")
            outputs.get(doc["split"]).write(buffer.getvalue())
    finally:
        files = outputs.close()
    return files


def _write_docbin(docs: Iterator[dict[str, Any]], out: Path, counts: Counter[str]) -> dict[str, dict[str, Any]]:
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    bins: dict[str | None, Any] = {}
    shard_no: Counter[str | None] = Counter()
    files: dict[str, dict[str, Any]] = {}

    def flush(split: str | None) -> None:
        name = f"{split or 'data'}-{shard_no[split]:04d}.spacy"
        data = bins.pop(split).to_bytes()
        (out / name).write_bytes(data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "docs": shard_sizes[split]}
        shard_no[split] += 1
        shard_sizes[split] = 0

    shard_sizes: Counter[str | None] = Counter()
    for doc in docs:
        _count_doc(doc, counts)
        spans, trimmed = trimmed_spans(doc["text"], doc["gold"])
        spans, dropped = non_overlapping(spans)
        counts["whitespace_trimmed"] += trimmed
        counts["overlapping_dropped"] += dropped
        sdoc = spacy_doc(nlp, doc["text"], spans)
        sdoc.user_data["doc_id"] = doc["analysis_id"]
        sdoc.user_data["id"] = doc["id"]
        split = doc["split"]
        if split not in bins:
            bins[split] = DocBin(store_user_data=True)
        bins[split].add(sdoc)
        shard_sizes[split] += 1
        if shard_sizes[split] >= DOCBIN_SHARD:
            flush(split)
    for split in list(bins):
        flush(split)
    return dict(sorted(files.items()))


def _write_brat(docs: Iterator[dict[str, Any]], out: Path, counts: Counter[str]) -> dict[str, dict[str, Any]]:
    combined: dict[str | None, hashlib._Hash] = {}
    sizes: Counter[str | None] = Counter()
    n_files: Counter[str | None] = Counter()
    for doc in docs:
        _count_doc(doc, counts)
        split = doc["split"]
        folder = out / (split or "data")
        folder.mkdir(exist_ok=True)
        stem = f"{doc['analysis_id']:08d}_{_safe(str(doc['id']))}"
        lines = []
        a = n = 0
        by_suggestion = {e["suggestion_id"]: e for e in doc["entities"]}
        for t, g in enumerate(doc["gold"], 1):
            frags = brat_fragments(doc["text"], g["start"], g["end"])
            offsets = ";".join(f"{s} {e}" for s, e in frags)
            shown = " ".join(doc["text"][s:e] for s, e in frags)
            lines.append(f"T{t}\t{g['label']} {offsets}\t{shown}")
            entity = by_suggestion.get(g["suggestion_id"], {})
            for trait in entity.get("traits", []):
                a += 1
                lines.append(f"A{a}\t{BRAT_TRAITS[trait]} T{t}")
            if g["codes"]:
                n += 1
                lines.append(f"#{n}\tAnnotatorNotes T{t}\t{' '.join(g['codes'])}")
        ann = ("\n".join(lines) + "\n") if lines else ""
        digest = combined.setdefault(split, hashlib.sha256())
        for suffix, content in ((".txt", doc["text"]), (".ann", ann)):
            data = content.encode("utf-8")
            (folder / f"{stem}{suffix}").write_bytes(data)
            digest.update(f"{stem}{suffix}\t{hashlib.sha256(data).hexdigest()}\n".encode())
            sizes[split] += len(data)
            n_files[split] += 1
    conf = (
        "[entities]\n"
        + "\n".join(LABELS)
        + "\n[relations]\n[events]\n[attributes]\n"
        + "\n".join(f"{name} Arg:<ENTITY>" for name in BRAT_TRAITS.values())
        + "\n"
    )
    files = {}
    for split, digest in combined.items():
        folder = out / (split or "data")
        (folder / "annotation.conf").write_text(conf, "utf-8")
        files[f"{split or 'data'}/"] = {"sha256": digest.hexdigest(), "bytes": sizes[split], "files": n_files[split]}
    return dict(sorted(files.items()))


# ---------------------------------------------------------------------------------------------------- import


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
                for e in [*record["entities"], *record["gold"]]:
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
    )
    session.add(row)
    session.flush()
    payload = {k: v for k, v in d.items() if k != "id"}
    payload.update(imported_from=d.get("id"), suggestion_id=suggestion.id, analysis_id=analysis.id)
    session.add(AuditLog(kind="decision", ref_id=row.id, actor=d["reviewer"], payload=payload, created_at=utcnow()))
