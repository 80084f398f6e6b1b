"""Monitoring through the API: every predicted note's statistics row (numbers only), and the ``/metrics`` gauges of
the monitoring report, refreshed in the background.

Against the session's real ``python -m api`` process and its SQLite file (``tests/support/api_server.py``).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support.api_server import MARKER, MONITOR_INTERVAL_S, NOTE, Server, stored
from support.devserver import REPO

from api.monitor import STATISTICS


def _api_stats(api_server: Server) -> list[tuple]:
    return api_server.rows("SELECT id, analysis_id, external_id, n_chars, n_entities FROM analysis_stats "
                         "WHERE source = 'api' ORDER BY id")


def test_predict_adds_one_stats_row_with_source_api(api_server: Server, api: httpx.Client):
    before = _api_stats(api_server)
    out = api.post("/predict", json={"note_id": "stats-1", "note_text": NOTE}).json()
    rows = _api_stats(api_server)
    assert len(rows) == len(before) + 1
    _, analysis_id, external_id, n_chars, n_entities = rows[-1]
    assert (analysis_id, external_id, n_chars, n_entities) == (None, "stats-1", len(NOTE), len(out["entities"]))
    stored = api.post("/predict", json={"note_id": "stats-2", "note_text": NOTE, "store": True}).json()
    rows2 = _api_stats(api_server)
    assert len(rows2) == len(rows) + 1 and rows2[-1][1:3] == (stored["analysis_id"], "stats-2")
    batch = api.post("/predict/batch", json={"notes": [{"note_text": NOTE}, {"note_id": "bad"},
                                                       {"note_text": "Chest pain."}]}).json()
    assert batch["succeeded"] == 2 and len(_api_stats(api_server)) == len(rows2) + 2  # the bad note adds none
    assert api.post("/deidentify", json={"text": NOTE}).status_code == 200
    assert len(_api_stats(api_server)) == len(rows2) + 2  # only predicted notes are profiled


def test_stats_rows_hold_no_note_text(api_server: Server, api: httpx.Client):
    assert api.post("/predict", json={"note_id": "stats-3", "note_text": NOTE}).status_code == 200
    rows = api_server.rows("SELECT * FROM analysis_stats WHERE source = 'api'")
    assert rows
    dump = repr(rows)
    assert MARKER not in dump and "lisinopril" not in dump and "hypertension" not in dump


def _gauges(api: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` as ``{(sample name, sorted labels): value}``."""
    r = api.get("/metrics")
    assert r.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def _same(gauge: float, value: float | None) -> bool:
    return math.isnan(gauge) if value is None else math.isclose(gauge, value, rel_tol=1e-9, abs_tol=1e-12)


def test_metrics_expose_the_monitor_report_as_gauges(api_server: Server, api: httpx.Client):
    """The gauges equal ``python -m engine monitor`` on the same SQLite file once a refresh has read it."""
    out = stored(api, NOTE + " Monitoring gauges.")
    sids = [e["suggestion_id"] for e in out["entities"]]
    for decision, sid in zip(("accept", "reject", "accept"), sids, strict=False):
        assert api.post("/feedback", json={"decision": decision, "suggestion_id": sid}).status_code == 200
    for i in range(3):
        assert api.post("/predict", json={"note_id": f"gauge-{i}", "note_text": NOTE}).status_code == 200
    written = time.time()
    deadline = time.monotonic() + 60 * MONITOR_INTERVAL_S
    gauges = _gauges(api)
    while gauges.get(("api_monitor_last_refresh_timestamp_seconds", ()), 0.0) <= written:
        assert time.monotonic() < deadline, "no monitoring refresh after the writes"
        time.sleep(MONITOR_INTERVAL_S / 2)
        gauges = _gauges(api)
    report = json.loads(subprocess.run([sys.executable, "-m", "engine", "monitor", "--db", api_server.url], cwd=REPO,
                                       capture_output=True, text=True, check=True).stdout)
    assert report["n_analyses"] == api_server.rows("SELECT count(*) FROM analysis_stats")[0][0]
    assert gauges[("api_monitor_analyses", ())] == report["n_analyses"]
    assert gauges[("api_monitor_window_notes", ())] == report["n_window"] > 0
    for name in STATISTICS:
        stat = report["statistics"][name]
        key = (("statistic", name),)
        assert _same(gauges[("api_monitor_value", key)], stat["value"]), (name, gauges[("api_monitor_value", key)])
        assert gauges[("api_monitor_alert", key)] == float(stat["alert"]), name
    assert report["statistics"]["input_drift"]["value"] is not None  # the window has notes: a real KL value
    assert gauges[("api_monitor_threshold", (("bound", "limit"), ("statistic", "input_drift")))] == 0.15
    assert gauges[("api_monitor_threshold", (("bound", "high"), ("statistic", "entities_per_note")))] == 50
    overall = report["override_rates"]["overall"]
    assert overall["decisions"] >= 3 and overall["rate"] is not None
    assert _same(gauges[("api_monitor_override_rate", (("key", "all"), ("scope", "overall")))], overall["rate"])
    for label, rate in report["override_rates"]["by_label"].items():
        assert _same(gauges[("api_monitor_override_rate", (("key", label), ("scope", "label")))], rate["rate"])
    assert not [k for k, v in gauges.items() if k[0] == "api_monitor_refresh_errors_total" and v > 0]
