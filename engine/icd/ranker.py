"""The learned hybrid ranker: lexical, dense and Index evidence fused by a small LightGBM model, then calibrated.

Candidates of a mention are the billable codes of the lexical top 30 (:mod:`engine.icd.scoring`, with the side,
acuity and sequela context already applied) and of the dense top 40 strings (:mod:`engine.icd.dense`, categories
resolved to their default or sided billable child). Each candidate gets the features of :data:`FEATURES`; a
LightGBM lambdarank model (``assets/models/icd_ranker/ranker.txt``) orders them, and an isotonic map
(``calibration.json``, fitted on held-out queries) turns the model's score into P(the code is under the right
category), the ``score`` a code carries. Trained under the dev protocol (``python -m engine.training.icd_ranker``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.icd.attributes import SIDES
from engine.icd.scoring import Ranked
from engine.icd.tabular import IndexData
from engine.settings import ASSETS_DIR, Settings

RANKER_DIR = ASSETS_DIR / "models" / "icd_ranker"
FEATURES = (
    "lex_score", "lex_rel", "lex_rrank", "dense_cos", "dense_gap", "dense_rrank", "cat_lex_rel", "cat_dense_gap",
    "in_lex", "in_dense", "default_child", "n_words", "lex_top", "dense_top",
    "desc_cos", "desc_gap", "query_cover", "desc_cover", "depth",
)
"""No feature says whether the lexical evidence is an Index path or a description: under the dev protocol the
held-out gold codes keep only their descriptions, so such a feature learns "Index evidence = wrong" (measured: the
first ranker with them fell from 0.949 to 0.869 category acc@1 on the dev + blind sets). For the same reason the
evidence features are constrained monotone (:data:`MONOTONE`): a better lexical or dense match can never lower a
candidate, so the model cannot learn "a strong match of a code whose wording is indexed is a wrong neighbour", which
is true of the protocol's held-out queries only. ``desc_*`` compare the mention with the candidate's tabular
description alone, which every code has under the protocol and in use alike."""
MONOTONE = {
    "lex_score": 1, "lex_rel": 1, "lex_rrank": 1, "dense_cos": 1, "dense_gap": 1, "dense_rrank": 1,
    "cat_lex_rel": 1, "cat_dense_gap": 1, "in_lex": 1, "in_dense": 1, "desc_cos": 1, "desc_gap": 1,
    "query_cover": 1, "desc_cover": 1,
}
LEX_TOP = 30
DENSE_K = 40


def _side(linker: object, text: str) -> str | None:
    stems = {s for v in linker.scorer.reader.read(text, sites=False).variants for s in v}
    sides = {SIDES[w] for w in stems if w in SIDES}
    return sides.pop() if len(sides) == 1 else None


def query_vector(linker: object, dense: object, text: str) -> np.ndarray:
    """The encoder's vector of a mention (abbreviations expanded)."""
    return dense[0].embed([linker.scorer.reader.expand_abbreviations(text)])[0]


def dense_candidates(
    linker: object, dense: object, text: str, vec: np.ndarray | None = None
) -> dict[int, tuple[float, str]]:
    """Billable codes of the nearest strings: ``{code index: (cosine, matched string)}``."""
    vindex = dense[1]
    tables = linker.tables
    vec = query_vector(linker, dense, text) if vec is None else vec
    side = _side(linker, text)
    out: dict[int, tuple[float, str]] = {}
    for key, ci, sim in vindex.search_strings(vec, DENSE_K):
        leaf = ci
        if not tables.billable[ci]:
            leaf = tables.sided.get((ci, side), tables.default_leaf[ci]) if side else tables.default_leaf[ci]
            if not tables.billable[leaf]:
                continue
            sim *= 0.995
        if sim > out.get(leaf, (-2.0, ""))[0]:
            out[leaf] = (sim, vindex.strings[key] if vindex.strings else "")
    return out


def description_cosines(linker: object, vindex: object, vec: np.ndarray, cands: list[int]) -> np.ndarray:
    """Cosine of the mention with each candidate's tabular description (its vector decoded from the index)."""
    keys = vindex.description_keys(linker.data)
    got = np.asarray([keys[ci] for ci in cands], dtype=np.int64)
    out = np.zeros(len(cands), dtype=np.float32)
    ok = got >= 0
    if ok.any():
        out[ok] = vindex.vectors(got[ok]) @ np.asarray(vec, dtype=np.float32)
    return out


def _lexical(linker: object, text: str) -> dict[int, tuple[float, str, int]]:
    lex: dict[int, tuple[float, str, int]] = {}
    tables = linker.tables
    for r, (ci, s, ev) in enumerate(x for x in linker.scorer.rank(text) if tables.billable[x[0]]):
        if r >= LEX_TOP:
            break
        lex.setdefault(ci, (s, ev, r))
    return lex


def _covers(linker: object, text: str, cands: list[int]) -> tuple[list[float], list[float]]:
    """Share of the mention's stems in each description, and of each description's stems in the mention."""
    split = linker.scorer.reader.split
    q = set(split(linker.scorer.reader.expand_abbreviations(text))[0])
    qc, dc = [], []
    for ci in cands:
        d = set(split(linker.tables.desc_lower[ci])[0])
        common = len(q & d)
        qc.append(common / max(len(q), 1))
        dc.append(common / max(len(d), 1))
    return qc, dc


