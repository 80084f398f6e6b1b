"""``/predict`` with the encounter code set: the engine's ``code`` verb's answer, the setting from ``note_type``.

Against the session's real ``python -m api`` process (``tests/support/api_server.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support.api_server import NOTE
from support.devserver import REPO

DISCHARGE = ("Discharge diagnoses: 1. Type 2 diabetes mellitus with diabetic chronic kidney disease. "
             "2. Hypertension. Patient denies chest pain. Continue metformin and lisinopril.")


def test_include_encounter_matches_the_engine_code_verb(api: httpx.Client, tmp_path: Path):
    jsonl = tmp_path / "notes.jsonl"
    jsonl.write_text(json.dumps({"id": "e-1", "text": NOTE}) + "\n", encoding="utf-8")
    cli = json.loads(subprocess.run([sys.executable, "-m", "engine", "code", "--device", "cpu", "--setting",
                                     "inpatient", "--jsonl", str(jsonl)], cwd=REPO, capture_output=True,
                                    text=True, check=True).stdout.splitlines()[0])
    r = api.post("/predict", json={"note_id": "e-1", "note_text": NOTE, "setting": "inpatient"})
    assert r.status_code == 200, r.text
    enc = r.json()["encounter"]
    assert enc["setting"] == "inpatient" and enc["id"] == "e-1"
    assert [(c["code"], c["sequence"], c["evidence"]) for c in enc["codes"]] == [
        (c["code"], c["sequence"], c["evidence"]) for c in cli["codes"]]
    assert enc["codes"], enc  # type 2 diabetes is coded
    entities = r.json()["entities"]
    for line in enc["codes"]:
        assert line["reason"] and all(0 <= i < len(entities) for i in line["evidence"])


@pytest.mark.parametrize(("extra", "setting", "why"), [
    ({"note_type": "Discharge Summary"}, "inpatient", "note type"),
    ({"note_type": "inpatient progress note"}, "inpatient", "note type"),
    ({"note_type": "outpatient clinic visit"}, "outpatient", "note type"),
    ({"note_type": "clinic visit"}, "outpatient", "no discharge"),  # no setting words: the note's own decide
    ({"note_type": "Discharge Summary", "setting": "outpatient"}, "outpatient", "as asked"),
])


def test_encounter_setting_comes_from_note_type(api: httpx.Client, extra, setting, why):
    body = {"note_text": NOTE, "include_encounter": True, **extra}
    enc = api.post("/predict", json=body).json()["encounter"]
    assert enc["setting"] == setting and why in enc["setting_reason"], enc["setting_reason"]


def test_encounter_auto_reads_the_note_when_note_type_says_nothing(api: httpx.Client):
    enc = api.post("/predict", json={"note_text": DISCHARGE, "include_encounter": True}).json()["encounter"]
    assert enc["setting"] == "inpatient" and "discharge" in enc["setting_reason"]
    codes = [c["code"] for c in enc["codes"]]
    assert any(c.startswith("E11.2") for c in codes) and "E11.9" not in codes, codes
    assert not any(c.startswith("R07") for c in codes)  # denied chest pain is never coded
    assert api.post("/predict", json={"note_text": NOTE, "setting": "day-case"}).json()["error"]["field"] == \
        "setting"
