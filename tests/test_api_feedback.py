"""``POST/GET /feedback`` and ``GET /export``: decisions under the key's reviewer with audit, the store's refusals,
idempotent retries, 16 concurrent clients losing nothing, the app's export formats.

Against the session's real ``python -m api`` process and its SQLite file (``tests/support/api_server.py``).
"""

from __future__ import annotations

import io
import json
import threading
import zipfile

import httpx
from support.api_server import NOTE, Server, stored


def test_feedback_is_recorded_under_the_key_reviewer_with_audit(api_server: Server, api: httpx.Client):
    out = stored(api)
    sid = out["entities"][0]["suggestion_id"]
    r = api.post("/feedback", json={"decision": "accept", "suggestion_id": sid, "comment": "ok"})
    assert r.status_code == 200, r.text
    assert r.json()["reviewer"] == "ann" and not r.json()["replayed"]
    with api_server.client(api_server.key_bob) as bob:
        r2 = bob.post("/feedback", json={"decision": "reject", "suggestion_id": sid})
    assert r2.json()["reviewer"] == "bob"
    audit = api_server.rows(f"SELECT actor FROM audit_log WHERE kind='decision' AND ref_id IN ({r.json()['id']}, "
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
    out = stored(api)
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


def test_feedback_request_id_makes_retries_safe(api_server: Server, api: httpx.Client):
    sid = stored(api)["entities"][0]["suggestion_id"]
    body = {"decision": "accept", "suggestion_id": sid, "request_id": "retry-1"}
    first, again = api.post("/feedback", json=body).json(), api.post("/feedback", json=body).json()
    assert again["replayed"] and again["id"] == first["id"]
    clash = api.post("/feedback", json={**body, "decision": "reject"})
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "duplicate"
    with api_server.client(api_server.key_bob) as bob:  # request ids are per key
        assert not bob.post("/feedback", json=body).json()["replayed"]
    assert api_server.rows("SELECT count(*) FROM api_feedback_requests WHERE request_id='retry-1'") == [(2,)]


def test_16_clients_post_1000_decisions_at_once(api_server: Server, api: httpx.Client):
    """1,000 decisions from 16 concurrent clients, a third of them sent twice (retries): 1,000 rows, no duplicate."""
    suggestions = [e["suggestion_id"] for e in stored(api, NOTE + " Follow-up in clinic.")["entities"]]
    before = api_server.rows("SELECT count(*) FROM decisions")[0][0]
    jobs = [{"decision": ("accept", "reject")[i % 2], "suggestion_id": suggestions[i % len(suggestions)],
             "request_id": f"load-{i}", "comment": f"c{i}"} for i in range(1000)]
    sends = jobs + jobs[::3]
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def client(part: list[dict]) -> None:
        with api_server.client() as c:
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
    assert api_server.rows("SELECT count(*) FROM decisions")[0][0] - before == 1000
    assert api_server.rows("SELECT count(*), count(DISTINCT comment) FROM decisions WHERE comment LIKE 'c%'") == [
        (1000, 1000)]
    assert api_server.rows("SELECT count(*) FROM api_feedback_requests WHERE request_id LIKE 'load-%'") == [(1000,)]
    ids = {out["id"] for _, out in results}
    assert len(ids) == 1000 and sum(out["replayed"] for _, out in results) == len(jobs[::3])


def test_export_streams_the_app_formats(api: httpx.Client):
    out = stored(api, NOTE + " Export me.")
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
