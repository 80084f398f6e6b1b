"""The ``docbin`` writer: spaCy ``DocBin`` shards (``spacy.blank("en")`` vocabulary) whose ``doc.text`` is the
note exactly."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from db.errors import FeedbackCode, FeedbackError
from db.export.manifest import count_document
from db.export.spans import token_spans
from engine.corpora.document import GoldSpan
from engine.corpora.iob import tokenize

DOCBIN_SHARD = 1000
"""Documents per ``.spacy`` shard."""


def spacy_doc(nlp: Any, text: str, spans: Sequence[GoldSpan]) -> Any:
    """A spaCy ``Doc`` with ``doc.text == text`` exactly and ``spans`` (non-overlapping) as ``doc.ents``.

    Raises:
        FeedbackError: ``bad_export`` if the words do not rebuild the text or a span misses token bounds.
    """
    from spacy.tokens import Doc

    tokens = tokenize(text, [x for s, e, _ in spans for x in (s, e)])
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
    for start, end, label in spans:
        span = doc.char_span(start, end, label=label, alignment_mode="strict")
        if span is None:
            raise FeedbackError(FeedbackCode.BAD_EXPORT, f"span [{start}, {end}) misses token bounds")
        ents.append(span)
    doc.ents = ents
    return doc


def write_docbin(docs: Iterator[dict[str, Any]], out: Path, counts: Counter[str]) -> dict[str, dict[str, Any]]:
    """Write document records as ``<split or data>-NNNN.spacy`` shards; the manifest's file entries."""
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    bins: dict[str | None, Any] = {}
    shard_no: Counter[str | None] = Counter()
    shard_sizes: Counter[str | None] = Counter()
    files: dict[str, dict[str, Any]] = {}

    def flush(split: str | None) -> None:
        name = f"{split or 'data'}-{shard_no[split]:04d}.spacy"
        data = bins.pop(split).to_bytes()
        (out / name).write_bytes(data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "docs": shard_sizes[split]}
        shard_no[split] += 1
        shard_sizes[split] = 0

    for doc in docs:
        count_document(doc, counts)
        sdoc = spacy_doc(nlp, doc["text"], token_spans(doc, counts))
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
