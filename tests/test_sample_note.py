"""The README's first-steps sample note (``assets/samples/sample_note.txt``) analyses as the walk-through says,
through the real engine on CPU: enough entities of every type, every assertion the README names, and codes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from engine.types import LABELS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "assets" / "samples" / "sample_note.txt"
README = (REPO / "README.md").read_text(encoding="utf-8")

MIN_ENTITIES = 40
MIN_CODED = 15


@pytest.fixture(scope="module")
def analysis(pipeline):
    return pipeline.analyze(SAMPLE.read_text(encoding="utf-8"), note_id="sample").to_dict()


def _first(analysis: dict, text: str) -> dict:
    return next(e for e in analysis["entities"] if e["text"].lower() == text)


def test_the_readme_walks_through_the_shipped_sample_note():
    assert "assets/samples/sample_note.txt" in README
    assert len(SAMPLE.read_text(encoding="utf-8")) < 200_000  # within the app's note limit


def test_sample_note_has_entities_of_every_type_and_codes(analysis):
    entities = analysis["entities"]
    assert len(entities) >= MIN_ENTITIES
    assert set(Counter(e["label"] for e in entities)) == set(LABELS)
    coded = [e for e in entities if e["codes"]]
    assert len(coded) >= MIN_CODED
    assert len({e["codes"][0]["code"] for e in coded}) >= 10


def test_sample_note_shows_what_the_readme_says(analysis):
    assertions = Counter(e["assertion"] for e in analysis["entities"])
    assert {"present", "negated", "historical", "family", "hypothetical"} <= set(assertions)
    assert _first(analysis, "hemoptysis")["assertion"] == "negated"
    assert _first(analysis, "breast cancer")["assertion"] == "family"
    assert _first(analysis, "pulmonary embolism")["assertion"] == "hypothetical"
    assert _first(analysis, "myocardial infarction")["assertion"] == "historical"
    assert _first(analysis, "pneumonia")["codes"][0]["code"] == "J18.9"  # as the README says
    assert _first(analysis, "essential hypertension")["codes"][0]["code"] == "I10"
