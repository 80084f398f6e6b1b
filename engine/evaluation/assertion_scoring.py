"""Scores of the assertion evaluation: per-trait precision/recall/F1, the one-word assertion, error lists and the
side-by-side table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.evaluation.assertion_data import GoldDoc
from engine.types import TRAITS, assertion_from_traits, sort_traits

ASSERTIONS = ("present", "negated", "family", "hypothetical", "possible", "historical")

def score(
    gold: list[set[str]], pred: list[set[str]], trait: str, keep: list[bool] | None = None
) -> dict[str, float | int]:
    """Accuracy, precision, recall and F1 of one binary trait over the judged spans (those ``keep`` marks)."""
    tp = fp = fn = tn = 0
    keep = keep or [True] * len(gold)
    for g, p, k in zip(gold, pred, keep, strict=True):
        if not k:
            continue
        gi, pi = trait in g, trait in p
        tp += gi and pi
        fp += pi and not gi
        fn += gi and not pi
        tn += not gi and not pi
    n = tp + fp + fn + tn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": round((tp + tn) / n, 4) if n else 0.0,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "gold": tp + fn,
        "n": n,
    }


def score_assertion(gold: list[set[str]], pred: list[set[str]]) -> dict[str, float | int]:
    """Accuracy and macro F1 (over the assertions present in gold) of the contract's one-word assertion."""
    g = [assertion_from_traits(sort_traits(x & set(TRAITS))) for x in gold]
    p = [assertion_from_traits(sort_traits(x & set(TRAITS))) for x in pred]
    f1s = []
    for label in ASSERTIONS:
        if label not in g:
            continue
        tp = sum(a == label and b == label for a, b in zip(g, p, strict=True))
        fp = sum(a != label and b == label for a, b in zip(g, p, strict=True))
        fn = sum(a == label and b != label for a, b in zip(g, p, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    correct = sum(a == b for a, b in zip(g, p, strict=True))
    n = len(g)
    return {
        "accuracy": round(correct / n, 4) if n else 0.0,
        "precision": 0.0,
        "recall": 0.0,
        "f1": round(sum(f1s) / len(f1s), 4) if f1s else 0.0,
        "tp": correct,
        "fp": n - correct,
        "fn": n - correct,
        "gold": n,
        "n": n,
    }




def error_examples(
    docs: list[GoldDoc], preds: list[set[str]], limit: int, traits: Sequence[str] = ("negated", "uncertain")
) -> list[str]:
    out: list[str] = []
    k = 0
    for doc in docs:
        for item in doc.items:
            pred = preds[k]
            k += 1
            for trait in traits:
                if (trait in item.gold) != (trait in pred) and len(out) < limit:
                    kind = "FN" if trait in item.gold else "FP"
                    left = doc.text[max(0, item.start - 90) : item.start].split("\n")[-1]
                    right = doc.text[item.end : item.end + 50].split("\n")[0]
                    out.append(f"{kind} {trait} {doc.id}: {left}[[{doc.text[item.start:item.end]}]]{right}")
    return out


def format_table(report: dict[str, Any]) -> str:
    """One side-by-side table per dataset: a row per trait and system."""
    lines: list[str] = []
    for dataset, entry in report.items():
        lines.append(f"\n{dataset}: {entry['documents']} documents, {entry['spans']} spans judged")
        lines.append(f"{'trait':<12} {'system':<10} {'acc':>7} {'prec':>7} {'rec':>7} {'F1':>7} {'gold':>6} {'sec':>7}")
        for trait in entry["traits"]:
            for system, scores in entry["systems"].items():
                if trait not in scores:
                    continue
                s = scores[trait]
                # the one-word assertion has accuracy and macro F1 only
                pr = f"{'-':>7} {'-':>7}" if trait == "assertion" else f"{s['precision']:>7.4f} {s['recall']:>7.4f}"
                lines.append(
                    f"{trait:<12} {system:<10} {s['accuracy']:>7.4f} {pr} "
                    f"{s['f1']:>7.4f} {s['gold']:>6} {scores['seconds']:>7.2f}"
                )
        for error in entry.get("errors", []):
            lines.append("  " + error)
    return "\n".join(lines) + "\n"
