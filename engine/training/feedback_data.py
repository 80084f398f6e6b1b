"""Reviewer decisions as training and test data, and the frozen test split.

Input is the feedback store's JSONL export (``db.export``; the engine never imports ``db``): one object per analysed
note in the contract's analysis shape, each entity carrying the reviewer ``decisions`` made on it. An entity's
latest entity-level decision counts:

- ``accept``: the span and label are gold (a positive);
- ``correct``: the corrected span and/or label is gold, the original span is not;
- ``add``: an entity the model missed, gold;
- ``reject``: not an entity (a negative: trained as outside-of-entity, reported as such);
- only decisions on its codes: the entity stands, as for ``accept``;
- no decision yet: by default the model's own span is kept (``pending="keep"``), which leaves the model's behaviour
  there unchanged instead of teaching it to drop spans nobody looked at. Notes with no decision at all carry no
  reviewer signal and are left out.

Several exports of the same note (re-analysed by another model version) are merged by note hash (``sha256`` of the
UTF-8 text), later decisions winning. Summary sentence ``keep``/``drop`` decisions become per-sentence labels.

The frozen test split: a note whose salted hash falls in the lowest :data:`TEST_FRACTION` is *test* forever. The
salt and fraction are constants, so the split never changes between runs and a test note is never trained on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.corpora.document import Document, GoldSpan, resolve_overlaps
from engine.errors import EngineError, ErrorCode
from engine.types import LABELS

TEST_FRACTION = 0.2
"""Share of feedback notes held out as the frozen test split (a constant: changing it would leak test notes)."""

SPLIT_SALT = "clinical-nlp frozen test split v1"

ENTITY_DECISIONS = ("accept", "reject", "correct", "add")
SENTENCE_DECISIONS = ("keep", "drop")


def note_hash(text: str) -> str:
    """``sha256`` of the note's UTF-8 bytes (the feedback store's note identity)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_frozen_test(hash_hex: str) -> bool:
    """Whether the note with this hash belongs to the frozen test split (deterministic, never trained on)."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{hash_hex}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < TEST_FRACTION


@dataclass(slots=True)
class FeedbackNote:
    """One reviewed note turned into gold spans.

    Attributes:
        note_hash: ``sha256`` of :attr:`text`.
        id: The note's external id (for messages).
        text: The note exactly as analysed.
        spans: Gold ``(start, end, label)`` spans, non-overlapping, sorted.
        negatives: Spans reviewers rejected (or replaced by a correction).
        counts: How many entities were accepted, corrected, added, rejected, left pending.
    """

    note_hash: str
    id: str
    text: str
    spans: list[GoldSpan] = field(default_factory=list)
    negatives: list[GoldSpan] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def split(self) -> str:
        """``test`` (frozen, never trained on) or ``train``."""
        return "test" if is_frozen_test(self.note_hash) else "train"

    def to_document(self) -> Document:
        """The note as a training/evaluation :class:`~engine.corpora.document.Document`."""
        return Document(id=self.id, text=self.text, spans=list(self.spans))


@dataclass(slots=True)
class SentenceExample:
    """A note with reviewer keep/drop labels on summary sentences.

    Attributes:
        note_hash: ``sha256`` of :attr:`text`.
        id: The note's external id.
        text: The note.
        labels: ``(start, end, keep)`` per reviewed sentence (``keep`` 1 or 0), sorted by ``start``.
    """

    note_hash: str
    id: str
    text: str
    labels: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def split(self) -> str:
        """Same frozen split as the entity feedback (by note hash)."""
        return "test" if is_frozen_test(self.note_hash) else "train"


def read_jsonl(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(file:line, object)`` for each non-blank line.

    Raises:
        EngineError: ``DATA_NOT_FOUND`` for a missing file, ``BAD_INPUT`` for a line that is not a JSON object.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise EngineError(ErrorCode.DATA_NOT_FOUND, f"{path}: cannot read ({exc.strerror or exc})") from exc
    with handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EngineError(ErrorCode.BAD_INPUT, f"{where}: invalid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise EngineError(ErrorCode.BAD_INPUT, f"{where}: expected a JSON object")
            yield where, obj


def _hash_of(obj: dict[str, Any], text: str, where: str) -> str:
    computed = note_hash(text)
    given = obj.get("note_sha256") or obj.get("sha256") or obj.get("note_hash")
    if given and obj.get("deidentified") is True:
        # A de-identified export keeps the original note's hash as its identity (frozen split, dedup); the text
        # is its redacted form, so the two cannot match.
        return str(given)
    if given and given != computed:
        raise EngineError(ErrorCode.BAD_INPUT, f"{where}: note hash does not match its text")
    return computed


def _decision_key(decision: dict[str, Any]) -> tuple[bool, str, int]:
    # An adjudicator's decision (db.repository.conflicts) outranks any reviewer's, whenever either was made.
    return (decision.get("role") == "adjudicator", str(decision.get("created_at") or ""), int(decision.get("id") or 0))


def _latest(decisions: Iterable[dict[str, Any]], kinds: Sequence[str], target: str) -> dict[str, Any] | None:
    relevant = [
        d for d in decisions
        if isinstance(d, dict) and d.get("decision") in kinds and d.get("target", target) in (target, None)
    ]
    return max(relevant, key=_decision_key) if relevant else None


def _entity_decisions(entity: dict[str, Any]) -> list[dict[str, Any]]:
    found = entity.get("decisions")
    if found is None and isinstance(entity.get("decision"), dict):
        found = [entity["decision"]]
    return list(found or [])


def _check_span(start: Any, end: Any, label: Any, text: str, where: str) -> GoldSpan:
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
        raise EngineError(ErrorCode.BAD_SPAN, f"{where}: span [{start}, {end}) does not fit a {len(text)}-char note")
    if label not in LABELS:
        raise EngineError(ErrorCode.BAD_LABEL, f"{where}: label {label!r} is not one of {', '.join(LABELS)}")
    return (start, end, str(label))


@dataclass(slots=True)
class _NoteVotes:
    id: str
    text: str
    # span -> (decision time key, "pos"/"neg"/"pending")
    votes: dict[GoldSpan, tuple[tuple[bool, str, int], str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*ENTITY_DECISIONS, "pending"), 0))

    def vote(self, span: GoldSpan, key: tuple[bool, str, int], kind: str) -> None:
        old = self.votes.get(span)
        # A real decision beats "pending"; between decisions the later one wins.
        if old is None or (old[1] == "pending" and kind != "pending") or (kind != "pending" and key >= old[0]):
            self.votes[span] = (key, kind)


def load_feedback(path: str | Path, pending: str = "keep") -> list[FeedbackNote]:
    """Turn a decisions export into gold-annotated notes, merged by note hash.

    Args:
        path: The JSONL export (``db.export`` with ``fmt="jsonl"``).
        pending: What an undecided model span becomes: ``keep`` (gold, as the model said) or ``drop`` (outside).

    Returns:
        Notes with at least one reviewer decision, in first-seen order.

    Raises:
        EngineError: on unreadable files, malformed lines, spans that do not fit or unknown labels.
    """
    if pending not in {"keep", "drop"}:
        raise EngineError(ErrorCode.BAD_INPUT, f"pending must be 'keep' or 'drop', got {pending!r}")
    notes: dict[str, _NoteVotes] = {}
    for where, obj in read_jsonl(path):
        text = obj.get("text")
        if not isinstance(text, str):
            raise EngineError(ErrorCode.BAD_INPUT, f"{where}: missing field 'text'")
        hash_hex = _hash_of(obj, text, where)
        note = notes.setdefault(hash_hex, _NoteVotes(id=str(obj.get("id") or hash_hex[:12]), text=text))
        for i, entity in enumerate(obj.get("entities") or []):
            at = f"{where} entity {i}"
            span = _check_span(entity.get("start"), entity.get("end"), entity.get("label"), text, at)
            decisions = _entity_decisions(entity)
            decision = _latest(decisions, ENTITY_DECISIONS, "entity")
            if decision is None:
                # A decision on one of its codes implies the reviewer let the entity stand (as db.export does).
                on_code = [d for d in decisions if isinstance(d, dict) and d.get("target") == "code"]
                if on_code:
                    decision = {**max(on_code, key=_decision_key), "decision": "accept"}
            if decision is None:
                note.counts["pending"] += 1
                note.vote(span, (False, "", -1), "pending")
                continue
            kind = decision["decision"]
            note.counts[kind] += 1
            key = _decision_key(decision)
            if kind in {"accept", "add"}:
                note.vote(span, key, "pos")
            elif kind == "reject":
                note.vote(span, key, "neg")
            else:
                start, end = decision.get("corrected_start"), decision.get("corrected_end")
                fixed = _check_span(
                    span[0] if start is None else start,
                    span[1] if end is None else end,
                    decision.get("corrected_label") or span[2],
                    text,
                    f"{at} correction",
                )
                if fixed != span:
                    note.vote(span, key, "neg")
                note.vote(fixed, key, "pos")
    out: list[FeedbackNote] = []
    for hash_hex, note in notes.items():
        decided = sum(v for k, v in note.counts.items() if k != "pending")
        if not decided:
            continue
        decided_pos = [s for s, (_, kind) in note.votes.items() if kind == "pos"]
        # A kept undecided span never overrides a reviewer's span that overlaps it.
        kept = [
            s for s, (_, kind) in note.votes.items()
            if kind == "pending" and pending == "keep" and not any(s[0] < p[1] and p[0] < s[1] for p in decided_pos)
        ]
        positives = decided_pos + kept
        negatives = sorted(s for s, (_, kind) in note.votes.items() if kind == "neg")
        out.append(FeedbackNote(
            note_hash=hash_hex, id=note.id, text=note.text, spans=resolve_overlaps(sorted(positives)),
            negatives=negatives, counts=dict(note.counts),
        ))
    return out


def load_sentence_labels(path: str | Path) -> list[SentenceExample]:
    """Turn a summary keep/drop export into per-sentence labels, merged by note hash (later decisions win).

    Each line holds a note (``text``) and its summary ``sentences`` (``start``, ``end``, ``decisions`` or a single
    ``decision``: ``keep``/``drop``). Sentences without a decision are left out; so are notes with none.
    """
    merged: dict[str, tuple[str, str, dict[tuple[int, int], tuple[tuple[bool, str, int], int]]]] = {}
    for where, obj in read_jsonl(path):
        text = obj.get("text")
        if not isinstance(text, str):
            raise EngineError(ErrorCode.BAD_INPUT, f"{where}: missing field 'text'")
        hash_hex = _hash_of(obj, text, where)
        _, _, labels = merged.setdefault(hash_hex, (str(obj.get("id") or hash_hex[:12]), text, {}))
        for i, sentence in enumerate(obj.get("sentences") or []):
            start, end = sentence.get("start"), sentence.get("end")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
                raise EngineError(ErrorCode.BAD_SPAN, f"{where} sentence {i}: [{start}, {end}) does not fit")
            decisions = sentence.get("decisions")
            if decisions is None:
                single = sentence.get("decision")
                decisions = [single] if isinstance(single, dict) else ([{"decision": single}] if single else [])
            latest = _latest(decisions, SENTENCE_DECISIONS, "sentence")
            if latest is None:
                continue
            key = _decision_key(latest)
            old = labels.get((start, end))
            if old is None or key >= old[0]:
                labels[(start, end)] = (key, 1 if latest["decision"] == "keep" else 0)
    return [
        SentenceExample(note_hash=h, id=i, text=t, labels=sorted((s, e, keep) for (s, e), (_, keep) in lab.items()))
        for h, (i, t, lab) in merged.items()
        if lab
    ]


def data_hash(documents: Sequence[Document], sentences: Sequence[SentenceExample] = ()) -> str:
    """Order-independent ``sha256`` of training data: each note's hash with its gold spans or sentence labels."""
    items = sorted(
        [json.dumps(["ner", note_hash(d.text), sorted(d.spans)]) for d in documents]
        + [json.dumps(["sum", s.note_hash, s.labels]) for s in sentences]
    )
    return hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()


