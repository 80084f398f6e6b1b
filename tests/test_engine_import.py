"""The engine runs without the UI or the database: neither streamlit nor db is imported (fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import json, sys
import engine
loaded_on_import = sorted(m for m in sys.modules if m.split(".")[0] in {"streamlit", "db"})
from engine.ner import load
from engine.settings import Settings
spans = load(Settings(device="cpu")).predict(["Fever and cough treated with aspirin."])[0]
ner_only = sorted(m for m in sys.modules if m.split(".")[0] in {"streamlit", "db"})
pipeline_error = None
try:
    result = engine.load_pipeline(device="cpu").analyze("Fever and cough treated with aspirin.", "n1").to_dict()
except Exception as exc:  # reported, so the test can tell a missing stage from a forbidden import
    pipeline_error, result = repr(exc), None
after = sorted(m for m in sys.modules if m.split(".")[0] in {"streamlit", "db"})
print(json.dumps({"import": loaded_on_import, "ner": ner_only, "after": after, "n_spans": len(spans),
                  "result": result, "error": pipeline_error}))
"""


@pytest.mark.slow
def test_engine_imports_and_runs_without_streamlit_or_db() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["import"] == [] and report["ner"] == []
    assert report["n_spans"] > 0
    assert report["error"] is None, report["error"]
    assert report["after"] == []
    assert report["result"]["id"] == "n1" and report["result"]["entities"]