def features(linker: object, dense: object | None, text: str) -> tuple[list[int], np.ndarray, list[str]]:
    """``(candidate code indexes, feature matrix, evidence)`` of a mention (see :data:`FEATURES`)."""
    tables = linker.tables
    lex = _lexical(linker, text)
    vec = query_vector(linker, dense, text) if dense is not None else None
    den = dense_candidates(linker, dense, text, vec) if dense is not None else {}
    den_rank = {ci: r for r, ci in enumerate(sorted(den, key=lambda c: -den[c][0]))}
    cands = list(dict.fromkeys([*lex, *den]))
    if not cands:
        return [], np.zeros((0, len(FEATURES)), dtype=np.float32), []
    desc = description_cosines(linker, dense[1], vec, cands) if dense is not None else np.zeros(len(cands))
    floor = min((v[0] for v in den.values()), default=-1.0)
    top_l = max((v[0] for v in lex.values()), default=0.0) or 1e-6
    top_d = max((v[0] for v in den.values()), default=0.0)
    top_desc = float(desc.max())
    cat_l: dict[str, float] = {}
    cat_d: dict[str, float] = {}
    for ci in cands:
        cat = linker.data.codes[ci][:3]
        cat_l[cat] = max(cat_l.get(cat, 0.0), lex.get(ci, (0.0,))[0])
        cat_d[cat] = max(cat_d.get(cat, -1.0), den.get(ci, (-1.0,))[0])
    n_words = len(linker.scorer.reader.split(text)[0])
    q_cover, d_cover = _covers(linker, text, cands)
    rows, evidence = [], []
    for j, ci in enumerate(cands):
        ls, lev, lr = lex.get(ci, (0.0, "", None))
        # A candidate the dense search did not return is below the farthest string it did.
        ds, dev = den.get(ci, (min(float(desc[j]), floor) if dense is not None else -1.0, ""))
        cat = linker.data.codes[ci][:3]
        parent = tables.parent[ci]
        rows.append((
            ls, ls / top_l, 0.0 if lr is None else 1.0 / (1 + lr),
            ds, ds - top_d, 1.0 / (1 + den_rank[ci]) if ci in den_rank else 0.0,
            cat_l[cat] / top_l, cat_d[cat] - top_d if cat_d[cat] > -1 else -1.0,
            float(ci in lex), float(ci in den),
            float(parent >= 0 and tables.default_leaf[parent] == ci), float(n_words), top_l, top_d,
            float(desc[j]), float(desc[j]) - top_desc, q_cover[j], d_cover[j],
            float(len(linker.data.codes[ci].replace(".", ""))),
        ))
        evidence.append(lev or (f"similar to: {dev}" if dev else ""))
    return cands, np.asarray(rows, dtype=np.float32), evidence


class Calibration:
    """An isotonic map from ranker score to P(correct category), stored as breakpoints."""

    def __init__(self, x: list[float], y: list[float]) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of raw scores."""
        if self.x.size == 0:
            return np.clip(scores, 0.0, 1.0)
        return np.interp(scores, self.x, self.y)

    def to_dict(self) -> dict[str, list[float]]:
        """JSON form."""
        return {"x": self.x.tolist(), "y": self.y.tolist()}


class HybridRanker:
    """Ranks a mention's candidates with the learned model.

    Args:
        booster: A LightGBM booster over :data:`FEATURES`.
        calibration: The score calibration.
        dense: ``(encoder, vector index)`` or ``None`` (lexical features only).
        version: The ranker's version string.
    """

    def __init__(self, booster: object, calibration: Calibration, dense: object | None, version: str) -> None:
        self.booster = booster
        self.calibration = calibration
        self.dense = dense
        self.version = version

    def rank(self, text: str, linker: object) -> Ranked:
        """``[(code index, calibrated score, evidence)]``, best first (billable codes only)."""
        cands, x, evidence = features(linker, self.dense, text)
        if not cands:
            return []
        raw = self.booster.predict(x, num_threads=1)
        probs = self.calibration(raw)
        order = np.argsort(-raw, kind="stable")
        # Monotone calibration keeps the model's order; ties in probability keep it too.
        return [(cands[i], float(probs[i]), evidence[i]) for i in order.tolist()]


def load_booster(folder: Path) -> tuple[object, Calibration, dict]:
    """The booster, calibration and config of a ranker folder."""
    import lightgbm

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    booster = lightgbm.Booster(model_file=str(folder / "ranker.txt"))
    cal = json.loads((folder / "calibration.json").read_text(encoding="utf-8"))
    return booster, Calibration(cal["x"], cal["y"]), config


def load_calibration(folder: Path = RANKER_DIR) -> Calibration | None:
    """The lexical score calibration (``lexical_calibration.json``), or ``None`` when absent."""
    path = folder / "lexical_calibration.json"
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Calibration(raw["x"], raw["y"])


def load_hybrid(settings: Settings, data: IndexData, force: bool = False) -> HybridRanker | None:
    """The shipped hybrid ranker with its dense retrieval, or ``None`` when its model folders are absent or its
    ``config.json`` says ``"enabled": false`` (the measured default; ``force`` loads it anyway)."""
    from engine.icd.dense import load_encoder_folder, vector_index

    folder = Path(getattr(settings, "icd_ranker_dir", RANKER_DIR))
    if not (folder / "ranker.txt").is_file():
        return None
    booster, calibration, config = load_booster(folder)
    if not (force or config.get("enabled", True)):
        return None
    dense = None
    if config.get("dense", True):
        plain = config.get("encoder_kind") == "plain"
        encoder = load_encoder_folder(settings, plain=plain, layers=config.get("encoder_layers"))
        if encoder is None:
            return None
        dense = (encoder, vector_index(settings, encoder, data))
    return HybridRanker(booster, calibration, dense, config.get("version", "unknown"))


