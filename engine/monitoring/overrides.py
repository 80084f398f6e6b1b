"""Reviewer override rates and label drift from the feedback store's decisions (pure functions over rows).

A decision row is a mapping with ``id``, ``suggestion_id``, ``created_at`` (a ``datetime``, UTC), ``target``
(``entity`` or ``code``), ``decision`` (``accept``, ``reject``, ``correct``, ``add``), ``label`` (the entity's label;
for ``add`` the reviewer's) and ``code`` (for code decisions, the suggested code it is about). Only the newest
decision per suggestion, target and code counts: a reviewer who changes their mind is counted once, as they
decided last.

- Override rate: ``(reject + correct) / (accept + reject + correct)``; ``add`` (an entity the model missed) has no
  model suggestion to override, so it counts only in label drift.
- Label drift: entity-level F1 of the model on what reviewers checked, per ISO week: ``accept`` is a true
  positive, ``reject`` a false positive, ``correct`` a false positive and a false negative (the suggested span or
  label was wrong, the right one was missed), ``add`` a false negative.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

OVERRIDES = frozenset({"reject", "correct"})
DECIDED = frozenset({"accept", "reject", "correct"})


def latest_decisions(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The newest row (highest ``id``) per ``(suggestion_id, target, code)``, in ``id`` order."""
    newest: dict[tuple[Any, Any, Any], Mapping[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r["id"]):
        newest[(row["suggestion_id"], row["target"], row.get("code"))] = row
    return sorted(newest.values(), key=lambda r: r["id"])


def iso_week(when: datetime) -> str:
    """``YYYY-Www`` of a date (ISO 8601 week)."""
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def _rate(decided: int, overridden: int) -> dict[str, Any]:
    return {"decisions": decided, "overrides": overridden, "rate": round(overridden / decided, 4) if decided else None}


def _group_rates(rows: Sequence[Mapping[str, Any]], key: Any) -> dict[str, dict[str, Any]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        group = key(row)
        counts[group][0] += 1
        counts[group][1] += row["decision"] in OVERRIDES
    return {g: _rate(d, o) for g, (d, o) in sorted(counts.items())}


def override_rates(rows: Iterable[Mapping[str, Any]], top_codes: int = 25) -> dict[str, Any]:
    """Override rates overall, per ISO week, per entity label and per ICD code.

    Args:
        rows: Decision rows (see the module docstring); superseded decisions are dropped first.
        top_codes: How many codes to list (those with the most decisions).

    Returns:
        ``{"overall", "by_week": {week: rate}, "by_label": {label: rate}, "by_code": {code: rate},
        "entity_by_week", "code_by_week"}``, each rate ``{"decisions", "overrides", "rate"}``.
    """
    decided = [r for r in latest_decisions(rows) if r["decision"] in DECIDED]
    entity = [r for r in decided if r["target"] == "entity"]
    code = [r for r in decided if r["target"] == "code"]
    by_code = _group_rates(code, lambda r: r.get("code") or "(code added)")
    ranked = sorted(by_code.items(), key=lambda kv: (-kv[1]["decisions"], kv[0]))[:top_codes]
    return {
        "overall": _rate(len(decided), sum(r["decision"] in OVERRIDES for r in decided)),
        "by_week": _group_rates(decided, lambda r: iso_week(r["created_at"])),
        "entity_by_week": _group_rates(entity, lambda r: iso_week(r["created_at"])),
        "code_by_week": _group_rates(code, lambda r: iso_week(r["created_at"])),
        "by_label": _group_rates(entity, lambda r: str(r.get("label"))),
        "by_code": dict(ranked),
    }


def _f1(tp: int, fp: int, fn: int) -> float | None:
    return round(2 * tp / (2 * tp + fp + fn), 4) if tp + fp + fn else None


def label_f1_by_week(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Entity F1 on reviewed suggestions per ISO week (oldest first), with its counts and per-label F1."""
    weeks: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for row in latest_decisions(rows):
        if row["target"] != "entity":
            continue
        cell = weeks[iso_week(row["created_at"])]
        for key in ("all", str(row.get("label"))):
            tp_fp_fn = cell[key]
            decision = row["decision"]
            tp_fp_fn[0] += decision == "accept"
            tp_fp_fn[1] += decision in OVERRIDES
            tp_fp_fn[2] += decision in {"correct", "add"}
    out = []
    for week in sorted(weeks):
        cell = weeks[week]
        tp, fp, fn = cell["all"]
        out.append({
            "week": week, "tp": tp, "fp": fp, "fn": fn, "f1": _f1(tp, fp, fn), "reviewed": tp + fp + fn,
            "by_label": {lab: _f1(*c) for lab, c in sorted(cell.items()) if lab != "all"},
        })
    return out


def label_drift(
    rows: Iterable[Mapping[str, Any]], min_f1: float = 0.80, consecutive: int = 2, min_reviewed: int = 30
) -> dict[str, Any]:
    """Label drift: the newest weekly F1 and the retrain flag.

    Args:
        rows: Decision rows.
        min_f1: F1 under which a week counts as degraded.
        consecutive: Retrain when this many newest counted weeks in a row are degraded.
        min_reviewed: Weeks with fewer reviewed items (TP + FP + FN) are too noisy to count and are skipped.

    Returns:
        ``{"value": newest counted week's F1, "retrain", "weeks": [...], "counted_weeks": [...]}``.
    """
    weeks = label_f1_by_week(rows)
    counted = [w for w in weeks if w["reviewed"] >= min_reviewed and w["f1"] is not None]
    recent = counted[-consecutive:]
    retrain = len(recent) == consecutive and all(w["f1"] < min_f1 for w in recent)
    return {
        "value": counted[-1]["f1"] if counted else None,
        "retrain": bool(retrain),
        "weeks": weeks,
        "counted_weeks": [w["week"] for w in counted],
    }
