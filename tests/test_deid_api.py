"""The REST API's store follows ``store_text`` like the app (issue 22): the real app in-process (FastAPI
``TestClient``, real default models on CPU), a real SQLite file, a key made by ``db.keys`` like an operator's.

Each test sends its own note: a note row keeps the form it was first stored in.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from db.keys import create_key
from db.session import dispose_engines, init_db, session_scope

NOTE = (
    "Patient: John Whitcombe  MRN: 4829301\n"
    "Seen on 03/14/2023 for chest pain and shortness of breath. Wife Maria Whitcombe at bedside, call (617) 555-0142.\n"
    "History of hypertension treated with lisinopril. He was started on metformin for type 2 diabetes.\n"
    "PLAN: Start aspirin 81 mg daily; repeat troponin in the morning."
)
PHI = ("Whitcombe", "John", "Maria", "03/14/2023", "555-0142", "4829301")


class Api:
    """The app under a ``TestClient``, its SQLite file and a reviewer's key."""

    def __init__(self, client: TestClient, db_path: Path, key: str) -> None:
        self.client, self.db_path = client, db_path
        self.headers = {"Authorization": f"Bearer {key}"}

    def post(self, path: str, body: dict) -> dict:
        r = self.client.post(f"/api/v1{path}", json=body, headers=self.headers)
        assert r.status_code == 200, r.text
        return r.json()

    def rows(self, sql: str, *args: object) -> list[tuple]:
        con = sqlite3.connect(self.db_path)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def note_text(self, analysis_id: int) -> str:
        ((text,),) = self.rows("SELECT n.text FROM notes n JOIN analyses a ON a.note_id = n.id WHERE a.id = ?",
                               analysis_id)
        return text

    def audit(self, kind: str, ref_id: int) -> dict:
        ((payload,),) = self.rows("SELECT payload FROM audit_log WHERE kind = ? AND ref_id = ?", kind, ref_id)
        return json.loads(payload) if isinstance(payload, str) else payload


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):
    db_path = tmp_path_factory.mktemp("deid-api") / "api.sqlite"
    url = f"sqlite:///{db_path}"
    with session_scope(init_db(url)) as session:
        _, key = create_key(session, reviewer="ann", name="deid-tests")
    app = create_app(ApiSettings(db_url=url, device="cpu"))
    with TestClient(app) as client:
        deadline = time.monotonic() + 300
        while client.get("/api/v1/ready").status_code != 200:
            assert time.monotonic() < deadline, "models did not load"
            time.sleep(1)
        yield Api(client, db_path, key)
    dispose_engines()


def _predict(api: Api, text: str) -> dict:
    return api.post("/predict", {"note_text": text, "store": True, "include_summary": True, "summary_sentences": 3})


def test_default_store_is_deidentified_with_spans_on_the_stored_text(api: Api, monkeypatch) -> None:
    monkeypatch.delenv("CLINICAL_NLP_STORE_TEXT", raising=False)
    out = _predict(api, NOTE)
    text = api.note_text(out["analysis_id"])
    assert text and text != NOTE and "chest pain" in text and "lisinopril" in text
    for phi in PHI:
        assert phi not in text, phi
    suggestions = api.rows("SELECT start, \"end\", text FROM suggestions WHERE analysis_id = ?", out["analysis_id"])
    assert suggestions and all(text[s:e] == t for s, e, t in suggestions)
    ((result,),) = api.rows("SELECT result FROM analyses WHERE id = ?", out["analysis_id"])
    assert not any(phi in result for phi in PHI)
    sentences = api.rows("SELECT start, \"end\", text FROM summary_sentences WHERE summary_id = ?",
                         out["summary"]["summary_id"])
    assert len(sentences) == len(out["summary"]["sentences"]) > 0
    assert all(text[s:e] == t and not any(phi in t for phi in PHI) for s, e, t in sentences)
    assert api.audit("analysis_stored", out["analysis_id"])["store_text"] == "deidentified"
    assert api.audit("summary_stored", out["summary"]["summary_id"])["store_text"] == "deidentified"
    # the response still answers in the client's own offsets
    assert all(NOTE[e["start_char"]:e["end_char"]] == e["text"] for e in out["entities"])


def test_client_offsets_in_feedback_land_on_the_same_words(api: Api, monkeypatch) -> None:
    monkeypatch.delenv("CLINICAL_NLP_STORE_TEXT", raising=False)
    note = NOTE.replace("morning", "evening")
    out = _predict(api, note)
    start = note.index("aspirin 81 mg")  # after several PHI replacements of other lengths
    added = api.post("/feedback", {"decision": "add", "analysis_id": out["analysis_id"], "start": start,
                                   "end": start + len("aspirin 81 mg"), "label": "MED"})
    ((s, e, t),) = api.rows("SELECT s.start, s.\"end\", s.text FROM suggestions s JOIN decisions d ON "
                            "d.suggestion_id = s.id WHERE d.id = ?", added["id"])
    stored = api.note_text(out["analysis_id"])
    assert stored != note and t == "aspirin 81 mg" == stored[s:e]
    assert stored.index("aspirin 81 mg") != start  # the stored note's offsets differ: the span was mapped
    target = next(x for x in out["entities"] if x["text"] == "troponin")
    fixed = note.index("repeat troponin")
    corrected = api.post("/feedback", {"decision": "correct", "suggestion_id": target["suggestion_id"],
                                       "corrected_start": fixed, "corrected_end": fixed + len("repeat troponin"),
                                       "corrected_label": "TEST"})
    ((cs, ce),) = api.rows("SELECT corrected_start, corrected_end FROM decisions WHERE id = ?", corrected["id"])
    assert api.note_text(out["analysis_id"])[cs:ce] == "repeat troponin"


@pytest.mark.parametrize("mode", ["original", "none"])
def test_store_text_original_and_none(api: Api, monkeypatch, mode: str) -> None:
    monkeypatch.setenv("CLINICAL_NLP_STORE_TEXT", mode)
    note = NOTE + f"\nStored as {mode}."
    out = _predict(api, note)
    text = api.note_text(out["analysis_id"])
    assert text == (note if mode == "original" else "")
    assert api.audit("analysis_stored", out["analysis_id"]) == {"store_text": mode}
    assert api.audit("summary_stored", out["summary"]["summary_id"]) == {"store_text": mode}
    sentences = api.rows("SELECT text FROM summary_sentences WHERE summary_id = ?", out["summary"]["summary_id"])
    assert sentences and all((t != "") == (mode == "original") for (t,) in sentences)


def test_summarize_store_is_deidentified(api: Api, monkeypatch) -> None:
    monkeypatch.delenv("CLINICAL_NLP_STORE_TEXT", raising=False)
    note = NOTE + "\nFollow up with Dr. Okafor on 04/02/2023."
    out = api.post("/summarize", {"note_text": note, "store": True, "sentences": 3})
    ((text,),) = api.rows("SELECT n.text FROM notes n JOIN summaries s ON s.note_id = n.id WHERE s.id = ?",
                          out["summary_id"])
    assert text != note and not any(phi in text for phi in (*PHI, "Okafor", "04/02/2023"))
    sentences = api.rows("SELECT id, start, \"end\", text FROM summary_sentences WHERE summary_id = ?",
                         out["summary_id"])
    assert all(text[s:e] == t for _, s, e, t in sentences)
    assert sorted(i for i, *_ in sentences) == sorted(s["sentence_id"] for s in out["sentences"])
    assert api.audit("summary_stored", out["summary_id"])["store_text"] == "deidentified"
