"""The Models page's figures (issue #17 item 9): per-type F1 bars, reliability curves and the retraining gate's
before/after comparison, checked on the figure data built from the shipped model folders, the audit record and a
gate report of the real gate; and one AppTest that the charts render for a retrained version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from support.gate_testing import gate_scores, register_gated_version, write_gate_report

from engine.settings import DEFAULT_MODEL_DIR, Settings
from engine.types import LABELS
from ui.models_charts import calibration_map_figure, f1_by_type_figure, gate_figure, reliability_figure
from ui.models_data import (
    f1_sources,
    gate_report,
    gate_rows,
    icd_calibration,
    icd_calibration_map,
    ner_calibration,
    read_audit,
    read_model_set,
)

SHIPPED_NER = json.loads((DEFAULT_MODEL_DIR / "ner" / "metrics.json").read_text(encoding="utf-8"))


def test_f1_bars_hold_the_shipped_per_type_scores():
    sources = f1_sources(read_model_set(DEFAULT_MODEL_DIR))
    assert "ner (dev)" in sources and "dictionary baseline (dev)" in sources
    fig = f1_by_type_figure(sources)
    bars = {trace.name: trace for trace in fig.data}
    assert set(bars) == set(sources) and fig.layout.barmode == "group"
    ner = bars["ner (dev)"]
    assert list(ner.x) == [*LABELS, "overall"]
    expected = [SHIPPED_NER["dev"]["per_type"][label]["f1"] for label in LABELS] + [SHIPPED_NER["dev"]["overall"]["f1"]]
    assert list(ner.y) == expected
    diag = SHIPPED_NER["dev"]["per_type"]["DIAG"]
    assert ner.customdata[0] == diag["tp"] + diag["fn"]
    assert list(bars["dictionary baseline (dev)"].y)[-1] == SHIPPED_NER["dev_baseline_dictionary"]["overall"]["f1"]


def test_a_retrained_folder_shows_its_gate_sets(tmp_path):
    (tmp_path / "ner").mkdir()
    sets = {"feedback_test": gate_scores({"overall": 0.7, "DIAG": 0.6}), "base_dev": gate_scores({"overall": 0.65})}
    (tmp_path / "ner" / "metrics.json").write_text(json.dumps({"gate": sets, "training": {}}), encoding="utf-8")
    fig = f1_by_type_figure(f1_sources(read_model_set(tmp_path)))
    bars = {trace.name: list(trace.y) for trace in fig.data}
    assert bars["ner (feedback_test)"] == [0.6, None, None, None, None, 0.7]
    assert bars["ner (base_dev)"][-1] == 0.65


def test_ner_reliability_uses_the_audit_bins_of_the_same_version():
    audit = read_audit()
    model_set = read_model_set(DEFAULT_MODEL_DIR)
    assert audit["ner"]["version"] == model_set.versions["ner"]
    calibration = ner_calibration(model_set, audit)
    fig = reliability_figure(calibration.curves, calibration.ece, "NER")
    diagonal, curve = fig.data
    assert list(diagonal.x) == [0, 1] and list(diagonal.y) == [0, 1]
    used = [b for b in audit["ner"]["calibration"]["bins"] if b["n"]]
    assert list(curve.x) == [b["confidence"] for b in used] and list(curve.y) == [b["accuracy"] for b in used]
    assert list(curve.customdata) == [b["n"] for b in used]
    assert f"ECE {audit['ner']['calibration']['ece']:.3f}" in curve.name


def test_without_bins_for_the_version_the_stored_ece_is_drawn_and_the_gap_said(tmp_path):
    shutil.copytree(DEFAULT_MODEL_DIR / "ner", tmp_path / "ner", ignore=shutil.ignore_patterns("*.safetensors",
                                                                                              "*profile*"))
    config = json.loads((tmp_path / "ner" / "config.json").read_text(encoding="utf-8"))
    (tmp_path / "ner" / "config.json").write_text(json.dumps({**config, "version": "ner-retrained-x"}),
                                                  encoding="utf-8")
    calibration = ner_calibration(read_model_set(tmp_path), read_audit())
    assert not calibration.curves
    assert "No reliability bins are stored for NER ner-retrained-x" in calibration.notes[0]
    fig = reliability_figure(calibration.curves, calibration.ece, "NER")
    (bars,) = fig.data
    assert dict(zip(bars.x, bars.y, strict=True))["ECE fitted temperature"] == SHIPPED_NER["calibration"]["ece_fitted"]
    assert "no bins stored" in fig.layout.title.text


def test_icd_curves_and_the_isotonic_map():
    icd = icd_calibration(read_audit())
    assert set(icd.curves) == {"raw top-code score vs exact code", "calibrated confidence vs category"}
    mapping = icd_calibration_map(DEFAULT_MODEL_DIR / "icd_ranker")
    stored = json.loads((DEFAULT_MODEL_DIR / "icd_ranker" / "calibration.json").read_text(encoding="utf-8"))
    (line,) = calibration_map_figure(mapping).data
    assert list(line.x) == stored["x"] and list(line.y) == stored["y"] and line.line.shape == "hv"
    assert all(a <= b for a, b in zip(line.y, line.y[1:], strict=False))  # isotonic: never decreasing


ACTIVE = {"feedback_test": gate_scores({"overall": 0.70, "DIAG": 0.80, "MED": 0.60})}
CANDIDATE = {"feedback_test": gate_scores({"overall": 0.72, "DIAG": 0.70, "MED": 0.66})}
"""The gate sets of a candidate whose DIAG F1 fell."""


def _report(folder: Path) -> tuple[Path, dict]:
    """A version folder with the report of the real gate on :data:`CANDIDATE` against :data:`ACTIVE`."""
    return folder, write_gate_report(folder, ACTIVE, CANDIDATE)


def test_gate_figure_shows_before_and_after_and_marks_the_failing_metric(tmp_path):
    folder, written = _report(tmp_path)
    report = gate_report(folder)
    assert report == written and report["decision"] == "refused"
    rows = gate_rows(report)
    assert [(r["metric"], r["result"]) for r in rows] == [("overall F1", "ok"), ("DIAG F1", "worse"),
                                                          ("MED F1", "ok")]
    before, after = gate_figure(rows, report["decision"]).data
    assert list(before.y) == [0.70, 0.80, 0.60] and list(after.y) == [0.72, 0.70, 0.66]
    assert list(after.marker.color) == ["#2e86c1", "#c0392b", "#2e86c1"]
    assert list(before.x) == ["feedback_test<br>overall F1", "feedback_test<br>DIAG F1", "feedback_test<br>MED F1"]
    assert rows[1]["delta"] == pytest.approx(-0.10)
    assert gate_report(tmp_path / "nowhere") is None


PAGE = """
from engine import versions
from ui.models_view import render_version_charts

chosen = versions.list_versions()[-1]
render_version_charts(chosen.id, chosen)
"""


def test_the_models_charts_render_for_a_retrained_version(tmp_path, monkeypatch):
    monkeypatch.setenv("CLINICAL_NLP_REGISTRY_DIR", str(tmp_path / "registry"))
    register_gated_version(Settings(), ACTIVE, CANDIDATE, data_hash="ab" * 32)
    script = tmp_path / "page.py"
    script.write_text(PAGE, encoding="utf-8")
    at = AppTest.from_file(str(script), default_timeout=60).run()
    assert not at.exception and not at.error
    charts = at.get("plotly_chart")
    assert len(charts) == 5  # per-type F1, NER and ICD reliability, ICD map, gate
    figures = [json.loads(c.proto.spec) for c in charts]
    titles = [f["layout"]["title"]["text"] for f in figures]
    assert titles[0] == "Strict F1 per entity type" and titles[-1].endswith(": refused")
    assert "no bins stored" in titles[1]  # a retrained NER version has no audit bins: its gap is said
    assert figures[1]["layout"]["annotations"][0]["text"] == "neither bins nor an ECE are stored for this version"
    assert at.dataframe[0].value["result"].tolist() == ["ok", "worse", "ok"]
