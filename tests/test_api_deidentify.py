"""``POST /deidentify``: the engine CLI's answer, PHI labels and offsets, 422 naming the field.

Against the session's real ``python -m api`` process (``tests/support/api_server.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support.api_server import MARKER
from support.devserver import REPO

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
