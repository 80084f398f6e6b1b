"""The contract's command line, end to end in a subprocess: ``python -m engine analyze`` JSON round trip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTE = (
    "HISTORY OF PRESENT ILLNESS:\nA 62-year-old woman presents with fever, productive cough and shortness of "
    "breath. She denies chest pain.\n\nASSESSMENT AND PLAN:\nChest radiograph shows right lower lobe pneumonia. "
    "Start amoxicillin 500 mg three times daily. Blood cultures were drawn.\n"
)
ENTITY_FIELDS = {"start", "end", "text", "label", "score", "assertion", "traits", "trigger", "section", "codes"}
ASSERTIONS = {"present", "negated", "possible", "hypothetical", "historical", "family"}


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=REPO, input=stdin, capture_output=True, text=True, env=env,
        timeout=900,
    )


def _check_result(result: dict, text: str) -> None:
    assert set(result) >= {"id", "entities", "models", "timings_ms"}
    assert set(result["models"]) >= {"ner", "assertion", "icd", "summarizer"}
    assert set(result["timings_ms"]) >= {"ner", "assertion", "icd", "total"}
    for entity in result["entities"]:
        assert set(entity) >= ENTITY_FIELDS
        assert text[entity["start"] : entity["end"]] == entity["text"]
        assert entity["label"] in {"DIAG", "PROC", "MED", "TEST", "ANAT"}
        assert 0.0 <= entity["score"] <= 1.0
        assert entity["assertion"] in ASSERTIONS and isinstance(entity["traits"], list)
        assert entity["section"] is None or entity["section"] == entity["section"].lower()
        assert len(entity["codes"]) <= 5
        for code in entity["codes"]:
            assert set(code) >= {"code", "description", "score", "billable"} and 0.0 <= code["score"] <= 1.0


@pytest.mark.slow
def test_analyze_round_trip_files_and_jsonl(tmp_path: Path) -> None:
    note = tmp_path / "note-1.txt"
    note.write_text(NOTE, encoding="utf-8")
    done = _run("analyze", str(note), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.strip().splitlines()
    result = json.loads(line)
    assert result["id"] == str(note)
    _check_result(result, NOTE)
    found = {(e["text"].lower(), e["label"]) for e in result["entities"]}
    assert ("amoxicillin", "MED") in found and ("fever", "DIAG") in found
    ner_version = json.loads((REPO / "assets" / "models" / "ner" / "config.json").read_text())["version"]
    assert result["models"]["ner"] == ner_version

    # --jsonl keeps ids and order; a bad line is named on stderr, exit 2, the others still written
    second = "Unicode 🙂 note: naïve patient with anemia, given heparin."
    lines = [json.dumps({"id": "a", "text": NOTE}), "{not json", json.dumps({"id": "b", "text": second}),
             json.dumps({"id": "c"}), json.dumps({"id": "d", "text": ""})]
    batch = tmp_path / "in.jsonl"
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = _run("analyze", "--jsonl", str(batch), "--device", "cpu")
    assert done.returncode == 2
    assert f"{batch}:2" in done.stderr and f"{batch}:4" in done.stderr
    results = [json.loads(x) for x in done.stdout.strip().splitlines()]
    assert [r["id"] for r in results] == ["a", "b", "d"]
    _check_result(results[0], NOTE)
    _check_result(results[1], second)
    assert results[2]["entities"] == []
