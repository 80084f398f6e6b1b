"""The REST API against a real uvicorn process on a free port, the real default engine on CPU and a real SQLite file.

One server serves the module (loading the models takes ~30 s). Keys are made with ``python -m db keys`` like an
operator would. The server's log is read at the end: no note text may appear in it.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
MARKER = "Quorvex"
"""A word that occurs only in the notes these tests send (searched for in the server log)."""
NOTE = (f"Mr {MARKER} denies chest pain. History of hypertension treated with lisinopril. "
        "He has type 2 diabetes mellitus and was started on metformin. Chest X-ray was normal.")
MAX_NOTE_CHARS = 5_000
MAX_BODY_BYTES = 300_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _db_cli(url: str, *args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "db", "--url", url, *args], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


class Server:
    """A running ``python -m api`` process."""

    def __init__(self, tmp: Path) -> None:
        self.db_path = tmp / "api.sqlite"
        self.url = f"sqlite:///{self.db_path}"
        self.log_path = tmp / "server.log"
        _db_cli(self.url, "init")
        self.key = _db_cli(self.url, "keys", "create", "--reviewer", "ann", "--name", "tests")[0]["key"]
        self.key_bob = _db_cli(self.url, "keys", "create", "--reviewer", "bob")[0]["key"]
        revoked = _db_cli(self.url, "keys", "create", "--reviewer", "eve")[0]
        _db_cli(self.url, "keys", "revoke", str(revoked["id"]))
        self.revoked_key = revoked["key"]
        self.port = _free_port()
        env = {**os.environ, "CLINICAL_NLP_API_DEVICE": "cpu", "CLINICAL_NLP_API_MAX_NOTE_CHARS": str(MAX_NOTE_CHARS),
               "CLINICAL_NLP_API_MAX_BODY_BYTES": str(MAX_BODY_BYTES), "CLINICAL_NLP_API_LOG_LEVEL": "debug"}
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "api", "--port", str(self.port), "--db-url", self.url],
                                     cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}/api/v1"

    def wait_ready(self, timeout: float = 300.0) -> dict:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                r = httpx.get(f"{self.base}/ready", timeout=10)
                last = r.json()
                if r.status_code == 200:
                    return last
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(1)
        raise RuntimeError(f"not ready after {timeout} s: {last}")

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = Server(tmp_path_factory.mktemp("api"))
    try:
        srv.ready = srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def api(server: Server):
    with server.client() as c:
        yield c


def _rows(server: Server, sql: str) -> list[tuple]:
    con = sqlite3.connect(server.db_path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------------- service


def test_health_and_ready_need_no_key_and_ready_ran_the_probe(server: Server):
    assert server.ready["status"] == "ready" and server.ready["probe_entities"] > 0
    assert server.ready["probe_ms"] < 2000
    r = httpx.get(f"{server.base}/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["models_loaded"] is True
    docs = httpx.get(f"http://127.0.0.1:{server.port}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(f"http://127.0.0.1:{server.port}/openapi.json").json()
    assert {"/api/v1/predict", "/api/v1/predict/batch", "/api/v1/feedback", "/api/v1/export"} <= set(spec["paths"])


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer cnlp_not-a-key"}, {"X-API-Key": "nope"},
                                     {"Authorization": "Basic abc"}])
def test_every_other_route_needs_a_key(server: Server, headers):
    for method, path in (("POST", "/predict"), ("POST", "/predict/batch"), ("POST", "/summarize"),
                         ("POST", "/link"), ("POST", "/deidentify"), ("POST", "/feedback"), ("GET", "/feedback"),
                         ("GET", "/export"), ("GET", "/metrics")):
        r = httpx.request(method, f"{server.base}{path}", headers=headers, json={"note_text": NOTE})
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"]["code"] == "unauthorized"


def test_a_revoked_key_is_refused_and_x_api_key_works(server: Server):
    body = {"text": "heart attack"}
    assert httpx.post(f"{server.base}/link", json=body, headers={"X-API-Key": server.revoked_key}).status_code == 401
    r = httpx.post(f"{server.base}/link", json=body, headers={"X-API-Key": server.key}, timeout=60)
    assert r.status_code == 200 and r.json()["codes"][0]["code"].startswith("I2")


# ---------------------------------------------------------------------------------------------------- predict


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


# ---------------------------------------------------------------------------------------------------- feedback


def _stored(api: httpx.Client, text: str = NOTE) -> dict:
    r = api.post("/predict", json={"note_text": text, "store": True, "include_summary": True})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["analysis_id"] and all(e["suggestion_id"] for e in out["entities"])
    return out


def test_feedback_is_recorded_under_the_key_reviewer_with_audit(server: Server, api: httpx.Client):
    out = _stored(api)
    sid = out["entities"][0]["suggestion_id"]
    r = api.post("/feedback", json={"decision": "accept", "suggestion_id": sid, "comment": "ok"})
    assert r.status_code == 200, r.text
    assert r.json()["reviewer"] == "ann" and not r.json()["replayed"]
    with server.client(server.key_bob) as bob:
        r2 = bob.post("/feedback", json={"decision": "reject", "suggestion_id": sid})
    assert r2.json()["reviewer"] == "bob"
    audit = _rows(server, f"SELECT actor FROM audit_log WHERE kind='decision' AND ref_id IN ({r.json()['id']}, "
                          f"{r2.json()['id']}) ORDER BY ref_id")
    assert audit == [("ann",), ("bob",)]
    sentence = out["summary"]["sentences"][0]["sentence_id"]
    r3 = api.post("/feedback", json={"decision": "drop", "sentence_id": sentence})
    assert r3.status_code == 200 and r3.json()["kind"] == "sentence_decision"
    start = NOTE.index("metformin")
    r4 = api.post("/feedback", json={"decision": "add", "analysis_id": out["analysis_id"], "start": start,
                                     "end": start + 9, "label": "PROC"})
    assert r4.status_code == 200 and r4.json()["decision"] == "add"
    listed = api.get("/feedback", params={"reviewer": "bob"}).json()["items"]
    assert [d["id"] for d in listed] == [r2.json()["id"]]


def test_feedback_refusals_match_the_store(api: httpx.Client):
    out = _stored(api)
    sid = out["entities"][0]["suggestion_id"]
    cases = [
        ({"decision": "accept", "suggestion_id": 10**9}, 404, "unknown_suggestion"),
        ({"decision": "correct", "suggestion_id": sid}, 422, "bad_input"),
        ({"decision": "correct", "suggestion_id": sid, "corrected_start": 0, "corrected_end": 10**6}, 422,
         "bad_span"),
        ({"decision": "accept", "suggestion_id": sid, "target": "code", "code": "NOT-A-CODE"}, 422, None),
        ({"decision": "accept", "suggestion_id": "1"}, 422, "invalid_request"),
        ({"decision": "keep", "sentence_id": 10**9}, 404, "unknown_sentence"),
        ({"decision": "maybe", "suggestion_id": sid}, 422, "invalid_request"),
        ({"decision": "accept", "suggestion_id": sid, "reviewer": "mallory"}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        r = api.post("/feedback", json=body)
        assert r.status_code == status, (body, r.text)
        if code:
            assert r.json()["error"]["code"] == code, (body, r.text)


def test_feedback_request_id_makes_retries_safe(server: Server, api: httpx.Client):
    sid = _stored(api)["entities"][0]["suggestion_id"]
    body = {"decision": "accept", "suggestion_id": sid, "request_id": "retry-1"}
    first, again = api.post("/feedback", json=body).json(), api.post("/feedback", json=body).json()
    assert again["replayed"] and again["id"] == first["id"]
    clash = api.post("/feedback", json={**body, "decision": "reject"})
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "duplicate"
    with server.client(server.key_bob) as bob:  # request ids are per key
        assert not bob.post("/feedback", json=body).json()["replayed"]
    assert _rows(server, "SELECT count(*) FROM api_feedback_requests WHERE request_id='retry-1'") == [(2,)]


def test_16_clients_post_1000_decisions_at_once(server: Server, api: httpx.Client):
    """1,000 decisions from 16 concurrent clients, a third of them sent twice (retries): 1,000 rows, no duplicate."""
    suggestions = [e["suggestion_id"] for e in _stored(api, NOTE + " Follow-up in clinic.")["entities"]]
    before = _rows(server, "SELECT count(*) FROM decisions")[0][0]
    jobs = [{"decision": ("accept", "reject")[i % 2], "suggestion_id": suggestions[i % len(suggestions)],
             "request_id": f"load-{i}", "comment": f"c{i}"} for i in range(1000)]
    sends = jobs + jobs[::3]
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def client(part: list[dict]) -> None:
        with server.client() as c:
            barrier.wait()
            for body in part:
                r = c.post("/feedback", json=body)
                with lock:
                    results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=client, args=(sends[i::16],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == len(sends) and {s for s, _ in results} == {200}, [r for r in results if r[0] != 200][:3]
    assert _rows(server, "SELECT count(*) FROM decisions")[0][0] - before == 1000
    assert _rows(server, "SELECT count(*), count(DISTINCT comment) FROM decisions WHERE comment LIKE 'c%'") == [
        (1000, 1000)]
    assert _rows(server, "SELECT count(*) FROM api_feedback_requests WHERE request_id LIKE 'load-%'") == [(1000,)]
    ids = {out["id"] for _, out in results}
    assert len(ids) == 1000 and sum(out["replayed"] for _, out in results) == len(jobs[::3])


# ---------------------------------------------------------------------------------------------------- export, metrics


def test_export_streams_the_app_formats(api: httpx.Client):
    out = _stored(api, NOTE + " Export me.")
    api.post("/feedback", json={"decision": "accept", "suggestion_id": out["entities"][0]["suggestion_id"]})
    with api.stream("GET", "/export", params={"format": "jsonl"}) as r:  # not marked fully reviewed: not gold
        assert r.status_code == 200
        assert all(json.loads(line)["analysis_id"] != out["analysis_id"] for line in r.iter_lines() if line)
    with api.stream("GET", "/export", params={"format": "jsonl", "include_silver": "true"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        docs = [json.loads(line) for line in r.iter_lines() if line]
    assert any(d["analysis_id"] == out["analysis_id"] for d in docs)
    conll = api.get("/export", params={"format": "conll", "reviewer": "ann", "include_silver": "true"})
    assert conll.status_code == 200 and "\tB-" in conll.text
    brat = api.get("/export", params={"format": "brat", "include_silver": "true"})
    names = zipfile.ZipFile(io.BytesIO(brat.content)).namelist()
    assert "manifest.json" in names and any(n.endswith(".ann") for n in names)
    docbin = api.get("/export", params={"format": "docbin", "split": "0.5", "include_silver": "true"})
    assert any(n.endswith(".spacy") for n in zipfile.ZipFile(io.BytesIO(docbin.content)).namelist())


def test_metrics_are_prometheus_text(api: httpx.Client):
    api.post("/predict", json={"note_text": NOTE})
    api.post("/predict", json={"note_text": ""})
    text = api.get("/metrics").text
    assert 'api_request_seconds_bucket{le="0.5",method="POST",route="/api/v1/predict"}' in text
    assert 'api_errors_total{route="/api/v1/predict",status="422"}' in text
    assert "api_entities_per_note_count" in text and "api_entity_confidence_mean_sum" in text


# ---------------------------------------------------------------------------------------------------- deidentify

PHI_NOTE = (f"Mr {MARKER} Smith (MRN 12345678) was seen on 03/04/2021 at Boston General Hospital. "
            "Call 617-555-0123. He denies chest pain.")


def test_deidentify_matches_the_engine_cli(api: httpx.Client, tmp_path: Path):
    r = api.post("/deidentify", json={"id": "d-1", "text": PHI_NOTE})
    assert r.status_code == 200, r.text
    out = r.json()
    jsonl = tmp_path / "notes.jsonl"
    jsonl.write_text(json.dumps({"id": "d-1", "text": PHI_NOTE}) + "\n", encoding="utf-8")
    cli = json.loads(subprocess.run([sys.executable, "-m", "engine", "deidentify", "--jsonl", str(jsonl)],
                                    cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()[0])
    assert {k: out[k] for k in ("id", "text", "phi")} == cli
    labels = {PHI_NOTE[p["start"]:p["end"]]: p["label"] for p in out["phi"]}
    assert labels.get("12345678") == "ID" and labels.get("03/04/2021") == "DATE", labels
    assert labels.get("617-555-0123") == "PHONE", labels
    assert any(MARKER in span and label == "NAME" for span, label in labels.items()), labels
    assert MARKER not in out["text"] and "617-555-0123" not in out["text"] and "chest pain" in out["text"]
    assert out["processing_time_ms"] > 0


@pytest.mark.parametrize(("body", "field"), [
    ({}, "text"),
    ({"text": ""}, "text"),
    ({"text": 5}, "text"),
    ({"note_text": "x"}, "text"),
    ({"id": 5, "text": "x"}, "id"),
    ({"text": "a\x00b"}, "text"),
])
def test_deidentify_invalid_bodies_are_422_naming_the_field(api: httpx.Client, body, field):
    r = api.post("/deidentify", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


# ---------------------------------------------------------------------------------------------------- monitoring


def _api_stats(server: Server) -> list[tuple]:
    return _rows(server, "SELECT id, analysis_id, external_id, n_chars, n_entities FROM analysis_stats "
                         "WHERE source = 'api' ORDER BY id")


def test_predict_adds_one_stats_row_with_source_api(server: Server, api: httpx.Client):
    before = _api_stats(server)
    out = api.post("/predict", json={"note_id": "stats-1", "note_text": NOTE}).json()
    rows = _api_stats(server)
    assert len(rows) == len(before) + 1
    _, analysis_id, external_id, n_chars, n_entities = rows[-1]
    assert (analysis_id, external_id, n_chars, n_entities) == (None, "stats-1", len(NOTE), len(out["entities"]))
    stored = api.post("/predict", json={"note_id": "stats-2", "note_text": NOTE, "store": True}).json()
    rows2 = _api_stats(server)
    assert len(rows2) == len(rows) + 1 and rows2[-1][1:3] == (stored["analysis_id"], "stats-2")
    batch = api.post("/predict/batch", json={"notes": [{"note_text": NOTE}, {"note_id": "bad"},
                                                       {"note_text": "Chest pain."}]}).json()
    assert batch["succeeded"] == 2 and len(_api_stats(server)) == len(rows2) + 2  # the bad note adds none
    assert api.post("/deidentify", json={"text": NOTE}).status_code == 200
    assert len(_api_stats(server)) == len(rows2) + 2  # only predicted notes are profiled


def test_stats_rows_hold_no_note_text(server: Server, api: httpx.Client):
    assert api.post("/predict", json={"note_id": "stats-3", "note_text": NOTE}).status_code == 200
    con = sqlite3.connect(server.db_path)
    try:
        rows = con.execute("SELECT * FROM analysis_stats WHERE source = 'api'").fetchall()
    finally:
        con.close()
    assert rows
    dump = repr(rows)
    assert MARKER not in dump and "lisinopril" not in dump and "hypertension" not in dump


# ---------------------------------------------------------------------------------------------------- encounter

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


def test_zz_no_note_text_in_the_server_log(server: Server, api: httpx.Client):
    api.post("/predict", json={"note_text": f"{MARKER} " + "z" * 10, "priority": "asap"})
    log = server.log_path.read_text()
    assert "POST /api/v1/predict 200" in log
    assert MARKER not in log and "lisinopril" not in log
