"""The monitoring report: every statistic of the newest window with its threshold and whether it alerts.

:func:`build_report` is what ``python -m engine monitor`` prints and the app's Monitoring page shows; it takes
plain inputs (a :class:`StatsTable` of stored analyses in arrival order, the reference, decision rows, the
thresholds), so it runs the same on a database, a test stream or a benchmark. :func:`series` gives the same
window statistics at points along the stream, for time-series plots.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse

from engine.monitoring.drift import input_drift, levels, prediction_drift
from engine.monitoring.overrides import label_drift, override_rates
from engine.monitoring.table import StatsTable
from engine.settings import MonitorSettings

WINDOW_STATS = ("input_drift", "prediction_drift", "mean_confidence", "entities_per_note")
"""The statistics computed over the sliding window (the others come from reviewer decisions)."""
INFO_STATS = ("low_confidence_share", "mean_code_score", "token_entropy", "o_share")
"""Window means shown without a threshold (the seed sets none), beside the reference's value."""


def _stat(value: Any, threshold: Any, alert: bool, rule: str, **detail: Any) -> dict[str, Any]:
    return {"value": value, "threshold": threshold, "rule": rule, "alert": bool(alert), **detail}


def window_statistics(
    window: StatsTable,
    reference: StatsTable,
    settings: MonitorSettings,
    seed: int = 0,
    *,
    column_sums: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> dict[str, dict[str, Any]]:
    """The window statistics of :data:`WINDOW_STATS` and :data:`INFO_STATS` with thresholds and alerts.

    ``column_sums``: the window's and the reference's vocabulary bucket totals, if already known
    (:func:`engine.monitoring.drift.input_drift`).
    """
    kl = input_drift(window.vocab, reference.vocab, settings.kl_alpha, settings.kl_permutations, seed,
                     column_sums=column_sums)
    chi = prediction_drift(window.label_counts, reference.label_counts)
    now, ref = levels(window), levels(reference)
    conf, per_note = now["mean_confidence"], now["entities_per_note"]
    kl_value, p_value = kl.pop("value"), chi.pop("value")
    out = {
        "input_drift": _stat(kl_value, settings.kl_alert, kl_value is not None and kl_value > settings.kl_alert,
                             "excess vocabulary KL divergence > threshold", **kl),
        "prediction_drift": _stat(p_value, settings.chi2_p, p_value is not None and p_value < settings.chi2_p,
                                  "chi-squared p-value of the entity-label mix < threshold", **chi),
        "mean_confidence": _stat(conf, settings.min_confidence, conf is not None and conf < settings.min_confidence,
                                 "mean entity confidence < threshold", reference=ref["mean_confidence"]),
        "entities_per_note": _stat(
            per_note, [settings.min_entities, settings.max_entities],
            per_note is not None and not settings.min_entities <= per_note <= settings.max_entities,
            "mean entities per note outside [low, high]", reference=ref["entities_per_note"]),
    }
    for name in INFO_STATS:
        out[name] = _stat(now[name], None, False, "shown, no threshold", reference=ref[name])
    return out


def build_report(
    table: StatsTable,
    reference: StatsTable,
    decisions: Sequence[Mapping[str, Any]] = (),
    settings: MonitorSettings | None = None,
    window: int | None = None,
    reference_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The monitoring report of the newest ``window`` rows of ``table``.

    Args:
        table: Stored per-analysis statistics, oldest first.
        reference: The reference notes (:func:`engine.monitoring.reference.read_reference`).
        decisions: Reviewer decision rows (:mod:`engine.monitoring.overrides`).
        settings: Thresholds (default :class:`MonitorSettings` ``()``).
        window: Notes in the window (default ``settings.window``).
        reference_info: The reference profile's header, echoed in the report.

    Returns:
        ``{"window", "n_analyses", "n_window", "statistics": {name: {"value", "threshold", "rule", "alert",
        ...}}, "alerts": [names], "override_rates", "reference", "seconds"}``.
    """
    started = time.perf_counter()
    settings = settings or MonitorSettings()
    window = window or settings.window
    recent = table.rows(slice(max(0, len(table) - window), len(table)))
    statistics = window_statistics(recent, reference, settings) if len(recent) else {}
    drift = label_drift(decisions, settings.min_f1, settings.f1_consecutive, settings.min_reviewed)
    statistics["label_drift"] = _stat(
        drift["value"], settings.min_f1, drift["retrain"],
        f"weekly F1 on reviewed samples < threshold {settings.f1_consecutive} counted weeks in a row (retrain)",
        weeks=drift["weeks"], counted_weeks=drift["counted_weeks"], retrain=drift["retrain"])
    return {
        "window": window,
        "n_analyses": len(table),
        "n_window": len(recent),
        "statistics": statistics,
        "alerts": [name for name, stat in statistics.items() if stat["alert"]],
        "override_rates": override_rates(decisions),
        "reference": dict(reference_info or {}),
        "seconds": round(time.perf_counter() - started, 3),
    }


def series(
    table: StatsTable,
    reference: StatsTable,
    settings: MonitorSettings | None = None,
    window: int | None = None,
    points: int = 40,
    min_notes: int | None = None,
) -> list[dict[str, Any]]:
    """The window statistics at up to ``points`` evenly spaced ends of the stream (oldest first).

    Each point is computed on the ``window`` rows ending there (fewer at the start, at least ``min_notes``,
    default a tenth of the window), so the newest point equals :func:`build_report`'s values.

    Returns:
        ``[{"end": row count, "time": created_at of the last row or None, name: value, name + "_alert": bool}]``.
    """
    settings = settings or MonitorSettings()
    window = window or settings.window
    n = len(table)
    first = min(n, max(1, min_notes if min_notes is not None else window // 10))
    if n == 0:
        return []
    ends = np.unique(np.linspace(first, n, num=min(points, n - first + 1)).round().astype(int))
    starts = np.maximum(0, ends - window)
    window_sums = _window_bucket_sums(table.vocab, starts, ends)
    reference_sums = _window_bucket_sums(reference.vocab, np.array([0]), np.array([len(reference)]))[0]
    out = []
    for start, end, sums in zip(starts, ends, window_sums, strict=True):
        stats = window_statistics(table.rows(slice(int(start), int(end))), reference, settings,
                                  column_sums=(sums, reference_sums))
        point: dict[str, Any] = {
            "end": int(end),
            "time": None if table.created_at is None else float(table.created_at[end - 1]),
        }
        for name, stat in stats.items():
            point[name] = stat["value"]
            point[f"{name}_alert"] = stat["alert"]
        out.append(point)
    return out


def _window_bucket_sums(vocab: sparse.csr_matrix, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Bucket totals of the rows ``[starts[i], ends[i])`` of ``vocab``, one row per window.

    The series' windows overlap (40 windows of 10,000 notes over 100,000 rows cover each row about four times):
    every stored entry is counted once into the blocks between consecutive window edges, and each window adds up
    its blocks, instead of counting each window's ~2 million entries again.
    """
    cuts = np.unique(np.concatenate([starts, ends]))
    edges = vocab.indptr[cuts]
    prefix = np.zeros((len(cuts), vocab.shape[1]))  # prefix[k]: totals of the rows before cuts[k] (from cuts[0])
    for k in range(len(cuts) - 1):
        a, b = int(edges[k]), int(edges[k + 1])
        prefix[k + 1] = prefix[k] + np.bincount(vocab.indices[a:b], weights=vocab.data[a:b], minlength=vocab.shape[1])
    return prefix[np.searchsorted(cuts, ends)] - prefix[np.searchsorted(cuts, starts)]


def stream_alerts(
    table: StatsTable,
    reference: StatsTable,
    settings: MonitorSettings | None = None,
    window: int | None = None,
    step: int | None = None,
    names: Sequence[str] = ("input_drift", "prediction_drift"),
) -> list[tuple[int, list[str], dict[str, Any]]]:
    """Replay a stream as a scheduled monitor would see it: the report every ``step`` notes once a window is full.

    Args:
        table: The stream's notes in arrival order.
        reference: The reference notes.
        settings: Thresholds.
        window: Notes per window (default ``settings.window``).
        step: Notes between two reports (default a quarter of the window).
        names: The statistics whose alerts are returned.

    Returns:
        ``(notes seen, alerting statistics among names, their values)`` per report.
    """
    settings = settings or MonitorSettings()
    window = window or settings.window
    step = step or max(1, window // 4)
    out = []
    for end in range(window, len(table) + 1, step):
        stats = window_statistics(table.rows(slice(end - window, end)), reference, settings, seed=end)
        out.append((end, [n for n in names if stats[n]["alert"]], {n: stats[n]["value"] for n in names}))
    return out
