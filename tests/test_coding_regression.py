"""Issue 15's six failure classes as short notes through the real pipeline (``Pipeline.analyze`` on CPU).

Each row of ``tests/fixtures/coding/regression.jsonl`` is a note in our own wording and what a coder expects of
the entities over given phrases. Every row runs for real: the ``assertion`` rows (list scope, durations,
treated history) and the ``icd`` rows (abstention, exam descriptors).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.evaluation.coding_regression import check

FIXTURES = Path(__file__).resolve().parent / "fixtures"

ROWS = [json.loads(line) for line in (FIXTURES / "coding" / "regression.jsonl").read_text().splitlines() if line]
@pytest.mark.parametrize("row", [pytest.param(row, id=row["id"]) for row in ROWS])
def test_failure_class(row: dict[str, Any], pipeline) -> None:
    problems = check(row, [e.to_dict() for e in pipeline.analyze(row["text"]).entities])
    assert not problems, f"class {row['class']} ({row['id']}): " + "; ".join(problems)


def test_fixture_covers_all_six_classes() -> None:
    assert {row["class"] for row in ROWS} == {1, 2, 3, 4, 5, 6}
    assert len(ROWS) >= 25


def test_check_reports_each_failed_expectation() -> None:
    row = {"text": "Patient presents with urinary tract infection.",
           "expect": [{"phrase": "infection", "code": "N39.0", "mention": "urinary tract infection"}]}
    wrong = [{"start": 36, "end": 45, "text": "infection", "label": "DIAG", "assertion": "present",
              "codes": [{"code": "M86.9"}]}]
    assert len(check(row, wrong)) == 2  # wrong code, no coding mention
    assert len(check(row, [])) == 2
