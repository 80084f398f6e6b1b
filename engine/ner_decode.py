"""Decoding the NER tagger's token probabilities into character spans (see :mod:`engine.ner`).

A BIO-constrained Viterbi decode (or arg-max), entity confidences at a fitted softmax temperature, and spans
widened to whole words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.types import LABELS, Span

BIO_LABELS: tuple[str, ...] = ("O", *(f"{p}-{label}" for label in LABELS for p in ("B", "I")))
"""Token labels: ``O`` then ``B-X``, ``I-X`` for each contract label, in this id order."""


@dataclass(slots=True)
class Encoding:
    """Word-piece ids of a text (no special tokens) with their ``[start, end)`` character offsets."""

    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def allowed_transitions(labels: Sequence[str] = BIO_LABELS) -> tuple[np.ndarray, np.ndarray]:
    """Log-space BIO constraints: ``(start[j], transition[i, j])`` with ``-inf`` where ``I-X`` cannot follow."""
    n = len(labels)
    start = np.zeros(n, dtype=np.float32)
    trans = np.zeros((n, n), dtype=np.float32)
    for j, label in enumerate(labels):
        if label.startswith("I-"):
            start[j] = -np.inf
            for i, prev in enumerate(labels):
                if prev[2:] != label[2:] or prev == "O":
                    trans[i, j] = -np.inf
    return start, trans


_START, _TRANS = allowed_transitions()


def _transition_structure(trans: np.ndarray) -> tuple[list[tuple[int, int, int]], bool]:
    """``([(j, a, b), ...] for labels reachable from exactly two labels a < b], whether every other label is
    reachable from all)``: BIO's ``I-X`` follows only ``B-X`` or ``I-X``, while ``O`` and ``B-X`` follow anything."""
    k = trans.shape[0]
    allowed = [[i for i in range(k) if trans[i, j] == 0] for j in range(k)]
    pairs = [(j, src[0], src[1]) for j, src in enumerate(allowed) if len(src) == 2]
    return pairs, all(len(src) in (2, k) for src in allowed)


_PAIRS, _BIO_SHAPED = _transition_structure(_TRANS)


def viterbi(probs: np.ndarray) -> np.ndarray:
    """Most probable BIO-valid label path for ``(tokens, labels)`` probabilities.

    BIO transitions are all-or-nothing (``0`` or ``-inf``), so a step needs no ``labels x labels`` matrix: ``O``
    and ``B-X`` take the best previous score, ``I-X`` the better of ``B-X`` and ``I-X``. Done on Python floats,
    that is 3-4x faster than numpy on 11 labels (a 1,800-token note: 6.5 against 21-26 ms); ties resolve to the
    lower label id, as an arg-max would.
    """
    n = probs.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    logp = np.log(np.clip(probs.astype(np.float32), 1e-9, 1.0))
    if not _BIO_SHAPED or logp.shape[1] != _TRANS.shape[0]:
        return _viterbi_matrix(logp)
    rows = logp.tolist()
    k = len(rows[0])
    score = [a + b for a, b in zip(_START.tolist(), rows[0], strict=True)]
    back: list[list[int]] = [[]] * n
    for t in range(1, n):
        row = rows[t]
        best_score = max(score)
        best = score.index(best_score)
        new = [best_score + x for x in row]
        pointers = [best] * k
        for j, a, b in _PAIRS:
            if score[a] >= score[b]:
                new[j], pointers[j] = score[a] + row[j], a
            else:
                new[j], pointers[j] = score[b] + row[j], b
        back[t] = pointers
        score = new
    path = [0] * n
    path[-1] = score.index(max(score))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t][path[t]]
    return np.asarray(path, dtype=np.int64)


