"""Gold spans as the token formats (CoNLL, DocBin) need them: no edge whitespace, no overlaps."""

from __future__ import annotations

from collections import Counter
from typing import Any

from engine.corpora.document import GoldSpan, resolve_overlaps


def trimmed_spans(text: str, spans: list[dict[str, Any]]) -> tuple[list[GoldSpan], int]:
    """Spans with surrounding whitespace removed (token formats cannot start or end a span on whitespace), and
    how many needed it. Reviewer spans are refused with such whitespace; a model's could still carry it."""
    out: list[GoldSpan] = []
    changed = 0
    for span in spans:
        start, end = span["start"], span["end"]
        piece = text[start:end]
        lead, trail = len(piece) - len(piece.lstrip()), len(piece) - len(piece.rstrip())
        if lead or trail:
            changed += 1
            start, end = start + lead, end - trail
        if start < end:
            out.append((start, end, span["label"]))
    return out, changed


def labelled_spans(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """A record's gold spans and, for a silver note exported with ``include_silver``, its silver ones, sorted (each
    keeps its ``source``; the manifest's ``notes`` says which notes are gold and which silver)."""
    spans = [*doc["gold"], *(doc.get("silver") or [])]
    return sorted(spans, key=lambda g: (g["start"], g["end"], g["label"]))


def token_spans(doc: dict[str, Any], counts: Counter[str]) -> list[GoldSpan]:
    """A document record's gold spans, trimmed, overlaps resolved as the corpus readers resolve them (the
    longer span stays); counts ``whitespace_trimmed`` and ``overlapping_dropped``."""
    spans, trimmed = trimmed_spans(doc["text"], labelled_spans(doc))
    kept = resolve_overlaps(spans)
    counts["whitespace_trimmed"] += trimmed
    counts["overlapping_dropped"] += len(spans) - len(kept)
    return kept
