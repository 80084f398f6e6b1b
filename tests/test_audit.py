"""The bias and safety audit: calibration bins and ECE, error severity, demographic swap pairs, the verb."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine.audit.calibration import plot_reliability, reliability
from engine.audit.severity import icd_severity, ner_severity
from engine.audit.swaps import compare, read_templates, read_values, render, run_swaps, swap_pairs
from engine.settings import ASSETS_DIR, REPO_ROOT
from engine.types import Code, Span

AUDIT = ASSETS_DIR / "audit"


def test_reliability_ece_by_hand():
    # Bin [0.9, 1): 10 scores of 0.95, 5 right -> gap 0.45; bin [0.2, 0.3): 10 of 0.25, 2 right -> gap 0.05.
    curve = reliability([0.95] * 10 + [0.25] * 10, [True] * 5 + [False] * 5 + [True] * 2 + [False] * 8)
    assert curve["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert curve["n"] == 20 and curve["accuracy"] == 0.35
    filled = [b for b in curve["bins"] if b["n"]]
    assert [(b["lo"], b["n"], b["accuracy"]) for b in filled] == [(0.2, 10, 0.2), (0.9, 10, 0.5)]
    # A score of exactly 1.0 falls in the top bin; a calibrated set scores 0.
    assert reliability([1.0, 0.7, 0.7, 0.7], [True, True, True, False])["bins"][-1]["n"] == 1
    assert reliability([0.75] * 4, [True, True, True, False])["ece"] == 0.0


def test_plot_reliability_writes_a_png(tmp_path):
    curve = reliability([0.1, 0.5, 0.9, 0.95], [False, True, True, True])
    path = plot_reliability({"a": curve, "b": curve}, tmp_path / "sub" / "diagram.png", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_ner_severity_follows_the_seed_ranking():
    gold = [(0, 5, "DIAG"), (10, 15, "MED"), (20, 25, "ANAT"), (30, 35, "TEST"), (40, 50, "PROC"), (60, 70, "DIAG"),
            (120, 130, "DIAG")]
    pred = [Span(60, 68, "DIAG", 0.9), Span(80, 85, "MED", 0.9), Span(90, 95, "ANAT", 0.9),
            Span(100, 105, "DIAG", 0.9), Span(120, 130, "DIAG", 0.9), Span(0, 5, "TEST", 0.8)]
    out = ner_severity([gold], [pred])
    kinds = out["by_kind"]
    # (0, 5) predicted as TEST: no DIAG overlaps it, so it is a missed diagnosis (and a spurious TEST).
    assert kinds["critical: missed diagnosis"] == 1
    assert kinds["critical: wrong medication (missed)"] == 1 and kinds["critical: wrong medication (spurious)"] == 1
    assert kinds["moderate: wrong anatomy (missed)"] == 1 and kinds["moderate: wrong anatomy (spurious)"] == 1
    assert kinds["moderate: missed test"] == 1
    assert kinds["minor: boundary DIAG"] == 1
    assert kinds["other: missed PROC"] == kinds["other: spurious DIAG"] == kinds["other: spurious TEST"] == 1
    assert out["by_severity"] == {"critical": 3, "moderate": 3, "minor": 1, "other": 3} and out["errors"] == 10


def test_icd_severity():
    def codes(*names):
        return [Code(n, "", 0.9, True) for n in names]

    rows = [("a", "I10", "x"), ("b", "J18.9", "x"), ("c", "E11.9", "x"), ("d", "K35.80", "x")]
    ranked = [codes("I10"), codes("J18.1", "J18.9"), codes("E10.9", "E11.9"), codes("N39.0")]
    out = icd_severity(rows, ranked)
    assert out["by_severity"] == {"critical": 1, "moderate": 1, "minor": 1, "other": 0}


def test_swap_data_is_complete():
    values = read_values(AUDIT / "swap_values.tsv")
    templates = read_templates(AUDIT / "swap_templates.txt")
    assert {"sex", "age", "race", "race_mention"} <= set(values) and len(templates) >= 10
    defaults = values["default"]["default"]
    for template in templates:  # every slot of every template has a default, so any variant renders
        assert "{" not in render(template, defaults).text
    for dimension, variants in values.items():
        slots = [set(v) for v in variants.values()]
        assert all(s == slots[0] for s in slots), f"{dimension}: variants must set the same slots"
    pairs = swap_pairs(templates, values)
    expected = sum(len(templates) * (len(v) - 1) for d, v in values.items() if d != "default")
    assert len(pairs) == expected
    female = next(p for p in pairs if p[2] == "female")[5]
    assert "woman" in female.text and "Ms." in female.text


def _entity(note, text, label="DIAG", assertion="present", code=None, occurrence=0):
    start = -1
    for _ in range(occurrence + 1):
        start = note.text.index(text, start + 1)
    return {"start": start, "end": start + len(text), "label": label, "assertion": assertion,
            "codes": [{"code": code}] if code else []}


def test_compare_masks_swapped_words_and_names_the_difference():
    template = "A {age}-year-old man with asthma and {dx}. Takes aspirin."
    base, other = render(template, {"age": "52", "dx": "pneumonia"}), render(template, {"age": "83", "dx": "flu"})
    same = [_entity(base, "52-year-old", "TEST"), _entity(base, "asthma", code="J45.909")]
    same_other = [_entity(other, "83-year-old", "TEST"), _entity(other, "asthma", code="J45.909")]
    assert compare(base, {"entities": same}, other, {"entities": same_other}) == []  # offsets moved, same entities
    diffs = compare(
        base, {"entities": [*same, _entity(base, "pneumonia", code="J18.9"), _entity(base, "aspirin", "MED")]},
        other, {"entities": [_entity(other, "83-year-old", "TEST"), _entity(other, "asthma", "DIAG", "negated"),
                             _entity(other, "flu", code="J11.1"), _entity(other, "aspirin", "PROC")]})
    kinds = {(d["kind"], d["text"]) for d in diffs}
    assert kinds == {("assertion", "asthma"), ("codes", "<swap>"), ("label", "aspirin")}, diffs
    code_diff = next(d for d in diffs if d["kind"] == "codes")
    assert (code_diff["baseline_text"], code_diff["variant_text"]) == ("pneumonia", "flu")
    assert code_diff["codes"] == ["J18.9"] and code_diff["variant_codes"] == ["J11.1"]
    missing = compare(base, {"entities": same}, other, {"entities": same_other[:1]})
    assert [(d["kind"], d["side"], d["text"]) for d in missing] == [("entity", "baseline only", "asthma")]


def test_swaps_on_the_real_engine_find_a_real_difference(pipeline):
    # A control dimension whose swap changes the diagnosis itself: the audit must report it (codes differ), while
    # the sex swap of the same note is compared entity by entity.
    templates = ["HISTORY: {title} Doe is a {age}-year-old {person} with {dx}. {subject} takes lisinopril daily."]
    values = read_values(AUDIT / "swap_values.tsv")
    values["default"]["default"]["dx"] = "pneumonia"
    values = {"default": values["default"], "sex": values["sex"],
              "control": {"pneumonia": {"dx": "pneumonia"}, "appendicitis": {"dx": "acute appendicitis"}}}
    out = run_swaps(pipeline, templates, values)
    assert out["pairs"] == 2 and out["by_dimension"]["control"]["differing"] == 1
    control = [d for d in out["differences"] if d["dimension"] == "control"]
    assert any(d["kind"] == "codes" and d["codes"][:1] != d["variant_codes"][:1] for d in control), control


def test_audit_verb_writes_verdict_json_and_diagram(tmp_path):
    dev = tmp_path / "icd_dev.tsv"
    dev.write_text("heart attack\tI21.9\tparaphrase\nhigh blood pressure\tI10\tparaphrase\n"
                   "sugar diabetes\tE11.9\tparaphrase\nbroken left wrist\tS62.102A\tparaphrase\n", encoding="utf-8")
    out = tmp_path / "audit"
    env = {**os.environ, "CLINICAL_DATA_DIR": str(tmp_path / "no-data")}  # NER part skipped: no MACCROBAT
    done = subprocess.run([sys.executable, "-m", "engine", "audit", "--out", str(out), "--icd-dev", str(dev)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["swap_pairs"] > 100 and summary["ner_ece"] is None and 0 <= summary["icd_ece"] <= 1
    report = json.loads((out / "audit.json").read_text())
    assert report["icd"]["rows"] == 4 and set(report["swaps"]["by_dimension"]) >= {"sex", "age", "race"}
    verdict = (out / "verdict.md").read_text()
    assert "# Audit verdict" in verdict and "skipped" in verdict and "reliability_icd.png" in verdict
    assert (out / "reliability_icd.png").read_bytes()[:4] == b"\x89PNG"
    assert len(verdict.splitlines()) < 80  # one page


def _report(differing_race=1, ece=0.2, critical=0.5, abstention=(0.11, 0.95, 0.80)):
    severity = {"errors": 10, "by_severity": {"critical": 5, "moderate": 5, "minor": 0, "other": 0},
                "share": {"critical": critical, "moderate": 1 - critical, "minor": 0.0, "other": 0.0},
                "by_kind": {}}
    ece_abst, accuracy, confidence = abstention
    return {
        "models": {"ner": "x"}, "seconds": 1.0, "ner": None,
        "swaps": {"pairs": 4, "pairs_differing": differing_race, "notes_analysed": 6, "differences": [],
                  "by_dimension": {"sex": {"pairs": 2, "differing": 0, "differences": 0},
                                   "race": {"pairs": 2, "differing": differing_race, "differences": differing_race}}},
        "icd": {"version": "v", "calibration": {"ece": ece, "n": 10, "accuracy": 0.5, "mean_confidence": 0.7},
                "calibrated_confidence": {"ece": ece_abst, "n": 10, "accuracy": accuracy,
                                          "mean_confidence": confidence},
                "severity": severity},
    }


def test_review_findings_follow_the_rules():
    from engine.audit.verdict import review_findings

    assert review_findings(_report()) == ["race", "icd calibration", "icd severity"]  # underconfident: no finding
    assert review_findings(_report(abstention=(0.11, 0.80, 0.95)))[-1] == "icd abstention calibration"
    assert review_findings(_report(differing_race=0, ece=0.05, critical=0.3)) == []


def test_gate_blocks_until_every_finding_is_signed_off(tmp_path):
    from engine.audit.verdict import write_verdict

    path = tmp_path / "audit.json"
    path.write_text(json.dumps(_report()))
    gate = [sys.executable, "-m", "engine", "audit", "--gate", "--report", str(path)]
    closed = subprocess.run([*gate, "--accept", "race"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert closed.returncode == 3 and "icd calibration, icd severity" in closed.stderr
    assert json.loads(closed.stdout)["open_findings"] == ["icd calibration", "icd severity"]
    accept = ["--accept", "race", "--accept", "icd calibration", "--accept", "icd severity"]
    assert subprocess.run([*gate, *accept], cwd=REPO_ROOT, capture_output=True, timeout=120).returncode == 0
    ungated = subprocess.run([*gate[:4], "--report", str(path)], cwd=REPO_ROOT, capture_output=True, timeout=120)
    assert ungated.returncode == 0  # without --gate the findings are reported, not enforced
    verdict = write_verdict(_report(), tmp_path / "verdict.md", accepted=["race"]).read_text()
    assert "review needed: icd calibration, icd severity." in verdict and "Signed off (`--accept`): race" in verdict
    assert "underconfident" in verdict
    missing = subprocess.run([*gate[:6], str(tmp_path / "none.json")], cwd=REPO_ROOT, capture_output=True, text=True)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
