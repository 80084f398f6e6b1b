"""Monitoring statistics: profiles without text, drift statistics, override rates, storage and the report verb."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from engine.monitoring.drift import input_drift, kl_divergence, prediction_drift
from engine.monitoring.overrides import label_drift, override_rates
from engine.monitoring.profile import (
    hashed_unigrams,
    pack_vocab,
    profile_analysis,
    token_summary,
    unpack_vocab,
    word_bucket,
)
from engine.monitoring.reference import build_reference_profile, read_reference, write_reference_profile
from engine.monitoring.report import build_report
from engine.monitoring.table import from_profiles
from engine.settings import REPO_ROOT as REPO
from engine.settings import MonitorSettings

NOTE = "Patient denies chest pain. History of hypertension treated with lisinopril 10 mg daily. Chest x-ray normal."


@pytest.fixture(scope="module")
def analysed(pipeline):
    result = pipeline.analyze(NOTE, "n1")
    return result, profile_analysis(NOTE, result)


def test_profile_holds_numbers_not_text(analysed):
    result, stats = analysed
    assert stats["n_entities"] == len(result.entities) > 0
    assert sum(stats["label_counts"].values()) == stats["n_entities"]
    assert stats["score_sum"] == pytest.approx(sum(e.score for e in result.entities), abs=1e-3)
    # The pipeline attached the NER's token statistics (not in the contract's output).
    assert 0.0 <= stats["o_share"] <= 1.0 and stats["n_tokens"] > 10 and stats["token_entropy"] >= 0.0
    assert "token_stats" not in result.to_dict()
    dumped = json.dumps(stats)
    for word in ("lisinopril", "hypertension", "chest", "denies"):
        assert word not in dumped
    assert dict(map(tuple, stats["vocab"])) == hashed_unigrams(NOTE)
    assert dict(map(tuple, stats["vocab"]))[word_bucket("chest")] >= 2


def test_profile_of_a_contract_dict_has_no_token_statistics(analysed):
    result, stats = analysed
    from_dict = profile_analysis(NOTE, result.to_dict())
    assert from_dict["token_entropy"] is None and from_dict["n_entities"] == stats["n_entities"]
    assert from_dict["vocab"] == stats["vocab"]


def test_token_summary_entropy_and_o_share():
    probs = np.array([[1.0] + [0.0] * 10, [0.0, 1.0] + [0.0] * 9, [1 / 11] * 11], dtype=np.float16)
    out = token_summary(probs)
    assert out["o_share"] == pytest.approx(2 / 3, abs=1e-4)  # the uniform row's arg-max is column 0
    assert out["token_entropy"] == pytest.approx(np.log(11) / 3, abs=2e-3)
    assert token_summary(None) is None


def test_vocab_packing_round_trips():
    pairs = [[3, 1], [700, 5], [16383, 70000]]
    buckets, counts = unpack_vocab(pack_vocab(pairs))
    assert buckets.tolist() == [3, 700, 16383] and counts.tolist() == [1, 5, 65535]


def test_kl_divergence_is_zero_for_equal_and_positive_for_different():
    a = np.array([10.0, 20.0, 30.0])
    assert kl_divergence(a, a * 3) == pytest.approx(0.0, abs=1e-3)
    assert kl_divergence(a, a[::-1]) > 0.1


def _profile(words: str, labels: dict[str, int]) -> dict:
    return {"label_counts": labels, "vocab": [[b, c] for b, c in sorted(hashed_unigrams(words).items())],
            "score_sum": sum(labels.values()) * 0.8, "n_scored": sum(labels.values()), "n_low_confidence": 0,
            "n_coded": 0, "code_score_sum": 0.0, "token_entropy": 0.1, "o_share": 0.7}


def test_input_drift_excess_separates_shift_from_sampling_noise():
    rng = np.random.default_rng(1)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    words = sorted({"".join(rng.choice(letters, 7)) for _ in range(600)})
    words_a, words_b = words[::2], words[1::2]

    def notes(vocab, n):
        return from_profiles([_profile(" ".join(rng.choice(vocab, 80)), {"DIAG": 3}) for _ in range(n)]).vocab

    ref = notes(words_a, 100)
    same = input_drift(notes(words_a, 30), ref, seed=0)
    shifted = input_drift(notes(words_a[:150] + words_b[:150], 30), ref, seed=0)
    assert same["kl"] > 0.15  # the plug-in KL of 30 short notes would alert without any drift...
    assert abs(same["value"]) < 0.02  # ...the excess over the permutation null does not
    assert shifted["value"] > 0.3 and shifted["p_value"] < 0.05


def test_prediction_drift_design_effect_tempers_clustered_counts():
    rng = np.random.default_rng(2)
    # Notes of two kinds (medication lists, imaging reports) in the same proportion on both sides: no drift, but
    # clustered counts, which a naive multinomial chi-squared mistakes for drift.
    def notes(n):
        rows = []
        for _ in range(n):
            if rng.random() < 0.5:
                rows.append([rng.poisson(2), 0, rng.poisson(20), rng.poisson(1), 0])
            else:
                rows.append([rng.poisson(3), 0, 0, rng.poisson(10), rng.poisson(10)])
        return np.array(rows)

    p_values = [prediction_drift(notes(60), notes(60)) for _ in range(20)]
    assert all(p["design_effect"] > 3 for p in p_values)
    def naive_p(a, b):
        table = np.vstack([a.sum(0), b.sum(0)])
        return chi2_contingency(table[:, table.sum(0) > 0], correction=False)[1]

    naive_alarms = sum(naive_p(notes(60), notes(60)) < 0.01 for _ in range(20))
    corrected_alarms = sum(p["value"] < 0.01 for p in p_values)
    assert naive_alarms >= 10 and corrected_alarms <= 2
    drifted = prediction_drift(notes(60) * np.array([1, 1, 0, 1, 3]), notes(60))
    assert drifted["value"] < 1e-4


def _decision(i, when, decision, label="DIAG", target="entity", code=None, suggestion=None):
    return {"id": i, "suggestion_id": suggestion or i, "created_at": when, "target": target, "decision": decision,
            "label": label, "code": code}


def test_override_rates_and_label_drift():
    monday = datetime(2026, 11, 2)
    rows = [_decision(i, monday, "accept") for i in range(1, 31)]
    rows += [_decision(100 + i, monday + timedelta(days=7), d) for i, d in enumerate(["reject"] * 20 + ["accept"] * 20)]
    rows += [_decision(200 + i, monday + timedelta(days=14), d, label="MED")
             for i, d in enumerate(["correct"] * 15 + ["accept"] * 20 + ["add"] * 5)]
    rows += [_decision(300, monday, "reject", target="code", code="I10", suggestion=1),
             _decision(301, monday, "accept", target="code", code="I10", suggestion=1)]  # mind changed: accept
    rates = override_rates(rows)
    assert rates["by_week"]["2026-W45"] == {"decisions": 31, "overrides": 0, "rate": 0.0}
    assert rates["by_week"]["2026-W46"]["rate"] == 0.5
    assert rates["by_code"]["I10"] == {"decisions": 1, "overrides": 0, "rate": 0.0}
    assert rates["by_label"]["MED"] == {"decisions": 35, "overrides": 15, "rate": round(15 / 35, 4)}
    drift = label_drift(rows, min_f1=0.80, consecutive=2, min_reviewed=30)
    weeks = {w["week"]: w for w in drift["weeks"]}
    assert weeks["2026-W45"]["f1"] == 1.0
    assert weeks["2026-W46"]["f1"] == round(40 / 60, 4)
    assert weeks["2026-W47"]["f1"] == round(40 / (40 + 15 + 20), 4)  # correct = FP + FN, add = FN
    assert drift["retrain"] is True
    assert label_drift(rows[:70], min_reviewed=30)["retrain"] is False  # one degraded week is not enough


def test_reference_profile_round_trip_and_report(tmp_path, pipeline):
    texts = [NOTE, "Fever and cough treated with amoxicillin. Chest x-ray shows pneumonia in the right lower lobe."]
    results = pipeline.analyze_many([(None, t) for t in texts])
    path = write_reference_profile(tmp_path, texts, results, source="two notes")
    header, table = read_reference(path)
    assert header["n_notes"] == 2 and len(table) == 2 and "notes" not in header
    assert "lisinopril" not in path.read_text()
    report = build_report(table, table, [], MonitorSettings(window=10), reference_info=header)
    assert set(report["statistics"]) >= {"input_drift", "prediction_drift", "mean_confidence", "entities_per_note",
                                         "label_drift", "token_entropy", "o_share"}
    assert report["statistics"]["input_drift"]["threshold"] == 0.15
    assert report["statistics"]["prediction_drift"]["alert"] is False
    entities_alert = not 2 <= report["statistics"]["entities_per_note"]["value"] <= 50
    assert ("entities_per_note" in report["alerts"]) == entities_alert
    assert build_reference_profile(texts, results)["summary"] == header["summary"]


def test_shipped_model_has_a_reference_profile():
    header, table = read_reference(REPO / "assets" / "models" / "ner" / "reference_profile.json")
    config = json.loads((REPO / "assets" / "models" / "ner" / "config.json").read_text())
    assert header["models"]["ner"] == config["version"], "regenerate: python -m engine monitor profile"
    assert len(table) == header["n_notes"] >= 100


def test_stats_are_stored_and_reported_through_the_verb(tmp_path, db_url, analysed):
    from db import repository
    from db.session import get_engine, session_scope
    from db.stats import count_stats, decision_rows, load_table, record_analysis

    result, stats = analysed
    with session_scope(get_engine(db_url)) as session:
        note = repository.save_note(session, NOTE)
        analysis = repository.save_analysis(session, note, result.to_dict())
        record_analysis(session, stats, source="app", analysis_id=analysis.id, external_id="n1")
        first = analysis.suggestions[0].id
        repository.record_decision(session, suggestion_id=first, reviewer="ann", decision="reject")
    with session_scope(get_engine(db_url), write=False) as session:
        assert count_stats(session) == 1
        table = load_table(session)
        rows = decision_rows(session)
    assert table.label_counts.sum() == stats["n_entities"]
    assert table.vocab.sum() == stats["n_words"]
    assert rows[0]["decision"] == "reject" and rows[0]["label"] == result.entities[0].label
    from db.models import AnalysisStats

    columns = set(AnalysisStats.__table__.columns.keys())
    assert not {"text", "note", "entities"} & columns

    stats_file = tmp_path / "out.stats.jsonl"
    stats_file.write_text("".join(json.dumps({"id": f"b{i}", **stats}) + "\n" for i in range(3)))
    run = [sys.executable, "-m", "engine", "monitor"]
    done = subprocess.run([*run, "ingest", "--db", db_url, str(stats_file)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"stored": 3}
    done = subprocess.run([*run, "--db", db_url, "--window", "50"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["n_analyses"] == 4 and report["n_window"] == 4 and report["window"] == 50
    assert report["override_rates"]["overall"] == {"decisions": 1, "overrides": 1, "rate": 1.0}
    for name in ("input_drift", "prediction_drift", "mean_confidence", "entities_per_note", "label_drift"):
        stat = report["statistics"][name]
        assert {"value", "threshold", "alert"} <= set(stat)
    bad = subprocess.run([*run, "--db", db_url, "--window", "0"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "--window" in bad.stderr


def test_app_store_writes_stats_in_the_same_transaction(tmp_path, analysed):
    """The app's store step (ui.review.store_analysis) records the analysis's statistics beside it."""
    import sqlite3

    from db.session import init_db, session_scope
    from db.stats import record_result
    from engine.monitoring.profile import stats_record
    from ui.review import store_analysis

    result, stats = analysed
    path = tmp_path / "app.sqlite"
    engine = init_db(f"sqlite:///{path}")
    stored = store_analysis(engine, NOTE, result.to_dict(), source="paste")
    with sqlite3.connect(path) as con:
        row = con.execute("SELECT analysis_id, source, external_id, n_entities, label_diag, vocab FROM analysis_stats"
                          ).fetchone()
    assert row[:5] == (stored.analysis_id, "app", "n1", stats["n_entities"], stats["label_counts"]["DIAG"])
    assert b"lisinopril" not in row[5] and len(row[5]) == 4 * len(stats["vocab"])
    # record_result on the engine's own result keeps the token statistics the contract dict lacks.
    with session_scope(engine) as session:
        record_result(session, NOTE, result, source="api")
    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT source, o_share IS NULL FROM analysis_stats ORDER BY id").fetchall()
    assert rows == [("app", 1), ("api", 0)]
    line = stats_record("b7", NOTE, result)
    assert line["id"] == "b7" and line["o_share"] == stats["o_share"] and "text" not in line