@dataclass(slots=True)
class RetrainData:
    """Everything a retraining run trains and is judged on.

    Attributes:
        train: NER training documents: base training data plus feedback ``train`` notes, one per note hash
            (reviewer gold replacing base annotations of the same text).
        feedback_test: The frozen test split of feedback notes.
        base_dev: The base dev set (never trained on).
        sentences_train: Summary keep/drop labels to train on.
        sentences_test: Summary keep/drop labels of frozen test notes.
        stats: Counts for the report.
    """

    train: list[Document]
    feedback_test: list[Document]
    base_dev: list[Document]
    sentences_train: list[SentenceExample]
    sentences_test: list[SentenceExample]
    stats: dict[str, Any]


def build_retrain_data(
    feedback: Sequence[FeedbackNote],
    base_train: Sequence[Document] = (),
    base_dev: Sequence[Document] = (),
    sentences: Sequence[SentenceExample] = (),
) -> RetrainData:
    """Merge feedback with the base data, de-duplicate by note hash and keep every evaluation note out of training.

    Args:
        feedback: Notes from :func:`load_feedback`.
        base_train: The base training documents.
        base_dev: The base dev documents (evaluation only).
        sentences: Summary labels from :func:`load_sentence_labels`.
    """
    fb_train = [n for n in feedback if n.split == "train"]
    fb_test = [n for n in feedback if n.split == "test"]
    held_out = {n.note_hash for n in fb_test} | {note_hash(d.text) for d in base_dev}
    train: dict[str, Document] = {}
    for doc in base_train:
        train.setdefault(note_hash(doc.text), doc)
    replaced = 0
    for note in fb_train:
        if note.note_hash in train:
            replaced += 1
        train[note.note_hash] = note.to_document()
    leaked = [h for h in train if h in held_out]
    for h in leaked:
        del train[h]
    sentences_train = [s for s in sentences if s.split == "train" and s.note_hash not in held_out]
    sentences_test = [s for s in sentences if s.split == "test"]
    totals: dict[str, int] = {}
    for note in feedback:
        for k, v in note.counts.items():
            totals[k] = totals.get(k, 0) + v
    stats = {
        "feedback_notes": len(feedback),
        "feedback_train_notes": len(fb_train),
        "feedback_test_notes": len(fb_test),
        "base_train_docs": len(base_train),
        "base_dev_docs": len(base_dev),
        "train_docs": len(train),
        "base_docs_replaced_by_feedback": replaced,
        "held_out_notes_removed_from_training": len(leaked),
        "decisions": totals,
        "sentence_notes_train": len(sentences_train),
        "sentence_notes_test": len(sentences_test),
    }
    return RetrainData(
        train=list(train.values()),
        feedback_test=[n.to_document() for n in fb_test],
        base_dev=list(base_dev),
        sentences_train=sentences_train,
        sentences_test=sentences_test,
        stats=stats,
    )
