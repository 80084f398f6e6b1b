"""Calibrate the lexical linker's top score to P(the code is under the gold category), under the dev protocol.

The dev linker (:func:`engine.training.icd_ranker.dev_linker`, held-out codes' wording removed) links the
``ranker`` group's queries; an isotonic regression of the top code's score on whether its category is right is
written to ``assets/models/icd_ranker/lexical_calibration.json`` and scored on the ``test`` group (precision and
coverage of the top code per threshold, printed and stored with it). ``analyze`` abstains below
``icd_min_score`` on this calibrated value.

    nice -n 10 .venv/bin/python -m engine.training.icd_calibration
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engine.evaluation.icd_split import inclusion_terms, queries
from engine.icd.ranker import RANKER_DIR, Calibration
from engine.settings import Settings
from engine.training.icd_ranker import curve, dev_linker


def main(argv: list[str] | None = None) -> int:
    """Fit, score and write the calibration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=RANKER_DIR / "lexical_calibration.json")
    args = parser.parse_args(argv)
    from sklearn.isotonic import IsotonicRegression

    linker, _, (tab, alpha) = dev_linker(Settings(device="cpu"), None)
    inc = inclusion_terms(tab)

    def top(group: str) -> tuple[list[float], list[bool]]:
        scores, hits = [], []
        for q in queries(tab, alpha, inc, group, limit=args.queries):
            codes = linker.link(q.text)
            scores.append(codes[0].score if codes else 0.0)
            hits.append(bool(codes) and codes[0].code[:3] == q.code[:3])
        return scores, hits

    x, y = top("ranker")
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(x, [float(h) for h in y])
    cal = Calibration(list(map(float, iso.X_thresholds_)), list(map(float, iso.y_thresholds_)))
    tx, ty = top("test")
    rows = curve([float(p) for p in cal(np.asarray(tx))], ty)
    args.out.write_text(json.dumps({**cal.to_dict(), "test_curve": rows, "fit_queries": len(x),
                                    "test_queries": len(tx)}, indent=1), encoding="utf-8")
    for row in rows:
        print(f"threshold {row['threshold']:.1f}: coverage {row['coverage']:.3f} precision {row['precision']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
