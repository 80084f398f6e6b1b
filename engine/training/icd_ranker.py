"""Train the hybrid ranker and its calibration under the dev protocol, and score it on the held-out test codes.

Protocol (:mod:`engine.evaluation.icd_split`): the dev linker's index holds only the ``build`` codes' Index
wording and inclusion terms (held-out codes keep their descriptions), the encoder was trained on ``build`` codes
only. Queries of the ``ranker`` group train the LightGBM lambdarank model (first half) and fit the isotonic
calibration (second half); queries of the ``test`` group are scored once, side by side: lexical alone, dense
alone, hybrid, and character TF-IDF. Writes ``assets/models/icd_ranker/`` (``ranker.txt``, ``calibration.json``,
``config.json``, ``metrics.json``) and prints the table.

    nice -n 10 .venv/bin/python -m engine.training.icd_ranker [--queries 3000] [--encoder DIR | --plain]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from engine.evaluation.icd_split import DevQuery, held_out, inclusion_terms, queries
from engine.icd.alphabetic import read_index
from engine.icd.dense import MODEL_DIR, SynonymEncoder, vector_index
from engine.icd.linker import IcdLinker
from engine.icd.ranker import FEATURES, RANKER_DIR, Calibration, HybridRanker, features
from engine.icd.tabular import build, read_tabular
from engine.settings import Settings


def dev_linker(settings: Settings, encoder: SynonymEncoder | None) -> tuple[IcdLinker, object, object]:
    """The dev protocol's lexical linker, its dense retrieval (or ``None``) and the tabular hierarchy."""
    tab = read_tabular()
    alpha = read_index(settings.icd_index_path)
    data = build(settings, progress=False, alpha=alpha, holdout=held_out)
    linker = IcdLinker(settings, data)
    dense = None
    if encoder is not None:
        dense = (encoder, vector_index(settings, encoder, data, cache=False))
    return linker, dense, (tab, alpha)


def labelled(linker: IcdLinker, dense: object, qs: list[DevQuery]) -> list[tuple[list[int], np.ndarray, np.ndarray]]:
    """Per query: candidates, features, graded labels (2 exact code, 1 same category, 0 other)."""
    out = []
    for q in qs:
        cands, x, _ = features(linker, dense, q.text)
        codes = [linker.data.codes[c] for c in cands]
        y = np.array([2 if c == q.code else 1 if c[:3] == q.code[:3] else 0 for c in codes], dtype=np.int32)
        out.append((cands, x, y))
    return out


def fit(train: list[tuple[list[int], np.ndarray, np.ndarray]]) -> object:
    """A small LightGBM lambdarank model over the queries that have a relevant candidate."""
    import lightgbm

    rows = [(x, y) for _, x, y in train if len(y) and y.max() > 0]
    x = np.concatenate([r[0] for r in rows])
    y = np.concatenate([r[1] for r in rows])
    params = {"objective": "lambdarank", "num_leaves": 15, "learning_rate": 0.05, "min_data_in_leaf": 20,
              "feature_fraction": 0.9, "num_threads": 1, "verbose": -1, "lambdarank_truncation_level": 10,
              "seed": 3}
    ds = lightgbm.Dataset(x, y, group=[len(r[1]) for r in rows], feature_name=list(FEATURES))
    return lightgbm.train(params, ds, num_boost_round=200)


def calibrate(booster: object, held: list[tuple[list[int], np.ndarray, np.ndarray]]) -> Calibration:
    """Isotonic map of the top candidate's score to P(its category is right), on queries the model never saw."""
    from sklearn.isotonic import IsotonicRegression

    xs, ys = [], []
    for _, x, y in held:
        if not len(y):
            continue
        raw = booster.predict(x, num_threads=1)
        i = int(np.argmax(raw))
        xs.append(float(raw[i]))
        ys.append(float(y[i] >= 1))
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(xs, ys)
    return Calibration(list(map(float, iso.X_thresholds_)), list(map(float, iso.y_thresholds_)))


def accuracy(preds: list[list[str]], qs: list[DevQuery]) -> dict[str, float]:
    """Exact and category-level acc@1/@5."""
    n = max(len(qs), 1)
    return {
        "exact@1": sum(bool(p) and p[0] == q.code for p, q in zip(preds, qs, strict=True)) / n,
        "exact@5": sum(q.code in p[:5] for p, q in zip(preds, qs, strict=True)) / n,
        "cat@1": sum(bool(p) and p[0][:3] == q.code[:3] for p, q in zip(preds, qs, strict=True)) / n,
        "cat@5": sum(any(c[:3] == q.code[:3] for c in p[:5]) for p, q in zip(preds, qs, strict=True)) / n,
        "n": len(qs),
    }


