"""Train the hybrid ranker and its calibration under the dev protocol, and score it on the held-out test codes.

Protocol (:mod:`engine.evaluation.icd_split`): the dev linker's index holds only the ``build`` codes' Index
wording and inclusion terms (held-out codes keep their descriptions); the dense retriever is the plain MiniLM
(``--plain``, no training at all) or the encoder trained on ``build`` codes only. The ``ranker`` group's queries
are split again by category (:func:`fold_of`): ``train`` categories fit the model, ``validation`` categories
choose its number of trees and fit the isotonic calibration; queries of the ``test`` group are scored once, side
by side: lexical (the shipped linker), dense alone, the learned fusions (LightGBM lambdarank with monotone evidence
features, the same unconstrained, logistic regression) and character TF-IDF. ``--fresh`` also scores the
hand-written sets (``tests/fixtures/icd_dev.tsv`` and ``icd_blind_clinician.tsv``, their inclusion terms held out
of the index as in ``python -m engine evaluate icd``) with the same models in the same run. Writes
``assets/models/icd_ranker/`` (``ranker.txt``, ``calibration.json``, ``config.json``, ``metrics.json``) and prints
the tables.

    nice -n 10 .venv/bin/python -m engine.training.icd_ranker [--queries 3000] [--plain [--layers N]] [--fresh]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from engine.evaluation.icd_split import DevQuery, held_out, inclusion_terms, queries
from engine.icd.alphabetic import read_index
from engine.icd.dense import MODEL_DIR, SynonymEncoder, vector_index
from engine.icd.linker import IcdLinker
from engine.icd.ranker import FEATURES, MONOTONE, RANKER_DIR, Calibration, features
from engine.icd.tabular import build, read_tabular
from engine.settings import Settings

Labelled = list[tuple[list[int], np.ndarray, np.ndarray]]


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


def fold_of(code: str) -> str:
    """``train`` (2/3) or ``validation`` (1/3) for a ``ranker``-group code, by another hash of its category."""
    h = int(hashlib.sha1(("fold:" + code[:3].upper()).encode()).hexdigest()[:8], 16) % 3
    return "validation" if h == 0 else "train"


def labelled(linker: IcdLinker, dense: object, qs: list[DevQuery]) -> Labelled:
    """Per query: candidates, features, graded labels (2 exact code, 1 same category, 0 other)."""
    out = []
    for q in qs:
        cands, x, _ = features(linker, dense, q.text)
        codes = [linker.data.codes[c] for c in cands]
        y = np.array([2 if c == q.code else 1 if c[:3] == q.code[:3] else 0 for c in codes], dtype=np.int32)
        out.append((cands, x, y))
    return out


def _dataset(rows: Labelled, reference: object = None) -> object:
    import lightgbm

    kept = [(x, y) for _, x, y in rows if len(y) and y.max() > 0]
    return lightgbm.Dataset(np.concatenate([r[0] for r in kept]), np.concatenate([r[1] for r in kept]),
                            group=[len(r[1]) for r in kept], feature_name=list(FEATURES), reference=reference)


def fit(train: Labelled, valid: Labelled, monotone: bool = True) -> object:
    """A small LightGBM lambdarank model; trees chosen by NDCG@1 on the validation categories."""
    import lightgbm

    params = {"objective": "lambdarank", "num_leaves": 15, "learning_rate": 0.05, "min_data_in_leaf": 20,
              "feature_fraction": 0.9, "num_threads": 1, "verbose": -1, "lambdarank_truncation_level": 10,
              "seed": 3, "metric": "ndcg", "eval_at": [1]}
    if monotone:
        params["monotone_constraints"] = [MONOTONE.get(f, 0) for f in FEATURES]
        params["monotone_constraints_method"] = "intermediate"
    ds = _dataset(train)
    vs = _dataset(valid, ds)
    return lightgbm.train(params, ds, num_boost_round=400, valid_sets=[vs],
                          callbacks=[lightgbm.early_stopping(40, verbose=False)])


class LogisticFusion:
    """Logistic regression on standardised features (label: candidate under the gold category)."""

    def __init__(self, train: Labelled) -> None:
        from sklearn.linear_model import LogisticRegression

        x = np.concatenate([r[1] for r in train if len(r[2])])
        y = np.concatenate([r[2] for r in train if len(r[2])]) >= 1
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        self.model = LogisticRegression(C=1.0, max_iter=2000).fit((x - self.mean) / self.std, y)

    def predict(self, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
        """Decision values (higher is better)."""
        return self.model.decision_function((x - self.mean) / self.std)


def calibrate(model: object, held: Labelled) -> Calibration:
    """Isotonic map of the top candidate's score to P(its category is right), on queries the model never saw."""
    from sklearn.isotonic import IsotonicRegression

    xs, ys = [], []
    for _, x, y in held:
        if not len(y):
            continue
        raw = model.predict(x, num_threads=1)
        i = int(np.argmax(raw))
        xs.append(float(raw[i]))
        ys.append(float(y[i] >= 1))
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(xs, ys)
    return Calibration(list(map(float, iso.X_thresholds_)), list(map(float, iso.y_thresholds_)))


