"""The abstention threshold measured on coded notes: code-level precision and recall at each threshold.

An ``analyze`` entity whose best code's calibrated confidence is under ``settings.icd_min_score`` shows no code,
its suggestions folded into ``candidates`` (issue 15, class 4). One analysis is enough to score every threshold at
or above the one it ran with: an entity's best code is its first code, or else its first candidate, and its
confidence is what the ICD stage's ``confidence(score)`` gives that code's score. Thresholds under the one the
analysis ran with are scored the same way, since the candidates are kept (exam descriptors have none at any
threshold, as in the engine).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

DEFAULT_THRESHOLDS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9)


def scored_codes(result: dict[str, Any], confidence: Callable[[float], float]) -> list[tuple[str, float]]:
    """``(best code, calibrated confidence)`` of each ``DIAG`` entity of a result that has a code or candidate."""
    out = []
    for entity in result.get("entities", []):
        if entity.get("label") != "DIAG":
            continue
        ranked = entity.get("codes") or entity.get("candidates") or []
        if ranked:
            out.append((ranked[0]["code"], float(confidence(float(ranked[0]["score"])))))
    return out


def at_threshold(scored: Sequence[Sequence[tuple[str, float]]], threshold: float) -> list[set[str]]:
    """Each note's predicted codes when entities under ``threshold`` abstain."""
    return [{code for code, conf in note if conf >= threshold} for note in scored]


def sweep_table(
    notes: Sequence[Any],
    results: Sequence[dict[str, Any]],
    confidence: Callable[[float], float],
    score: Callable[[Sequence[Any], Sequence[set[str]]], dict[str, Any]],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    current: float | None = None,
) -> str:
    """Code-level P, strict P and R over all ``notes`` at each threshold (``*`` marks the engine's setting).

    ``score`` is :func:`engine.evaluation.coding.score` (passed in: that module imports this one).
    """
    scored = [scored_codes(r, confidence) for r in results]
    lines = [f"{'threshold':>10}{'P':>8}{'P strict':>10}{'R':>8}{'pred':>7}"]
    for t in thresholds:
        fig = score(notes, at_threshold(scored, t))["all"].figures()
        mark = " *" if current is not None and abs(t - current) < 1e-9 else ""
        lines.append(
            f"{t:>10.2f}{fig['precision']:>8.3f}{fig['precision_strict']:>10.3f}{fig['recall']:>8.3f}"
            f"{fig['predicted']:>7}{mark}"
        )
    return "\n".join(lines)