def _viterbi_matrix(logp: np.ndarray) -> np.ndarray:
    """Viterbi with the full transition matrix (any label set)."""
    n = logp.shape[0]
    back = np.zeros((n, logp.shape[1]), dtype=np.int64)
    score = _START + logp[0]
    for t in range(1, n):
        cand = score[:, None] + _TRANS
        back[t] = cand.argmax(axis=0)
        score = cand.max(axis=0) + logp[t]
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def greedy(probs: np.ndarray) -> np.ndarray:
    """Arg-max label per token (an ``I-X`` without its ``B-X`` then starts an entity, see :func:`annotate`)."""
    return probs.argmax(axis=1) if probs.shape[0] else np.zeros(0, dtype=np.int64)


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities re-normalised at a softmax temperature (``> 1`` flattens over-confident ones)."""
    if temperature == 1.0 or probs.shape[0] == 0:
        return probs.astype(np.float32)
    logp = np.log(np.clip(probs.astype(np.float32), 1e-9, 1.0)) / temperature
    out = np.exp(logp - logp.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


def annotate(
    encoding: Encoding,
    probs: np.ndarray,
    id2label: Sequence[str] = BIO_LABELS,
    decoder: str = "viterbi",
    temperature: float = 1.0,
    aggregate: str = "min",
) -> list[Span]:
    """Decode token probabilities of one note into character spans with confidences.

    Args:
        encoding: The note's tokens and character offsets.
        probs: ``(tokens, labels)`` probabilities from :meth:`NerStage.token_probs`.
        id2label: Label of each probability column.
        decoder: ``viterbi`` (BIO-constrained) or ``greedy``.
        temperature: Softmax temperature for the confidence only (fitted on dev data; the decode is unchanged).
        aggregate: ``min`` or ``mean`` of the tempered probabilities of the entity's decoded token labels.

    Returns:
        Non-overlapping spans sorted by start, each with its confidence in ``score``.
    """
    if len(encoding) == 0:
        return []
    path = viterbi(probs) if decoder == "viterbi" else greedy(probs)
    token_scores = temper(probs, temperature)[np.arange(len(path)), path]
    reduce = np.min if aggregate == "min" else np.mean
    spans: list[Span] = []
    current: list[int] | None = None  # [first token, last token, label id]

    def close() -> None:
        if current is not None:
            first, last, _ = current
            label = id2label[path[first]][2:]
            spans.append(
                Span(
                    start=int(encoding.offsets[first, 0]),
                    end=int(encoding.offsets[last, 1]),
                    label=label,
                    score=float(np.clip(reduce(token_scores[first : last + 1]), 0.0, 1.0)),
                )
            )

    for t, label_id in enumerate(path.tolist()):
        tag = id2label[label_id]
        if tag.startswith("I-") and current is not None and id2label[path[current[0]]][2:] == tag[2:]:
            current[1] = t
            continue
        close()
        current = [t, t, label_id] if tag != "O" else None
    close()
    return spans


def _joined(text: str, i: int) -> bool:
    """Whether ``text[i - 1]`` and ``text[i]`` belong to one word: both alphanumeric, and no case change that
    starts a new word (``visitNote``, ``ECHOCARDIOGRAMMultiple``; notes lose spaces in copying)."""
    a, b = text[i - 1], text[i]
    if not (a.isalnum() and b.isalnum()):
        return False
    if a.islower() and b.isupper():
        return False
    return not (a.isupper() and b.isupper() and i + 1 < len(text) and text[i + 1].islower())


def snap_to_words(text: str, spans: Sequence[Span]) -> list[Span]:
    """Spans widened to whole words; spans that then overlap are merged.

    The model labels word pieces, so a span can start or end inside a word ("ad" of "adhesions", "arte" of
    "arteriovenous"): 3.4% of the spans over 60 MTSamples reports. A reviewer sees half a word highlighted, and the
    ICD stage links half a word. A merged span keeps the label of the part that covered more characters and the
    lower score.

    Args:
        text: The note the spans index into.
        spans: Non-overlapping spans sorted by start (as :func:`annotate` gives).
    """
    out: list[Span] = []
    for span in spans:
        start, end = span.start, span.end
        while 0 < start < len(text) and _joined(text, start):
            start -= 1
        while 0 < end < len(text) and _joined(text, end):
            end += 1
        wide = Span(start=start, end=end, label=span.label, score=span.score)
        if out and start < out[-1].end:
            prev = out[-1]
            keep = prev.label if prev.end - prev.start >= span.end - span.start else span.label
            out[-1] = Span(start=prev.start, end=max(prev.end, end), label=keep, score=min(prev.score, span.score))
        else:
            out.append(wide)
    return out