def curve(probs: list[float], hits: list[bool]) -> list[dict[str, float]]:
    """Precision (category level) and coverage of the top code at each threshold."""
    out = []
    for t in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        kept = [h for p, h in zip(probs, hits, strict=True) if p >= t]
        out.append({"threshold": t, "coverage": len(kept) / max(len(hits), 1),
                    "precision": sum(kept) / max(len(kept), 1)})
    return out


def main(argv: list[str] | None = None) -> int:
    """Train, calibrate, score, write the model folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3000, help="queries per group (ranker, test)")
    parser.add_argument("--encoder", type=Path, default=MODEL_DIR)
    parser.add_argument("--plain", action="store_true", help="the untrained backbone as encoder")
    parser.add_argument("--no-dense", action="store_true")
    parser.add_argument("--out", type=Path, default=RANKER_DIR)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    settings = Settings(device="cpu")
    t0 = time.perf_counter()
    encoder = None if args.no_dense else SynonymEncoder(None if args.plain else args.encoder)
    linker, dense, (tab, alpha) = dev_linker(settings, encoder)
    inc = inclusion_terms(tab)
    q_rank = queries(tab, alpha, inc, "ranker", limit=args.queries)
    q_test = queries(tab, alpha, inc, "test", limit=args.queries)
    sys.stderr.write(f"dev linker ready in {time.perf_counter() - t0:.0f} s; {len(q_rank)} + {len(q_test)} queries\n")
    half = len(q_rank) // 2
    train = labelled(linker, dense, q_rank[:half])
    held = labelled(linker, dense, q_rank[half:])
    booster = fit(train)
    calibration = calibrate(booster, held)
    hybrid = HybridRanker(booster, calibration, dense, "dev")
    results: dict[str, dict] = {}
    lexical = [[c.code for c in linker.link(q.text)] for q in q_test]
    results["lexical + Index + rules"] = accuracy(lexical, q_test)
    if dense is not None:
        only = []
        for q in q_test:
            from engine.icd.ranker import dense_candidates

            d = dense_candidates(linker, dense, q.text)
            only.append([linker.data.codes[c] for c in sorted(d, key=lambda c: -d[c][0])])
        results["dense only (" + encoder.version + ")"] = accuracy(only, q_test)
    ranked = [hybrid.rank(q.text, linker) for q in q_test]
    results["hybrid (learned)"] = accuracy([[linker.data.codes[c] for c, _, _ in r] for r in ranked], q_test)
    results["char TF-IDF"] = tfidf_accuracy(linker, q_test)
    probs = [r[0][1] if r else 0.0 for r in ranked]
    hits = [bool(r) and linker.data.codes[r[0][0]][:3] == q.code[:3] for r, q in zip(ranked, q_test, strict=True)]
    metrics = {"protocol": "engine/evaluation/icd_split.py", "test": results, "abstention_curve": curve(probs, hits),
               "queries": {"ranker_train": half, "ranker_calibration": len(q_rank) - half, "test": len(q_test)},
               "minutes": round((time.perf_counter() - t0) / 60, 1)}
    write(args.out, booster, calibration, metrics, encoder, dense is not None)
    for name, r in results.items():
        print(f"{name:40} exact {r['exact@1']:.3f}/{r['exact@5']:.3f}  category {r['cat@1']:.3f}/{r['cat@5']:.3f}"
              f"  n={r['n']}")
    for row in metrics["abstention_curve"]:
        print(f"threshold {row['threshold']:.1f}: coverage {row['coverage']:.3f} precision {row['precision']:.3f}")
    return 0


def tfidf_accuracy(linker: IcdLinker, qs: list[DevQuery]) -> dict[str, float]:
    """The char 3-5-gram TF-IDF baseline over the dev linker's descriptions and indexed terms."""
    from engine.evaluation.icd import TfidfBaseline

    data = linker.data
    codes = [data.codes[c] for c in np.asarray(data.doc_code).tolist()]
    base = TfidfBaseline(codes, [t.removeprefix("Index: ").replace(" > ", " ") for t in data.doc_text])
    preds = []
    for q in qs:
        got = list(dict.fromkeys(base.link(q.text, k=20)))
        preds.append(got[:5])
    return accuracy(preds, qs)


def write(out: Path, booster: object, cal: Calibration, metrics: dict, encoder: object, dense: bool) -> None:
    """The model folder: ranker, calibration, config, metrics."""
    out.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(out / "ranker.txt"))
    (out / "calibration.json").write_text(json.dumps(cal.to_dict()), encoding="utf-8")
    config = {"version": f"icd-ranker-{time.strftime('%Y%m%d')}", "stage": "icd_ranker", "labels": ["score"],
              "features": list(FEATURES), "model": "LightGBM lambdarank, 200 trees of 15 leaves",
              "calibration": "isotonic, P(top code under the gold category)", "dense": dense,
              "encoder": getattr(encoder, "version", None)}
    (out / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
