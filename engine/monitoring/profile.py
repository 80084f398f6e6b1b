"""Per-analysis statistics for monitoring: what is stored about each analysed note, without its text.

:func:`profile_analysis` turns a note and its analysis result into a small dict of numbers: entity counts by
label, confidence sums and low-confidence counts, ICD top-code scores, the NER's mean token entropy and share of
``O`` tokens, and a bag of words hashed into :data:`VOCAB_BUCKETS` buckets. The text itself, the entity strings
and the word order are not kept; the hashed bag (buckets shared by many words) is what input drift is measured on.

:func:`token_summary` reduces the NER's per-token label probabilities of one note (``NerStage.predict_with_probs``)
to the two token statistics, so the pipeline can attach them to an :class:`~engine.types.AnalysisResult`
(``token_stats``) without keeping the probabilities and without changing the contract's output.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.types import LABELS

VOCAB_BUCKETS = 1 << 14
"""Hash buckets of the unigram bag (16,384): far fewer than the words of a clinical vocabulary, so a bucket holds
several unrelated words and a stored bag cannot be read back as text."""
WORD_RE = re.compile(r"[a-z][a-z']+")
"""A counted word: two or more lower-case letters (numbers, dates and one-letter tokens are not counted)."""
PROFILE_VERSION = 1
"""Bumped when the meaning of a stored field changes (the tokenisation, the hash, the bucket count)."""
LOW_CONFIDENCE = 0.5
"""Default threshold under which an entity counts as low-confidence (``MonitorSettings.low_confidence``)."""


BUCKET_CACHE_WORDS = 1 << 17
"""Words whose bucket is remembered (a clinical vocabulary fits; past this, new words are hashed every time)."""


class _BucketCache(dict[str, int]):
    """Word -> bucket, filled on first sight: a hit is a C-level dict lookup (``map(cache.__getitem__, words)``)."""

    def __missing__(self, word: str) -> int:
        bucket = zlib.crc32(word.encode("utf-8")) & (VOCAB_BUCKETS - 1)
        if len(self) < BUCKET_CACHE_WORDS:
            self[word] = bucket
        return bucket


_BUCKETS = _BucketCache()


def word_bucket(word: str) -> int:
    """The hash bucket of a lower-case word (CRC-32, stable across processes and machines)."""
    return _BUCKETS[word]


def _bucket_counts(text: str) -> tuple[np.ndarray, np.ndarray]:
    """``(buckets, counts)`` of the note's words (:data:`WORD_RE`, lower-cased), buckets ascending, counts > 0.

    Each word's bucket is looked up (a C-level dict hit once the word has been seen) and the buckets are counted
    with one ``np.unique``: no Python-level loop over words or buckets (the profile is computed on every analysed
    note; ``bench/bench_monitoring.py`` times it).
    """
    words = WORD_RE.findall(text.lower())
    if not words:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    buckets = np.fromiter(map(_BUCKETS.__getitem__, words), dtype=np.int64, count=len(words))
    unique, counts = np.unique(buckets, return_counts=True)
    return unique, counts.astype(np.int64)


def hashed_unigrams(text: str) -> dict[int, int]:
    """Counts of the note's words (:data:`WORD_RE`, lower-cased) per hash bucket."""
    buckets, counts = _bucket_counts(text)
    return dict(zip(buckets.tolist(), counts.tolist(), strict=True))


def token_summary(probs: np.ndarray | None) -> dict[str, float | int] | None:
    """Mean entropy (nats) of the per-token label distributions and the share of tokens whose arg-max is ``O``.

    Args:
        probs: ``(tokens, labels)`` probabilities of one note, column 0 the ``O`` label (``engine.ner.BIO_LABELS``);
            ``None`` when the NER stage gives none.

    Returns:
        ``{"token_entropy", "o_share", "n_tokens"}``, or ``None`` without probabilities.
    """
    if probs is None:
        return None
    n = int(probs.shape[0])
    if n == 0:
        return {"token_entropy": 0.0, "o_share": 1.0, "n_tokens": 0}
    p = np.clip(probs.astype(np.float32), 1e-9, 1.0)
    entropy = float(-(p * np.log(p)).sum(axis=1).mean())
    o_share = float((probs.argmax(axis=1) == 0).mean())
    return {"token_entropy": round(entropy, 5), "o_share": round(o_share, 5), "n_tokens": n}


def _entity_numbers(result: Any) -> list[tuple[str, float | None, float | None]]:
    """``(label, confidence, top code score or None)`` per entity, read from the objects directly (serialising
    every entity with its codes first cost more than the rest of the profile)."""
    if isinstance(result, Mapping):
        return [(str(e.get("label")), None if e.get("score") is None else float(e["score"]),
                 float(e["codes"][0].get("score") or 0.0) if e.get("codes") else None)
                for e in result.get("entities") or []]
    return [(e.label, float(e.score), float(e.codes[0].score) if e.codes else None) for e in result.entities]


