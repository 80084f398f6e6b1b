"""The fast paths of the monitoring report over many stored analyses (issue 24's 5 s target over 100,000 rows):
the vectorised vocabulary decoding, the Core loader, window views and the series' shared block sums must give
exactly what the row-by-row code gives. Timing itself is ``bench/bench_monitoring.py --report-only``."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from engine.monitoring.profile import pack_vocab, unpack_vocab, unpack_vocab_many
from engine.monitoring.reference import read_reference
from engine.monitoring.report import series, window_statistics
from engine.monitoring.table import from_profiles, vocab_from_blobs, vocab_matrix
from engine.settings import REPO_ROOT as REPO
from engine.settings import MonitorSettings
from engine.types import LABELS

REFERENCE = REPO / "assets" / "models" / "ner" / "reference_profile.json"


def _random_profiles(n: int, seed: int = 0) -> list[dict]:
    """Profile dicts with random label counts, confidences and bags (some empty, some without token stats)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        size = 0 if i % 17 == 0 else int(rng.integers(1, 300))
        buckets = np.sort(rng.choice(1 << 14, size=size, replace=False))
        counts = {lab: int(rng.poisson(4 + 20 * (i > n // 2 and lab == "MED"))) for lab in LABELS}
        scored = sum(counts.values())
        out.append({
            "label_counts": counts, "n_entities": scored, "n_scored": scored,
            "score_sum": round(scored * float(rng.uniform(0.5, 0.95)), 3),
            "n_low_confidence": int(rng.integers(0, scored + 1)), "n_coded": scored // 2,
            "code_score_sum": round(scored / 2 * 0.8, 3),
            "token_entropy": None if i % 5 == 0 else float(rng.uniform(0, 0.1)),
            "o_share": None if i % 5 == 0 else float(rng.uniform(0.5, 0.8)),
            "vocab": [[int(b), int(rng.integers(1, 70_000))] for b in buckets],
        })
    return out


def test_unpack_many_equals_one_row_at_a_time():
    blobs = [pack_vocab(p["vocab"]) for p in _random_profiles(120)] + [None, b""]
    indptr, buckets, counts = unpack_vocab_many(blobs)
    one = [unpack_vocab(b) for b in blobs]
    assert indptr[-1] == sum(len(b) for b, _ in one) > 0
    assert (buckets == np.concatenate([b for b, _ in one])).all()
    assert (counts == np.concatenate([c for _, c in one])).all()  # counts capped at 65,535 by pack_vocab, exact
    fast = vocab_from_blobs(blobs).toarray()
    assert (fast == vocab_matrix([b for b, _ in one], [c for _, c in one]).toarray()).all()
    assert vocab_from_blobs([None, b""]).shape == (2, 1 << 14)


def test_window_rows_are_views_with_the_same_entries():
    table = from_profiles(_random_profiles(200))
    part = table.rows(slice(30, 150))
    assert np.shares_memory(part.vocab.data, table.vocab.data)  # no copy of the window's entries
    assert (part.vocab.toarray() == table.vocab[30:150].toarray()).all()
    assert (table.rows(slice(10, 5)).vocab.shape == (0, 1 << 14))
    assert (table.rows(slice(0, 200, 3)).vocab.toarray() == table.vocab[0:200:3].toarray()).all()


def test_series_with_shared_block_sums_equals_each_window_alone():
    _, reference = read_reference(REFERENCE)
    table = from_profiles(_random_profiles(400, seed=1))
    settings = MonitorSettings(window=90, kl_permutations=10)
    points = series(table, reference, settings, points=12)
    assert len(points) == 12 and points[-1]["end"] == 400
    for point in points:
        alone = window_statistics(table.rows(slice(max(0, point["end"] - 90), point["end"])), reference, settings)
        for name, stat in alone.items():
            assert point[name] == pytest.approx(stat["value"], rel=1e-9, abs=2e-5), (point["end"], name)
            assert point[f"{name}_alert"] == stat["alert"]
    # the shifted second half moves the label mix: the test can tell the two halves apart
    assert points[0]["prediction_drift"] != points[-1]["prediction_drift"]


def test_load_table_on_sqlite_equals_the_profiles(tmp_path):
    from db.session import dispose_engines, init_db, session_scope
    from db.stats import load_table, record_many

    profiles = _random_profiles(150, seed=2)
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    start = datetime(2026, 12, 1)
    with session_scope(init_db(url)) as session:
        record_many(session, ((p, f"n{i}") for i, p in enumerate(profiles[:100])), created_at=start)
        record_many(session, ((p, f"n{i}") for i, p in enumerate(profiles[100:], 100)),
                    created_at=start + timedelta(days=1))
    with session_scope(init_db(url), write=False) as session:
        everything, newest = load_table(session), load_table(session, 30)
    dispose_engines()
    expected = from_profiles([{**p, "vocab": [[b, min(c, 65_535)] for b, c in p["vocab"]]} for p in profiles])
    for name in ("label_counts", "score_sum", "n_scored", "n_low", "n_coded", "code_score_sum", "token_entropy",
                 "o_share"):
        assert np.array_equal(getattr(everything, name), getattr(expected, name), equal_nan=True), name
        assert np.array_equal(getattr(newest, name), getattr(expected, name)[-30:], equal_nan=True), name
    assert np.isnan(everything.token_entropy[0]) and not np.isnan(everything.token_entropy[1])
    assert (everything.vocab.toarray() == expected.vocab.toarray()).all()
    assert (newest.vocab.toarray() == expected.vocab.toarray()[-30:]).all()
    assert everything.created_at[99] < everything.created_at[100]


def test_empty_store_gives_an_empty_report_and_series(tmp_path):
    from db.monitor import build
    from db.session import dispose_engines

    report = build(f"sqlite:///{tmp_path / 'empty.sqlite'}", series_points=30)
    dispose_engines()
    assert (report["n_analyses"], report["n_window"], report["series"]) == (0, 0, [])
    assert "input_drift" not in report["statistics"] and report["alerts"] == []
