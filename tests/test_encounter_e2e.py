"""The encounter through the whole engine: the ``code`` verb and ``analyze --encounter`` on real notes (the real
NER, assertion, ICD linker and Tabular notes on CPU), and the contract's bad-input rules.

The notes are written here (no shared dataset text). Content checks are limited to what the default NER finds in
them, so they test the encounter stage, not the NER.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.encounter import code_note
from engine.encounter.service import encounter_verb

DISCHARGE = """DISCHARGE SUMMARY

HISTORY OF PRESENT ILLNESS: The patient is a 68-year-old man admitted with chest pain and shortness of breath.

FAMILY HISTORY: Mother had breast cancer.

DISCHARGE DIAGNOSES:
1. Congestive heart failure.
2. Hypertension.
3. Chronic kidney disease stage 3.
4. Possible pneumonia.

He denies fever.
"""

CLINIC = """OFFICE VISIT

CHIEF COMPLAINT: Cough.

HISTORY OF PRESENT ILLNESS: 45-year-old woman with cough and fever for three days.

ASSESSMENT:
1. Possible pneumonia.
2. Cough.
3. Fever.

PLAN: Chest x-ray.
"""

REPO = Path(__file__).resolve().parent.parent

NO_DIAGNOSES = "Patient seen for routine follow-up. Vital signs reviewed. Return in six months.\n"


def _codes(enc: dict) -> list[str]:
    return [c["code"] for c in sorted(enc["codes"], key=lambda c: c["sequence"])]


def _check_contract(enc: dict, entities: list[dict]) -> None:
    assert {"id", "setting", "codes", "conflicts"} <= set(enc)
    assert [c["sequence"] for c in enc["codes"]] == list(range(1, len(enc["codes"]) + 1))
    for line in enc["codes"]:
        assert {"code", "description", "sequence", "evidence", "reason"} <= set(line)
        assert line["evidence"] and all(0 <= i < len(entities) for i in line["evidence"])
        assert entities[line["evidence"][0]]["label"] == "DIAG"


def test_inpatient_discharge_summary(pipeline) -> None:
    """Settings (II.H) + combination codes (I.C.9.a.3) + integral symptoms (I.B.5) + family history (Z80) on a
    real analysis: the discharge heading makes it inpatient, the uncertain pneumonia at discharge is coded, the
    hypertension with heart failure and CKD is I13.0 sequenced before I50.9 and N18.30 (use additional code)."""
    analysis = pipeline.analyze(DISCHARGE, "dc").to_dict()
    enc = code_note(pipeline, DISCHARGE, "dc")
    _check_contract(enc, analysis["entities"])
    assert enc["id"] == "dc" and enc["setting"] == "inpatient"
    got = _codes(enc)
    assert got[0] == "I13.0" and got.index("I50.9") > 0 and got.index("N18.30") > 0
    assert "J18.9" in got and "I10" not in got and "R06.02" not in got and got[-1] == "Z80.3"
    assert "guideline II.H" in next(c for c in enc["codes"] if c["code"] == "J18.9")["reason"]
    assert any(d["rule"] == "integral" and d["code"] == "R06.02" for d in enc["dropped"])


def test_outpatient_uncertain_not_coded(pipeline) -> None:
    """Guideline IV.H on a real clinic note: "Possible pneumonia" is not coded; the cough and fever are, once each
    (repeated mentions merged into one line); told inpatient, the same note gives J18.9 alone."""
    analysis = pipeline.analyze(CLINIC, "clinic").to_dict()
    enc = code_note(pipeline, CLINIC, "clinic")
    _check_contract(enc, analysis["entities"])
    assert enc["setting"] == "outpatient" and _codes(enc) == ["R05.9", "R50.9"]
    assert [d["code"] for d in enc["dropped"] if d["rule"] == "uncertain"] == ["J18.9"]
    assert len(next(c for c in enc["codes"] if c["code"] == "R05.9")["evidence"]) >= 2
    # the same note told to be inpatient (II.H): the uncertain pneumonia in the assessment is coded as if
    # established, and the cough and fever, routinely part of it, are then not coded (I.B.5)
    assert _codes(code_note(pipeline, CLINIC, "clinic", "inpatient")) == ["J18.9"]


def test_no_diagnoses_empty_code_set(pipeline) -> None:
    """Bad input: a note with no diagnoses gives an empty code set, not an error."""
    enc = code_note(pipeline, NO_DIAGNOSES, "n")
    assert enc["codes"] == [] and enc["conflicts"] == []


def test_analyze_carries_the_encounter_object(pipeline) -> None:
    """Contract: ``analyze`` may carry the encounter object as ``encounter``; its evidence indexes the same
    analysis's entities; the input object's ``setting`` wins over ``--setting``."""
    args = type("Args", (), {"encounter": True, "setting": "inpatient"})()
    out = encounter_verb("analyze", pipeline, {"id": "c", "text": CLINIC, "setting": "outpatient"}, args)
    assert out["id"] == "c" and "entities" in out and out["encounter"]["setting"] == "outpatient"
    _check_contract(out["encounter"], out["entities"])


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> tuple[int, list[dict], str]:
    """One real ``python -m engine code --jsonl`` run over good and bad input objects."""
    path = tmp_path_factory.mktemp("code") / "in.jsonl"
    rows = [json.dumps({"id": "clinic", "text": CLINIC}), json.dumps({"id": "none", "text": NO_DIAGNOSES}),
            "not json", json.dumps({"id": "bad", "text": "ASSESSMENT: Hypertension.", "setting": "emergency"}),
            json.dumps({"id": "dc", "text": DISCHARGE})]
    path.write_text("\n".join(rows) + "\n")
    proc = subprocess.run([sys.executable, "-m", "engine", "code", "--device", "cpu", "--jsonl", str(path)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


def test_cli_code_verb_outputs_in_order(cli_run) -> None:
    """Contract: ``code`` writes one encounter object per good input, in input order, keeping ids."""
    _, outs, _ = cli_run
    assert [o["id"] for o in outs] == ["clinic", "none", "dc"]
    assert _codes(outs[0]) == ["R05.9", "R50.9"] and outs[1]["codes"] == [] and outs[2]["setting"] == "inpatient"


def test_cli_code_verb_bad_input_named_exit_2(cli_run) -> None:
    """Contract error rules: invalid JSON and an unknown setting get a one-line message naming the input; exit 2;
    the other inputs are still written."""
    rc, _, err = cli_run
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 2 and len(lines) == 2
    assert "in.jsonl:3" in lines[0] and "in.jsonl:4" in lines[1] and "emergency" in lines[1]