def _field(result: Any, name: str) -> Any:
    return result.get(name) if isinstance(result, Mapping) else getattr(result, name, None)


def profile_analysis(text: str, result: Any, low_confidence: float = LOW_CONFIDENCE) -> dict[str, Any]:
    """The monitoring statistics of one analysed note (pure: no text, no entity strings are returned).

    Args:
        text: The note exactly as analysed.
        result: Its :class:`~engine.types.AnalysisResult` (whose ``token_stats`` carries the NER token statistics)
            or the contract's result dict (then the token statistics are ``None`` unless it has a
            ``token_stats`` entry).
        low_confidence: Entities scoring under this count in ``n_low_confidence``.

    Returns:
        A JSON-ready dict: ``n_chars``, ``n_words``, ``n_entities``, ``label_counts`` (every contract label),
        ``score_sum``, ``n_low_confidence``, ``n_coded`` (entities with codes), ``code_score_sum`` (their top
        code scores), ``token_entropy``, ``o_share``, ``n_tokens`` (``None`` without NER probabilities),
        ``vocab`` (``[[bucket, count], ...]`` sorted by bucket), ``models`` and ``profile_version``.
    """
    entities = _entity_numbers(result)
    labels = Counter(label for label, _, _ in entities)
    scores = [score for _, score, _ in entities if score is not None]
    top_codes = [code for _, _, code in entities if code is not None]
    token_stats = _field(result, "token_stats") or {}
    buckets, counts = _bucket_counts(text)
    return {
        "n_chars": len(text),
        "n_words": int(counts.sum()),
        "n_entities": len(entities),
        "label_counts": {label: int(labels.get(label, 0)) for label in LABELS},
        "score_sum": round(float(sum(scores)), 5),
        "n_scored": len(scores),
        "n_low_confidence": sum(s < low_confidence for s in scores),
        "n_coded": len(top_codes),
        "code_score_sum": round(float(sum(top_codes)), 5),
        "token_entropy": token_stats.get("token_entropy"),
        "o_share": token_stats.get("o_share"),
        "n_tokens": token_stats.get("n_tokens"),
        "vocab": np.stack([buckets, counts], axis=1).tolist(),
        "models": dict(_field(result, "models") or {}),
        "profile_version": PROFILE_VERSION,
    }


def pack_vocab(vocab: list[list[int]] | list[tuple[int, int]]) -> bytes:
    """The ``vocab`` pairs as bytes for storage: little-endian ``uint16`` buckets, then ``uint16`` counts."""
    if not vocab:
        return b""
    arr = np.asarray(vocab, dtype=np.int64).reshape(-1, 2)
    counts = np.minimum(arr[:, 1], np.iinfo(np.uint16).max)
    return arr[:, 0].astype("<u2").tobytes() + counts.astype("<u2").tobytes()


def unpack_vocab(blob: bytes | None) -> tuple[np.ndarray, np.ndarray]:
    """``(buckets, counts)`` arrays of a :func:`pack_vocab` blob."""
    if not blob:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    arr = np.frombuffer(blob, dtype="<u2")
    half = arr.shape[0] // 2
    return arr[:half].astype(np.int64), arr[half:].astype(np.int64)


def unpack_vocab_many(blobs: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR parts ``(indptr, buckets, counts)`` of many :func:`pack_vocab` blobs, one row per blob.

    The blobs are joined and read with one ``np.frombuffer``; each row's two halves are views of it, concatenated
    once per half and cast once, instead of one :func:`unpack_vocab` (two ``astype`` copies) per row: over 100,000
    stored analyses that loop was a third of the time series' cost (docs/monitoring.md, section 5). Buckets come
    back as ``int32`` (what ``scipy.sparse`` indexes with) and counts as ``float32`` (exact: a stored count is at
    most 65,535), half the memory of ``int64``/``float64`` for the ~20 million entries of 100,000 notes.
    """
    blobs = [b or b"" for b in blobs]
    pairs = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs)) // 4  # 2 x uint16 per pair
    indptr = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum(pairs, out=indptr[1:])
    if not indptr[-1]:
        return indptr, np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype="<u2")
    starts, halves = (2 * indptr[:-1]).tolist(), pairs.tolist()
    buckets = np.concatenate([flat[s : s + h] for s, h in zip(starts, halves, strict=True)], dtype=np.int32)
    counts = np.concatenate([flat[s + h : s + 2 * h] for s, h in zip(starts, halves, strict=True)], dtype=np.float32)
    return indptr, buckets, counts


def stats_record(note_id: str | None, text: str, result: Any, low_confidence: float = LOW_CONFIDENCE) -> dict[str, Any]:
    """One line of a batch job's ``OUTPUT.stats.jsonl``: ``{"id": note_id, **profile}`` (what
    ``python -m engine monitor ingest`` stores with source ``batch``)."""
    return {"id": note_id, **profile_analysis(text, result, low_confidence)}
