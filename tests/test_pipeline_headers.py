"""Section headers' own words are not entities ("HPI:" is a heading, not a test), anatomy headers excepted."""

from __future__ import annotations

from engine.pipeline import drop_header_words
from engine.types import Span

NOTE = (
    "HPI: 58 yo male with history of COPD presents with shortness of breath.\n"
    "PAST MEDICAL HISTORY: Hypertension.\n"
    "ASSESSMENT AND PLAN: Chest x-ray today.\n"
)


def test_header_words_are_dropped_but_findings_stay(pipeline) -> None:
    ner_spans = pipeline.stage("ner").predict([NOTE])[0]
    assert any(NOTE[s.start : s.end] == "HPI" for s in ner_spans), "the NER model tags the heading; else pick another"
    entities = pipeline.analyze(NOTE).entities
    texts = {e.text for e in entities}
    assert "HPI" not in texts
    assert {"COPD", "shortness of breath", "Hypertension"} <= texts
    assert all(NOTE[e.start : e.end] == e.text for e in entities)


def test_only_spans_wholly_inside_a_header_go_and_anatomy_stays() -> None:
    headers = [(0, 4), (20, 26)]
    spans = [
        Span(0, 3, "TEST", 0.9),  # inside the first header
        Span(2, 8, "DIAG", 0.9),  # crosses its end: kept
        Span(20, 25, "ANAT", 0.9),  # inside, but anatomy ("CHEST:")
        Span(21, 24, "PROC", 0.9),  # inside
        Span(30, 35, "MED", 0.9),
    ]
    kept = drop_header_words(spans, headers)
    assert [(s.start, s.label) for s in kept] == [(2, "DIAG"), (20, "ANAT"), (30, "MED")]
    assert drop_header_words(spans, []) == spans


def test_modifier_words_before_a_diagnosis_reach_the_linker(pipeline) -> None:
    text = "Chronic DVT of the left leg. Ultrasound confirmed DVT."
    chronic, plain = [e for e in pipeline.analyze(text).entities if e.text == "DVT"]
    assert chronic.coding.text == "Chronic DVT of the left leg"  # modifier and anatomy (engine/coding_mention.py)
    assert plain.coding is None  # "confirmed" is no modifier: the entity's own text is coded
    assert chronic.codes[0].code.startswith("I82.5")  # chronic embolism and thrombosis of deep veins
    assert plain.codes[0].code.startswith("I82.4")  # acute, the default
