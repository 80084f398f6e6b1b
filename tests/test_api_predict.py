"""``POST /predict``, ``/predict/batch``, ``/summarize`` and ``/link``: fields, offsets, the engine CLI's answer, limits
and validation (413, 422 naming the field, never a 500).

Against the session's real ``python -m api`` process (``tests/support/api_server.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support.api_server import MAX_BODY_BYTES, MAX_NOTE_CHARS, NOTE
from support.devserver import REPO


def test_predict_has_the_seed_fields_and_the_richer_ones(api: httpx.Client):
    body = {"note_id": "n-1", "note_text": NOTE, "note_type": "progress", "priority": "stat",
            "metadata": {"encounter_id": "E1", "department": "cardiology", "provider_id": "P9"},
            "include_summary": True}
    r = api.post("/predict", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["note_id"] == "n-1" and out["metadata"]["department"] == "cardiology"
    assert out["model_version"] == out["models"]["ner"] and out["processing_time_ms"] > 0
    assert out["entities"], out
    for e in out["entities"]:
        assert NOTE[e["start_char"]:e["end_char"]] == e["text"]
        assert e["type"] in {"DIAG", "PROC", "MED", "TEST", "ANAT"} and 0 <= e["confidence"] <= 1
        assert e["icd_codes"] == [c["code"] for c in e["codes"]]
        assert e["is_negated"] == (e["assertion"] == "negated" or "negated" in e["traits"])
    pain = [e for e in out["entities"] if e["text"] == "pain"]
    assert pain and pain[0]["is_negated"] and pain[0]["negation_trigger"] == "denies" and not pain[0]["icd_codes"]
    htn = [e for e in out["entities"] if e["text"] == "hypertension"]
    assert htn and htn[0]["assertion"] == "historical" and htn[0]["icd_codes"], out["entities"]
    assert all(c["description"] and 0 <= c["score"] <= 1 for e in out["entities"] for c in e["codes"])
    assert out["summary"]["sentences"] and all(NOTE[s["start"]:s["end"]] == s["text"]
                                               for s in out["summary"]["sentences"])
    assert out["analysis_id"] is None and out["entities"][0]["suggestion_id"] is None


def test_predict_matches_the_engine_cli(api: httpx.Client, tmp_path: Path):
    note = tmp_path / "note.txt"
    note.write_text(NOTE, encoding="utf-8")
    cli = json.loads(subprocess.run([sys.executable, "-m", "engine", "analyze", "--device", "cpu", str(note)],
                                    cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()[0])
    out = api.post("/predict", json={"note_text": NOTE}).json()
    assert [(e["start_char"], e["end_char"], e["type"], e["icd_codes"]) for e in out["entities"]] == [
        (e["start"], e["end"], e["label"], [c["code"] for c in e["codes"]]) for e in cli["entities"]]


def test_over_the_size_limit_is_413(api: httpx.Client):
    r = api.post("/predict", json={"note_text": "a" * (MAX_NOTE_CHARS + 1)})
    assert r.status_code == 413 and r.json()["error"]["field"] == "note_text"
    r = api.post("/predict", content=b'{"note_text": "' + b"b" * MAX_BODY_BYTES + b'"}',
                 headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert api.post("/summarize", json={"note_text": "c" * (MAX_NOTE_CHARS + 1)}).status_code == 413
    r = api.post("/deidentify", json={"text": "d" * (MAX_NOTE_CHARS + 1)})
    assert r.status_code == 413 and r.json()["error"]["field"] == "text"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "note_text"),
    ({"note_text": ""}, "note_text"),
    ({"note_text": 5}, "note_text"),
    ({"note_text": "x", "priority": "asap"}, "priority"),
    ({"note_text": "x", "metadata": {"department": "d" * 201}}, "metadata.department"),
    ({"note_text": "x", "metadata": []}, "metadata"),
    ({"note_text": "x", "summary_sentences": "3"}, "summary_sentences"),
    ({"note_text": "x", "surprise": 1}, "surprise"),
])


def test_invalid_bodies_are_422_naming_the_field(api: httpx.Client, body, field):
    r = api.post("/predict", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert '"input"' not in json.dumps(r.json()["error"]["fields"])  # pydantic's echo of the value is dropped


def test_nothing_a_client_sends_gives_500(api: httpx.Client):
    raw_bodies = [b"", b"null", b"[1,2", b"\xff\xfe", b'"just a string"', b"[]", b"{}" * 1000, b"1e999999",
                  b'{"note_text": "\\ud800 lone surrogate"}', b'{"note_text": "\\u0000\\u0000"}',
                  b'{"note_text": "' + "é🙂".encode() * 200 + b'"}', b'{"note_text": {"$gt": ""}}',
                  b'{"text": "\\ud800 lone surrogate"}', b'{"text": "\\u0000"}', b'{"id": 5, "text": "x"}']
    paths = ("/predict", "/predict/batch", "/summarize", "/link", "/deidentify", "/feedback")
    statuses = set()
    for path in paths:
        for raw in raw_bodies:
            for ctype in ("application/json", "text/plain"):
                r = api.post(path, content=raw, headers={"content-type": ctype})
                assert r.status_code < 500, (path, raw[:40], r.status_code, r.text[:300])
                statuses.add(r.status_code)
    for params in ({"format": "xml"}, {"since": "yesterday"}, {"limit": "-1"}, {"label": "FOO"},
                   {"format": "summary_jsonl", "label": "DIAG"}, {"split": "2"}, {"format": "jsonl", "split": "0.2"}):
        r = api.get("/export" if "format" in params or "split" in params else "/feedback", params=params)
        assert r.status_code == 422, (params, r.text)
    assert statuses <= {200, 413, 422}


def test_batch_returns_one_entry_per_note_in_order(api: httpx.Client):
    notes = [{"note_id": "a", "note_text": NOTE}, {"note_id": "b"}, 7,
             {"note_id": "c", "note_text": "x" * (MAX_NOTE_CHARS + 1)},
             {"note_id": "d", "note_text": "Chest pain and shortness of breath.", "priority": "urgent"},
             {"note_id": "e", "note_text": "x", "include_encounter": True}]
    r = api.post("/predict/batch", json={"notes": notes})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [i["index"] for i in out["results"]] == list(range(6))
    assert [i["status"] for i in out["results"]] == [200, 422, 422, 413, 200, 200]
    assert out["results"][1]["error"]["field"] == "notes.1.note_text"
    assert out["results"][2]["error"]["field"] == "notes.2"
    assert out["results"][3]["error"]["field"] == "notes.3.note_text"
    assert out["results"][0]["result"]["note_id"] == "a" and out["results"][4]["result"]["entities"]
    assert (out["succeeded"], out["failed"]) == (3, 3)
    assert out["results"][5]["result"]["encounter"]["codes"] == []  # "x": no diagnosis, an empty code set
    assert out["results"][0]["result"]["encounter"] is None
    alone = api.post("/predict", json=notes[0]).json()
    assert [e["start_char"] for e in alone["entities"]] == [
        e["start_char"] for e in out["results"][0]["result"]["entities"]]


def test_batch_over_32_notes_is_422(api: httpx.Client):
    r = api.post("/predict/batch", json={"notes": [{"note_text": "x"}] * 33})
    assert r.status_code == 422 and r.json()["error"]["field"] == "notes"
    assert api.post("/predict/batch", json={"notes": []}).json()["error"]["field"] == "notes"


def test_summarize_and_link(api: httpx.Client):
    r = api.post("/summarize", json={"note_id": "s", "note_text": NOTE, "sentences": 2})
    assert r.status_code == 200, r.text
    assert len(r.json()["sentences"]) == 2
    assert all(NOTE[s["start"]:s["end"]] == s["text"] for s in r.json()["sentences"])
    r = api.post("/link", json={"id": "m", "text": "type 2 diabetes mellitus"})
    assert r.status_code == 200 and r.json()["codes"][0]["code"].startswith("E11")
    assert api.post("/link", json={"text": "x", "label": "BOGUS"}).json()["error"]["field"] == "label"
