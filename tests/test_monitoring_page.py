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


@pytest.mark.browser
@pytest.mark.slow
def test_monitoring_page_in_chromium_and_the_app_writes_stats(store, tmp_path):
    """Debian's chromium through Playwright: the page's alerts and plotly charts with dashed thresholds, then a
    note analysed in the app adds one stored analysis to the page's count (the app's statistics hook)."""
    from support.devserver import CHROMIUM, CHROMIUM_ARGS, run_app

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run .ci/system-deps to install Debian's chromium")
    from playwright.sync_api import expect, sync_playwright

    note = (REPO_ROOT / "tests" / "fixtures" / "app" / "note_short.txt").read_text(encoding="utf-8")
    artifacts = REPO_ROOT / "tests" / "artifacts"
    with run_app(store, tmp_path / "streamlit.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        try:
            page.goto(f"{url}/monitoring")
            window = page.locator(".st-key-mon_window input")
            window.wait_for(timeout=900_000)  # a cold start loads the engine first
            window.fill("100")
            window.press("Enter")
            expect(page.get_by_text("400 analyses stored")).to_be_visible(timeout=120_000)
            alerts = page.locator("[data-testid=stAlertContentError]")
            expect(alerts.filter(has_text="input_drift")).to_have_count(1, timeout=60_000)
            expect(alerts.filter(has_text="prediction_drift")).to_have_count(1)
            plots = page.locator(".js-plotly-plot")
            expect(plots).to_have_count(8, timeout=60_000)  # seven statistics and the weekly override rates
            dashed = page.locator(".js-plotly-plot .shapelayer path[style*='stroke-dasharray']")
            # the thresholds of input drift, prediction drift, mean confidence and the two of entities per note
            assert dashed.count() == 5, "every threshold is drawn as a dashed line"
            artifacts.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(artifacts / "monitoring_page.png"), full_page=True)

            page.goto(url)
            page.locator(".st-key-note_text textarea").wait_for(timeout=300_000)
            page.locator(".st-key-note_text textarea").fill(note)
            page.get_by_role("button", name="Analyze").click()
            page.locator(".analysis-done[data-run='1']").wait_for(state="attached", timeout=120_000)
            page.get_by_role("link", name="Monitoring").click()
            window = page.locator(".st-key-mon_window input")
            window.wait_for(timeout=120_000)
            window.fill("101")  # another window: not the cached report
            window.press("Enter")
            expect(page.get_by_text("401 analyses stored")).to_be_visible(timeout=120_000)
        except BaseException:
            artifacts.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(artifacts / "monitoring_page_failed.png"), full_page=True)
            raise
        finally:
            browser.close()
