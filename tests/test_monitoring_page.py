"""The Monitoring page on a real SQLite store: alerts, a chart per statistic with its threshold, override rates."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from db import repository
from db.session import init_db, session_scope
from db.stats import record_many
from engine.settings import REPO_ROOT
from ui.monitoring_view import series_figure

PROFILE = REPO_ROOT / "assets" / "models" / "ner" / "reference_profile.json"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store whose 300 analyses look like the reference, then 100 of other words and 60 medications each."""
    url = f"sqlite:///{tmp_path_factory.mktemp('mondb') / 'feedback.sqlite'}"
    old = os.environ.get("CLINICAL_NLP_DB_URL")
    os.environ["CLINICAL_NLP_DB_URL"] = url
    notes = json.loads(PROFILE.read_text())["notes"]
    start = datetime(2026, 11, 2)
    shifted = {**notes[0], "label_counts": {**dict.fromkeys(notes[0]["label_counts"], 0), "MED": 60},
               "n_entities": 60, "n_scored": 60, "score_sum": 30.0, "vocab": [[b, 5] for b in range(9000, 9100)]}
    with session_scope(init_db(url)) as session:
        for i in range(300):
            record_many(session, [(notes[i % len(notes)], f"r{i}")], created_at=start + timedelta(hours=i))
        for i in range(100):
            record_many(session, [(shifted, f"s{i}")], created_at=start + timedelta(hours=300 + i))
        note = repository.save_note(session, "Chest pain and fever.")
        analysis = repository.save_analysis(session, note, {"entities": [
            {"start": 0, "end": 10, "label": "DIAG", "score": 0.9},
            {"start": 15, "end": 20, "label": "DIAG", "score": 0.8}]})
        first, second = (s.id for s in analysis.suggestions)
        repository.record_decision(session, suggestion_id=first, reviewer="ann", decision="accept")
        repository.record_decision(session, suggestion_id=second, reviewer="ann", decision="reject")
    yield url
    if old is None:
        os.environ.pop("CLINICAL_NLP_DB_URL", None)
    else:
        os.environ["CLINICAL_NLP_DB_URL"] = old


def test_monitoring_page_shows_alerts_series_and_overrides(store):
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    at.run(timeout=900)
    assert not at.exception, at.exception
    at.switch_page("app_pages/monitoring.py")
    at.run(timeout=300)
    at.number_input(key="mon_window").set_value(100)
    at.run(timeout=300)
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    for name in ("input_drift", "prediction_drift", "entities_per_note", "mean_confidence"):
        assert f"**{name}**" in errors, errors
    frames = [d.value for d in at.dataframe]  # Streamlit keeps no user key on a read-only dataframe: find by columns
    stats = next(f for f in frames if "statistic" in f.columns)
    assert set(stats["statistic"]) >= {"input_drift", "prediction_drift", "mean_confidence", "label_drift"}
    charts = at.get("plotly_chart")
    assert len(charts) >= 8  # seven statistics and the weekly override rates
    figure = json.loads(charts[0].proto.spec)
    assert any(shape.get("line", {}).get("dash") == "dash" for shape in figure["layout"].get("shapes", []))
    labels = next(f for f in frames if "label" in f.columns and "rate" in f.columns)
    assert labels.loc[labels["label"] == "DIAG", "rate"].item() == 0.5


def test_series_figure_marks_alerts_and_threshold():
    points = [{"end": 10, "time": None, "input_drift": 0.05, "input_drift_alert": False},
              {"end": 20, "time": None, "input_drift": 0.30, "input_drift_alert": True}]
    fig = series_figure(points, "input_drift", 0.15)
    assert list(fig.data[0].y) == [0.05, 0.30]
    assert list(fig.data[0].marker.color) == ["#2c7fb8", "#c0392b"]
    assert fig.layout.shapes[0].y0 == 0.15
    band = series_figure(points, "input_drift", [2, 50])
    assert [s.y0 for s in band.layout.shapes] == [2, 50]
