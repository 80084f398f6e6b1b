"""Column arrays of many per-analysis statistics (stored rows, a reference profile's notes, a test stream).

A :class:`StatsTable` is what every drift statistic reads: one row per analysed note, in arrival order. The
database layer fills it from stored rows (``db.stats.load_table``), :func:`from_profiles` from
:func:`engine.monitoring.profile.profile_analysis` dicts; the engine never sees where the rows came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from engine.monitoring.profile import VOCAB_BUCKETS, unpack_vocab_many
from engine.types import LABELS


@dataclass
class StatsTable:
    """Per-note statistics as arrays (``n`` rows).

    Attributes:
        label_counts: ``(n, len(LABELS))`` entity counts, columns in :data:`engine.types.LABELS` order.
        score_sum: Sum of entity confidences per note.
        n_scored: Entities with a confidence per note.
        n_low: Entities under the low-confidence threshold per note.
        n_coded: Entities with at least one ICD code.
        code_score_sum: Sum of their top-code scores.
        token_entropy: Mean token entropy (nats), ``nan`` where unknown.
        o_share: Share of ``O`` tokens, ``nan`` where unknown.
        vocab: ``(n, VOCAB_BUCKETS)`` sparse hashed unigram counts.
        created_at: Seconds since the epoch (UTC) per note, or ``None``.
    """

    label_counts: np.ndarray
    score_sum: np.ndarray
    n_scored: np.ndarray
    n_low: np.ndarray
    n_coded: np.ndarray
    code_score_sum: np.ndarray
    token_entropy: np.ndarray
    o_share: np.ndarray
    vocab: sparse.csr_matrix
    created_at: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.label_counts.shape[0])

    def rows(self, index: slice | np.ndarray) -> StatsTable:
        """The table restricted to some rows (a slice or an index array)."""
        return StatsTable(
            label_counts=self.label_counts[index],
            score_sum=self.score_sum[index],
            n_scored=self.n_scored[index],
            n_low=self.n_low[index],
            n_coded=self.n_coded[index],
            code_score_sum=self.code_score_sum[index],
            token_entropy=self.token_entropy[index],
            o_share=self.o_share[index],
            vocab=_row_slice(self.vocab, index) if isinstance(index, slice) else self.vocab[index],
            created_at=None if self.created_at is None else self.created_at[index],
        )

    @property
    def n_entities(self) -> np.ndarray:
        """Entities per note."""
        return self.label_counts.sum(axis=1)


def _row_slice(matrix: sparse.csr_matrix, index: slice) -> sparse.csr_matrix:
    """Rows ``index`` of a CSR matrix; a contiguous range is a view of the stored entries, not a copy.

    The time series cuts dozens of overlapping 10,000-note windows out of 100,000 rows: scipy's slicing copies each
    window's ~2 million entries, a view costs nothing (only ``indptr`` is shifted).
    """
    start, stop, step = index.indices(matrix.shape[0])
    if step != 1:
        return matrix[index]
    stop = max(start, stop)
    first, last = matrix.indptr[start], matrix.indptr[stop]
    view = sparse.csr_matrix((stop - start, matrix.shape[1]), dtype=matrix.dtype)
    # Set the parts directly: the constructor's format check "prunes" views of a larger buffer by copying them.
    view.data, view.indices = matrix.data[first:last], matrix.indices[first:last]
    view.indptr = (matrix.indptr[start : stop + 1] - first).astype(matrix.indices.dtype, copy=False)
    return view


def _float(values: Sequence[Any]) -> np.ndarray:
    return np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def vocab_matrix(buckets: Sequence[np.ndarray], counts: Sequence[np.ndarray]) -> sparse.csr_matrix:
    """A ``(notes, VOCAB_BUCKETS)`` CSR matrix from per-note ``(buckets, counts)`` arrays."""
    lengths = np.fromiter((len(b) for b in buckets), dtype=np.int64, count=len(buckets))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate(buckets) if len(buckets) else np.zeros(0, dtype=np.int64)
    data = np.concatenate(counts).astype(np.float64) if len(counts) else np.zeros(0)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(buckets), VOCAB_BUCKETS))


def vocab_from_blobs(blobs: Sequence[bytes | None]) -> sparse.csr_matrix:
    """A ``(notes, VOCAB_BUCKETS)`` CSR matrix of stored :func:`~engine.monitoring.profile.pack_vocab` blobs."""
    indptr, buckets, counts = unpack_vocab_many(blobs)
    return sparse.csr_matrix((counts, buckets, indptr), shape=(len(blobs), VOCAB_BUCKETS))


def from_columns(columns: dict[str, Sequence[Any]], buckets: Sequence[np.ndarray], counts: Sequence[np.ndarray],
                 created_at: Sequence[float] | None = None) -> StatsTable:
    """Build a table from column lists (keys as the :func:`profile_analysis` scalars, ``label_<LABEL>`` counts)."""
    return StatsTable(
        label_counts=np.column_stack([np.asarray(columns[f"label_{lab}"], dtype=np.int64) for lab in LABELS])
        if len(columns[f"label_{LABELS[0]}"]) else np.zeros((0, len(LABELS)), dtype=np.int64),
        score_sum=_float(columns["score_sum"]),
        n_scored=np.asarray(columns["n_scored"], dtype=np.int64),
        n_low=np.asarray(columns["n_low_confidence"], dtype=np.int64),
        n_coded=np.asarray(columns["n_coded"], dtype=np.int64),
        code_score_sum=_float(columns["code_score_sum"]),
        token_entropy=_float(columns["token_entropy"]),
        o_share=_float(columns["o_share"]),
        vocab=vocab_matrix(buckets, counts),
        created_at=None if created_at is None else np.asarray(created_at, dtype=np.float64),
    )


NUMERIC_COLUMNS = (*(f"label_{lab}" for lab in LABELS), "score_sum", "n_scored", "n_low_confidence", "n_coded",
                   "code_score_sum", "token_entropy", "o_share")
"""The scalar columns :func:`from_arrays` reads, in its column order."""


def from_arrays(numbers: np.ndarray, vocab: sparse.csr_matrix, created_at: np.ndarray | None = None) -> StatsTable:
    """A table from one ``(n, len(NUMERIC_COLUMNS))`` float array (``nan`` where unknown) and a vocabulary matrix.

    What the database layer builds from a query's rows in one ``np.array`` call, without per-column Python lists.
    """
    numbers = np.asarray(numbers, dtype=np.float64).reshape(-1, len(NUMERIC_COLUMNS))
    col = {name: numbers[:, i] for i, name in enumerate(NUMERIC_COLUMNS)}
    counts = numbers[:, : len(LABELS)]
    return StatsTable(
        label_counts=np.nan_to_num(counts).astype(np.int64),
        score_sum=col["score_sum"],
        n_scored=np.nan_to_num(col["n_scored"]).astype(np.int64),
        n_low=np.nan_to_num(col["n_low_confidence"]).astype(np.int64),
        n_coded=np.nan_to_num(col["n_coded"]).astype(np.int64),
        code_score_sum=col["code_score_sum"],
        token_entropy=col["token_entropy"],
        o_share=col["o_share"],
        vocab=vocab,
        created_at=None if created_at is None else np.asarray(created_at, dtype=np.float64),
    )


def from_profiles(profiles: Sequence[dict[str, Any]], created_at: Sequence[float] | None = None) -> StatsTable:
    """A table of :func:`~engine.monitoring.profile.profile_analysis` dicts, in the given order."""
    columns: dict[str, list[Any]] = {
        f"label_{lab}": [p["label_counts"].get(lab, 0) for p in profiles] for lab in LABELS
    }
    for key in ("score_sum", "n_scored", "n_low_confidence", "n_coded", "code_score_sum", "token_entropy", "o_share"):
        columns[key] = [p.get(key) for p in profiles]
    buckets, counts = [], []
    for p in profiles:
        pairs = np.asarray(p.get("vocab") or [], dtype=np.int64).reshape(-1, 2)
        buckets.append(pairs[:, 0])
        counts.append(pairs[:, 1])
    return from_columns(columns, buckets, counts, created_at)


def concat(tables: Sequence[StatsTable]) -> StatsTable:
    """Rows of several tables, one after another."""
    stamps = [t.created_at for t in tables]
    return StatsTable(
        label_counts=np.concatenate([t.label_counts for t in tables]),
        score_sum=np.concatenate([t.score_sum for t in tables]),
        n_scored=np.concatenate([t.n_scored for t in tables]),
        n_low=np.concatenate([t.n_low for t in tables]),
        n_coded=np.concatenate([t.n_coded for t in tables]),
        code_score_sum=np.concatenate([t.code_score_sum for t in tables]),
        token_entropy=np.concatenate([t.token_entropy for t in tables]),
        o_share=np.concatenate([t.o_share for t in tables]),
        vocab=sparse.vstack([t.vocab for t in tables], format="csr"),
        created_at=None if any(s is None for s in stamps) else np.concatenate(stamps),
    )