def ranked_codes(linker: IcdLinker, rows: Labelled, model: object | None) -> list[list[str]]:
    """Top-5 codes per query ordered by a model (``None``: by dense cosine among the dense candidates)."""
    out = []
    col = FEATURES.index("dense_cos")
    inside = FEATURES.index("in_dense")
    for cands, x, _ in rows:
        if not cands:
            out.append([])
            continue
        if model is None:
            keep = [i for i in range(len(cands)) if x[i, inside] > 0]
            order = sorted(keep, key=lambda i: -x[i, col])
        else:
            order = np.argsort(-model.predict(x, num_threads=1), kind="stable").tolist()
        out.append([linker.data.codes[cands[i]] for i in order[:5]])
    return out


def recall(linker: IcdLinker, rows: Labelled, qs: list[DevQuery]) -> dict[str, float]:
    """Whether the gold code (exact) or its category is among the fused candidates (read off ``@1``)."""
    preds = []
    for (cands, _, _), q in zip(rows, qs, strict=True):
        codes = [linker.data.codes[c] for c in cands]
        preds.append(sorted(codes, key=lambda c: (c != q.code, c[:3] != q.code[:3])))
    return accuracy(preds, qs)


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


def train_models(
    linker: IcdLinker, dense: object, q_rank: list[DevQuery], q_build: list[DevQuery]
) -> tuple[dict[str, object], Labelled]:
    """The fusions fitted on the ``train`` categories (validation rows returned for the calibration).

    ``q_build`` (``--mix``): queries of ``build`` codes, whose wording *is* indexed, added to both folds so the
    model also sees mentions that are Index entries (a strong lexical match is then right, as in use).
    """
    t0 = time.perf_counter()
    train = labelled(linker, dense, [q for q in q_rank + q_build if fold_of(q.code) == "train"])
    valid = labelled(linker, dense, [q for q in q_rank + q_build if fold_of(q.code) == "validation"])
    sys.stderr.write(f"features of {len(train)} + {len(valid)} queries in {time.perf_counter() - t0:.0f} s\n")
    models = {"fusion, LightGBM monotone": fit(train, valid), "fusion, LightGBM unconstrained": fit(train, valid,
              monotone=False), "fusion, logistic regression": LogisticFusion(train)}
    return models, valid


