"""Calibration of the engine's scores: reliability bins, expected calibration error (ECE) and a diagram (png).

- NER: every predicted entity of the MACCROBAT dev reports (the model folder's own dev split, as
  ``python -m engine evaluate ner`` scores), its confidence against strict correctness (exact span and label).
- ICD: the top code of every row of the ICD dev phrases (``tests/fixtures/icd_dev.tsv``) except the tabular
  inclusion terms (those are in the index itself): its raw score against "the top code is the gold code", and the
  calibrated confidence ``analyze`` abstains on against "the top code is in the gold code's category".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

BINS = 10


def reliability(confidences: Sequence[float], correct: Sequence[bool], bins: int = BINS) -> dict[str, Any]:
    """Equal-width reliability bins and the ECE (the bin-size-weighted mean |accuracy - confidence|).

    Returns:
        ``{"ece", "n", "accuracy", "mean_confidence", "bins": [{"lo", "hi", "n", "confidence", "accuracy"}]}``.
    """
    conf = np.clip(np.asarray(confidences, dtype=float), 0.0, 1.0)
    ok = np.asarray(correct, dtype=float)
    index = np.minimum((conf * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        row = {"lo": b / bins, "hi": (b + 1) / bins, "n": n, "confidence": None, "accuracy": None}
        if n:
            row["confidence"] = round(float(conf[mask].mean()), 4)
            row["accuracy"] = round(float(ok[mask].mean()), 4)
            ece += n / len(conf) * abs(row["accuracy"] - row["confidence"])
        rows.append(row)
    return {
        "ece": round(float(ece), 4),
        "n": len(conf),
        "accuracy": round(float(ok.mean()), 4) if len(ok) else None,
        "mean_confidence": round(float(conf.mean()), 4) if len(conf) else None,
        "bins": rows,
    }


def plot_reliability(curves: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """Write a reliability diagram (one line per curve, bin sizes below) as a png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6.2), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    width = 1.0 / BINS / (len(curves) + 1)
    for i, (name, curve) in enumerate(curves.items()):
        used = [b for b in curve["bins"] if b["n"]]
        top.plot([b["confidence"] for b in used], [b["accuracy"] for b in used], marker="o",
                 label=f"{name} (ECE {curve['ece']:.3f}, n={curve['n']})")
        bottom.bar([b["lo"] + (i + 0.5) * width for b in curve["bins"]], [b["n"] for b in curve["bins"]],
                   width=width, label=name)
    top.set_ylabel("accuracy in bin")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_title(title)
    top.legend(loc="upper left", fontsize=8)
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("items")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ner_calibration(stage: Any, documents: Sequence[Any]) -> tuple[dict[str, Any], list[list[Any]]]:
    """Reliability of the NER stage's entity confidences on gold documents; also returns the predictions."""
    predicted = stage.predict([d.text for d in documents])
    confidences, correct = [], []
    for doc, spans in zip(documents, predicted, strict=True):
        gold = set(doc.spans)
        for span in spans:
            confidences.append(span.score)
            correct.append((span.start, span.end, span.label) in gold)
    return reliability(confidences, correct), predicted


def icd_calibration(linker: Any, rows: Sequence[tuple[str, str, str]]
                    ) -> tuple[dict[str, Any], dict[str, Any] | None, list[list[Any]]]:
    """Reliability of the ICD stage's top code on ``(phrase, gold, kind)`` rows.

    Returns:
        The raw top-code score against "the top code is the gold code"; the calibrated confidence that
        ``analyze`` abstains on (``linker.confidence``: P(right category)) against "the top code is in the gold
        code's category", ``None`` when the linker has no such map; and the ranked codes per row.
    """
    ranked = [linker.link(phrase, "DIAG", []) for phrase, _, _ in rows]
    scores = [codes[0].score if codes else 0.0 for codes in ranked]
    exact = [bool(codes) and codes[0].code == gold for codes, (_, gold, _) in zip(ranked, rows, strict=True)]
    raw = reliability(scores, exact)
    confidence = getattr(linker, "confidence", None)
    if confidence is None:
        return raw, None, ranked
    category = [bool(codes) and codes[0].code[:3] == gold[:3] for codes, (_, gold, _) in zip(ranked, rows, strict=True)]
    calibrated = reliability([confidence(s) if s else 0.0 for s in scores], category)
    return raw, calibrated, ranked
