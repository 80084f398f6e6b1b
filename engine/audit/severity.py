"""Severity of the engine's errors on the dev sets (the seed's ranking), as counts per severity and kind.

NER errors (MACCROBAT dev reports, strict spans), each gold or predicted entity counted once, first rule wins:

- critical: a **missed diagnosis** (a gold ``DIAG`` that no predicted ``DIAG`` overlaps) or a **wrong medication**
  (a gold ``MED`` that no predicted ``MED`` overlaps, or a predicted ``MED`` that overlaps no gold ``MED``);
- moderate: **wrong anatomy** (a gold ``ANAT`` not overlapped by a predicted ``ANAT``, or a predicted ``ANAT`` over
  no gold ``ANAT``) or a **missed test** (a gold ``TEST`` that no predicted ``TEST`` overlaps);
- minor: a **boundary** error (a prediction overlapping a gold entity of its label, spans not identical);
- other: the rest (a missed procedure, a spurious diagnosis, test or procedure).

ICD errors (dev phrases, top code vs gold): critical when the gold code is not among the five suggested
(the diagnosis is effectively missed), moderate when it is but the top code is in another category (first three
characters), minor when the top code is the gold code's category at the wrong specificity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

SEVERITIES = ("critical", "moderate", "minor", "other")


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _gold_error(gold: tuple[int, int, str], preds: Sequence[tuple[int, int, str]]) -> tuple[str, str] | None:
    start, end, label = gold
    same = [p for p in preds if p[2] == label and _overlaps((start, end), p[:2])]
    if (start, end, label) in preds:
        return None
    if same:
        return "minor", f"boundary {label}"
    if label == "DIAG":
        return "critical", "missed diagnosis"
    if label == "MED":
        return "critical", "wrong medication (missed)"
    if label == "ANAT":
        return "moderate", "wrong anatomy (missed)"
    if label == "TEST":
        return "moderate", "missed test"
    return "other", f"missed {label}"


def _pred_error(pred: tuple[int, int, str], golds: Sequence[tuple[int, int, str]]) -> tuple[str, str] | None:
    start, end, label = pred
    if pred in golds or any(g[2] == label and _overlaps((start, end), g[:2]) for g in golds):
        return None  # exact, or a boundary error already counted on the gold side
    if label == "MED":
        return "critical", "wrong medication (spurious)"
    if label == "ANAT":
        return "moderate", "wrong anatomy (spurious)"
    return "other", f"spurious {label}"


def ner_severity(gold: Sequence[Sequence[tuple[int, int, str]]], predicted: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Severity counts of NER errors over documents (``predicted``: spans with ``start``, ``end``, ``label``)."""
    kinds: Counter[tuple[str, str]] = Counter()
    for gold_spans, pred_spans in zip(gold, predicted, strict=True):
        golds = [tuple(g) for g in gold_spans]
        preds = [(p.start, p.end, p.label) for p in pred_spans]
        for g in golds:
            err = _gold_error(g, preds)
            if err:
                kinds[err] += 1
        for p in preds:
            err = _pred_error(p, golds)
            if err:
                kinds[err] += 1
    return _summary(kinds)


def icd_severity(rows: Sequence[tuple[str, str, str]], ranked: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Severity counts of ICD top-code errors (``ranked``: each row's codes, best first)."""
    kinds: Counter[tuple[str, str]] = Counter()
    for (_, gold, _), codes in zip(rows, ranked, strict=True):
        top = [c.code for c in codes[:5]]
        if top and top[0] == gold:
            continue
        if gold not in top:
            kinds["critical", "gold code not suggested"] += 1
        elif top[0][:3] != gold[:3]:
            kinds["moderate", "top code in another category"] += 1
        else:
            kinds["minor", "right category, wrong specificity"] += 1
    return _summary(kinds)


def _summary(kinds: Counter[tuple[str, str]]) -> dict[str, Any]:
    by_severity = Counter()
    for (severity, _), n in kinds.items():
        by_severity[severity] += n
    total = sum(by_severity.values())
    return {
        "errors": total,
        "by_severity": {s: by_severity.get(s, 0) for s in SEVERITIES},
        "share": {s: round(by_severity.get(s, 0) / total, 4) if total else 0.0 for s in SEVERITIES},
        "by_kind": {f"{s}: {k}": n for (s, k), n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))},
    }
