"""Drift statistics of a window of notes against a reference (pure functions over :class:`StatsTable` rows).

Input drift
    The Kullback-Leibler divergence ``KL(P_window || Q_reference)`` of the hashed unigram distributions, each
    smoothed by adding ``alpha`` (default 0.5, Krichevsky-Trofimov) to every one of the 16,384 buckets. A plug-in KL
    of finite samples is biased upwards: two samples of 100 MTSamples notes from the same pool score about 0.18, of
    400 notes about 0.07 (``docs/monitoring.md``). So the statistic that is compared with the threshold is the
    *excess* KL: the observed KL minus its mean under no drift, estimated by permutation (the window's and the
    reference's notes pooled and re-split at random into the same two sizes, ``permutations`` times). With a
    window of 10,000 notes the correction is small and the seed's 0.15 keeps its meaning; with the short windows a
    test can afford, it is what keeps same-distribution windows from alerting.

Prediction drift
    Pearson's chi-squared test of homogeneity of the entity-label mix (window vs reference, a 2 x labels table),
    with the Rao-Scott first-order correction: entities come in notes, and a note's entities share its topic (a
    medication list, an imaging report), so counts vary more than a multinomial of independent entities would.
    ``X2 / d`` with ``d`` the mean design effect (never below 1) is referred to chi-squared with ``labels - 1``
    degrees of freedom.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse, stats

from engine.monitoring.profile import VOCAB_BUCKETS
from engine.monitoring.table import StatsTable
from engine.types import LABELS

DEFAULT_ALPHA = 0.5
DEFAULT_PERMUTATIONS = 30


def kl_divergence(window_counts: np.ndarray, reference_counts: np.ndarray, alpha: float = DEFAULT_ALPHA) -> float:
    """``KL(P || Q)`` in nats of two count vectors over the same buckets, each add-``alpha`` smoothed."""
    p = (window_counts + alpha) / (window_counts.sum() + alpha * window_counts.shape[0])
    q = (reference_counts + alpha) / (reference_counts.sum() + alpha * reference_counts.shape[0])
    return float(np.sum(p * np.log(p / q)))


def _column_sums(matrix: sparse.csr_matrix) -> np.ndarray:
    # bincount over the stored entries: several times faster than ``matrix.sum(axis=0)`` (a product with ones).
    return np.bincount(matrix.indices, weights=matrix.data, minlength=matrix.shape[1]).astype(np.float64)


def _rows_sum(matrix: sparse.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Column sums of some rows of a CSR matrix, gathering their stored entries directly (no sub-matrix)."""
    if rows.size == 0:
        return np.zeros(matrix.shape[1])
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    entries = offsets + np.arange(int(lengths.sum()))
    return np.bincount(matrix.indices[entries], weights=matrix.data[entries], minlength=matrix.shape[1])


