"""The API as a service: liveness, readiness and docs, keys on every route, Prometheus text, a log free of note text.

Against the session's real ``python -m api`` process (``tests/support/api_server.py``).
"""

from __future__ import annotations

import httpx
import pytest
from support.api_server import MARKER, NOTE, Server


def test_health_and_ready_need_no_key_and_ready_ran_the_probe(api_server: Server):
    assert api_server.ready["status"] == "ready" and api_server.ready["probe_entities"] > 0
    assert api_server.ready["probe_ms"] < 2000
    r = httpx.get(f"{api_server.base}/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["models_loaded"] is True
    docs = httpx.get(f"http://127.0.0.1:{api_server.port}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(f"http://127.0.0.1:{api_server.port}/openapi.json").json()
    assert {"/api/v1/predict", "/api/v1/predict/batch", "/api/v1/feedback", "/api/v1/export"} <= set(spec["paths"])


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer cnlp_not-a-key"}, {"X-API-Key": "nope"},
                                     {"Authorization": "Basic abc"}])


def test_every_other_route_needs_a_key(api_server: Server, headers):
    for method, path in (("POST", "/predict"), ("POST", "/predict/batch"), ("POST", "/summarize"),
                         ("POST", "/link"), ("POST", "/deidentify"), ("POST", "/feedback"), ("GET", "/feedback"),
                         ("GET", "/export"), ("GET", "/metrics")):
        r = httpx.request(method, f"{api_server.base}{path}", headers=headers, json={"note_text": NOTE})
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"]["code"] == "unauthorized"


def test_a_revoked_key_is_refused_and_x_api_key_works(api_server: Server):
    body = {"text": "heart attack"}
    revoked = httpx.post(f"{api_server.base}/link", json=body, headers={"X-API-Key": api_server.revoked_key})
    assert revoked.status_code == 401
    r = httpx.post(f"{api_server.base}/link", json=body, headers={"X-API-Key": api_server.key}, timeout=60)
    assert r.status_code == 200 and r.json()["codes"][0]["code"].startswith("I2")


def test_metrics_are_prometheus_text(api: httpx.Client):
    api.post("/predict", json={"note_text": NOTE})
    api.post("/predict", json={"note_text": ""})
    text = api.get("/metrics").text
    assert 'api_request_seconds_bucket{le="0.5",method="POST",route="/api/v1/predict"}' in text
    assert 'api_errors_total{route="/api/v1/predict",status="422"}' in text
    assert "api_entities_per_note_count" in text and "api_entity_confidence_mean_sum" in text


def test_no_note_text_in_the_server_log(api_server: Server, api: httpx.Client):
    """The log holds what every earlier test of the session sent (their notes carry the marker) and, so the test
    does not depend on the order, a request of each kind with note text sent here."""
    marked = f"{MARKER} " + "z" * 10
    api.post("/predict", json={"note_text": marked, "priority": "asap"})  # 422: pydantic's error quotes input
    api.post("/predict", json={"note_text": f"{MARKER} takes lisinopril."})
    api.post("/predict/batch", json={"notes": [{"note_text": marked}, {"note_text": marked, "surprise": 1}]})
    api.post("/summarize", json={"note_text": f"{MARKER} is stable. He takes lisinopril."})
    api.post("/deidentify", json={"text": f"Mr {MARKER} was seen."})
    api.post("/predict", content=f'{{"note_text": "{MARKER}'.encode(), headers={"content-type": "application/json"})
    log = api_server.log_path.read_text()
    assert "POST /api/v1/predict 200" in log and "POST /api/v1/predict 422" in log
    assert MARKER not in log and "lisinopril" not in log