def main(argv: list[str] | None = None) -> int:
    """Train, calibrate, score, write the model folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3000, help="queries per group (ranker, test)")
    parser.add_argument("--encoder", type=Path, default=MODEL_DIR)
    parser.add_argument("--plain", action="store_true", help="the untrained backbone as encoder")
    parser.add_argument("--layers", type=int, help="with --plain: keep the first N layers")
    parser.add_argument("--mix", type=int, default=0, help="build-group queries (indexed wording) added to training")
    parser.add_argument("--fresh", action="store_true", help="also score the hand-written sets, same models")
    parser.add_argument("--enable", action="store_true", help='write "enabled": true in config.json')
    parser.add_argument("--out", type=Path, default=RANKER_DIR)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    settings = Settings(device="cpu")
    t0 = time.perf_counter()
    encoder = SynonymEncoder(None, layers=args.layers) if args.plain else SynonymEncoder(args.encoder)
    linker, dense, (tab, alpha) = dev_linker(settings, encoder)
    inc = inclusion_terms(tab)
    q_rank = queries(tab, alpha, inc, "ranker", limit=args.queries)
    q_test = queries(tab, alpha, inc, "test", limit=args.queries)
    sys.stderr.write(f"dev linker ready in {time.perf_counter() - t0:.0f} s; {len(q_rank)} + {len(q_test)} queries\n")
    q_build = queries(tab, alpha, inc, "build", limit=args.mix) if args.mix else []
    models, valid = train_models(linker, dense, q_rank, q_build)
    test = labelled(linker, dense, q_test)
    results: dict[str, dict] = {
        "lexical + Index + rules (shipped)": accuracy([[c.code for c in linker.link(q.text)] for q in q_test], q_test),
        f"dense only ({encoder.version})": accuracy(ranked_codes(linker, test, None), q_test),
        "char TF-IDF": tfidf_accuracy(linker, q_test),
    }
    for name, model in models.items():
        results[name] = accuracy(ranked_codes(linker, test, model), q_test)
    results["candidate recall (union; @1 = in the union)"] = recall(linker, test, q_test)
    booster = models["fusion, LightGBM monotone"]
    calibration = calibrate(booster, valid)
    probs, hits = [], []
    for (cands, x, y), _q in zip(test, q_test, strict=True):
        raw = booster.predict(x, num_threads=1) if cands else np.zeros(0)
        probs.append(float(calibration(raw[[int(np.argmax(raw))]])[0]) if cands else 0.0)
        hits.append(bool(cands) and bool(y[int(np.argmax(raw))] >= 1))
    metrics = {"protocol": "engine/evaluation/icd_split.py + fold_of", "test": results,
               "abstention_curve": curve(probs, hits), "trees": booster.best_iteration or booster.num_trees(),
               "queries": {"ranker_train": sum(fold_of(q.code) == "train" for q in q_rank),
                           "ranker_validation": sum(fold_of(q.code) == "validation" for q in q_rank),
                           "build_mix": len(q_build), "test": len(q_test)},
               "minutes": round((time.perf_counter() - t0) / 60, 1)}
    for name, r in results.items():
        print(f"{name:42} exact {r['exact@1']:.3f}/{r['exact@5']:.3f}  category {r['cat@1']:.3f}/{r['cat@5']:.3f}"
              f"  n={r['n']}")
    for row in metrics["abstention_curve"]:
        print(f"threshold {row['threshold']:.1f}: coverage {row['coverage']:.3f} precision {row['precision']:.3f}")
    if args.fresh:
        metrics["fresh"] = fresh_sets(settings, encoder, models)
    write(args.out, booster, calibration, metrics, encoder, args)
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


def write(out: Path, booster: object, cal: Calibration, metrics: dict, encoder: object, args: object) -> None:
    """The model folder: ranker, calibration, config, metrics."""
    out.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(out / "ranker.txt"), num_iteration=booster.best_iteration or None)
    (out / "calibration.json").write_text(json.dumps(cal.to_dict()), encoding="utf-8")
    config = {"version": f"icd-ranker-{time.strftime('%Y%m%d')}", "stage": "icd_ranker", "labels": ["score"],
              "features": list(FEATURES), "monotone": {f: MONOTONE.get(f, 0) for f in FEATURES},
              "model": f"LightGBM lambdarank, {metrics['trees']} trees of 15 leaves, monotone evidence features",
              "calibration": "isotonic, P(top code under the gold category)", "dense": True,
              "encoder": getattr(encoder, "version", None), "encoder_kind": "plain" if args.plain else "folder",
              "encoder_layers": args.layers, "mix": args.mix, "enabled": bool(args.enable)}
    (out / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")


def fresh_sets(settings: Settings, encoder: object, models: dict[str, object]) -> dict[str, dict]:
    """Print and return ``{system: {"exact": {kind: (acc1, acc5, n)}, "category": {...}}}``."""
    from engine.evaluation.icd import BLIND_CLINICIAN, DEFAULT_DEV, TfidfBaseline, category_score, read_dev, score
    from engine.icd import tabular as tb
    from engine.icd.store import load_alpha

    rows = [r for path in (DEFAULT_DEV, BLIND_CLINICIAN) for r in read_dev(path)]
    held = {(gold, phrase.lower()) for phrase, gold, kind in rows if kind == "inclusion"}
    alpha, notice, _ = load_alpha(settings.icd_index_path)
    if notice:
        sys.stderr.write(f"warning: {notice}\n")
    data = tb.build(settings, exclude=held, progress=False, alpha=alpha)
    linker = IcdLinker(settings, data)
    dense = (encoder, vector_index(settings, encoder, data))
    qs = [_Query(p, g) for p, g, _ in rows]
    feats = labelled(linker, dense, qs)
    systems: dict[str, list[list[str]]] = {"lexical + Index + rules (shipped)": [[c.code for c in linker.link(p)]
                                                                               for p, _, _ in rows]}
    systems[f"dense only ({encoder.version})"] = ranked_codes(linker, feats, None)
    for name, model in models.items():
        systems[name] = ranked_codes(linker, feats, model)
    codes = [data.codes[c] for c in np.asarray(data.doc_code).tolist()]
    base = TfidfBaseline(codes, [t.removeprefix("Index: ").replace(" > ", " ") for t in data.doc_text])
    systems["char TF-IDF"] = [list(dict.fromkeys(base.link(p, k=20)))[:5] for p, _, _ in rows]
    kinds = ["all", *dict.fromkeys(k for _, _, k in rows)]
    out: dict[str, dict] = {}
    for measure, fn in (("exact", score), ("category", category_score)):
        print(f"\nhand-written sets, {measure}: acc@1 / acc@5 (n)")
        print(f"{'system':42} " + " ".join(f"{k:>20}" for k in kinds))
        for name, preds in systems.items():
            res = fn(preds, rows)
            out.setdefault(name, {})[measure] = res
            print(f"{name:42} " + " ".join(f"{res[k][0]:.3f} / {res[k][1]:.3f} ({res[k][2]})".rjust(20) for k in kinds))
    return out


class _Query:
    """A row as :func:`engine.training.icd_ranker.labelled` reads it."""

    def __init__(self, text: str, code: str) -> None:
        self.text = text
        self.code = code


if __name__ == "__main__":
    raise SystemExit(main())