def input_drift(
    window: sparse.csr_matrix,
    reference: sparse.csr_matrix,
    alpha: float = DEFAULT_ALPHA,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    *,
    column_sums: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> dict[str, Any]:
    """Excess vocabulary KL divergence of a window of notes over a reference set of notes.

    Args:
        window: ``(n, buckets)`` hashed unigram counts of the window's notes.
        reference: ``(m, buckets)`` counts of the reference notes (the training distribution).
        alpha: Additive smoothing per bucket.
        permutations: Random re-splits of the pooled notes that estimate the KL expected without drift.
        seed: Seed of those re-splits (the statistic is deterministic for given rows).
        column_sums: The window's and the reference's bucket totals when the caller has them already (the time
            series sums its overlapping windows from shared blocks); each ``None`` is summed here.

    Returns:
        ``{"value": excess KL, "kl", "null_mean", "null_sd", "p_value", "n_window", "n_reference"}``; ``value``
        is ``None`` when either side has no words.
    """
    n, m = window.shape[0], reference.shape[0]
    w_counts = _column_sums(window) if column_sums[0] is None else np.asarray(column_sums[0], dtype=np.float64)
    r_counts = _column_sums(reference) if column_sums[1] is None else np.asarray(column_sums[1], dtype=np.float64)
    out: dict[str, Any] = {"n_window": int(n), "n_reference": int(m)}
    if n == 0 or m == 0 or w_counts.sum() == 0 or r_counts.sum() == 0:
        return {**out, "value": None, "kl": None, "null_mean": None, "null_sd": None, "p_value": None}
    observed = kl_divergence(w_counts, r_counts, alpha)
    total = w_counts + r_counts
    rng = np.random.default_rng(seed)
    small, small_is_reference = (m, True) if m <= n else (n, False)
    null = np.empty(permutations)
    for i in range(permutations):
        # Only the smaller side is summed (from the rows of both matrices it drew); the other is the total minus it.
        drawn = rng.choice(n + m, size=small, replace=False)
        part = _rows_sum(window, drawn[drawn < n]) + _rows_sum(reference, drawn[drawn >= n] - n)
        ref_part, win_part = (part, total - part) if small_is_reference else (total - part, part)
        null[i] = kl_divergence(win_part, ref_part, alpha)
    null_mean = float(null.mean()) if permutations else 0.0
    p_value = float((1 + np.sum(null >= observed)) / (1 + permutations)) if permutations else None
    return {
        **out,
        "value": round(observed - null_mean, 5),
        "kl": round(observed, 5),
        "null_mean": round(null_mean, 5),
        "null_sd": round(float(null.std(ddof=1)), 5) if permutations > 1 else None,
        "p_value": p_value,
    }


def _cluster_variance(counts: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Variance of each label's share ``sum(y_k) / sum(m)`` over notes (ratio estimator, notes as clusters)."""
    n = counts.shape[0]
    m = counts.sum(axis=1, keepdims=True)
    total = float(m.sum())
    if n < 2 or total == 0:
        return np.zeros(counts.shape[1])
    resid = counts - m * p[None, :]
    return n / (n - 1) * (resid**2).sum(axis=0) / total**2


def prediction_drift(window_counts: np.ndarray, reference_counts: np.ndarray) -> dict[str, Any]:
    """Chi-squared test (Rao-Scott corrected) that the window's entity-label mix is the reference's.

    Args:
        window_counts: ``(n, labels)`` entity counts per note of the window.
        reference_counts: ``(m, labels)`` counts per reference note.

    Returns:
        ``{"value": p-value, "chi2", "chi2_corrected", "design_effect", "dof", "window_mix", "reference_mix"}``;
        ``value`` is ``None`` when either side has no entities.
    """
    w, r = window_counts.sum(axis=0).astype(float), reference_counts.sum(axis=0).astype(float)
    mix = {"window_mix": _mix(w), "reference_mix": _mix(r)}
    keep = (w + r) > 0
    if w.sum() == 0 or r.sum() == 0 or keep.sum() < 2:
        return {"value": None, "chi2": None, "chi2_corrected": None, "design_effect": None, "dof": None, **mix}
    table = np.vstack([w[keep], r[keep]])
    chi2 = float(stats.chi2_contingency(table, correction=False)[0])
    pooled = table.sum(axis=0) / table.sum()
    v = _cluster_variance(window_counts[:, keep], pooled) + _cluster_variance(reference_counts[:, keep], pooled)
    srs = pooled * (1 - pooled) * (1 / w.sum() + 1 / r.sum())
    dof = int(keep.sum()) - 1
    deff = float(np.sum((1 - pooled) * np.divide(v, srs, out=np.ones_like(v), where=srs > 0)) / dof)
    deff = max(1.0, deff)
    corrected = chi2 / deff
    return {
        "value": float(stats.chi2.sf(corrected, dof)),
        "chi2": round(chi2, 3),
        "chi2_corrected": round(corrected, 3),
        "design_effect": round(deff, 3),
        "dof": dof,
        **mix,
    }


def _mix(counts: np.ndarray) -> dict[str, float]:
    total = counts.sum()
    return {lab: round(float(c / total), 4) if total else 0.0 for lab, c in zip(LABELS, counts, strict=True)}


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return round(float(finite.mean()), 5) if finite.size else None


def levels(table: StatsTable) -> dict[str, float | None]:
    """Window means: entity confidence (over entities), entities per note, low-confidence share, top ICD code
    score, token entropy and ``O`` share (over notes that have them)."""
    n_scored = float(table.n_scored.sum())
    n_coded = float(table.n_coded.sum())
    return {
        "mean_confidence": round(float(np.nansum(table.score_sum) / n_scored), 5) if n_scored else None,
        "entities_per_note": round(float(table.n_entities.mean()), 4) if len(table) else None,
        "low_confidence_share": round(float(table.n_low.sum() / n_scored), 5) if n_scored else None,
        "mean_code_score": round(float(np.nansum(table.code_score_sum) / n_coded), 5) if n_coded else None,
        "token_entropy": _nanmean(table.token_entropy),
        "o_share": _nanmean(table.o_share),
    }


def empty_vocab(rows: int = 0) -> sparse.csr_matrix:
    """An all-zero vocabulary matrix."""
    return sparse.csr_matrix((rows, VOCAB_BUCKETS))
