"""The history backfill (engine/history.py) inside the real pipeline: diagnoses in past- and family-history phrases
that the NER model leaves untagged become entities, judged and coded like the others."""

from __future__ import annotations

import pytest

from engine.history import HistoryBackfill, load_patterns
from engine.settings import RULES_DIR
from engine.types import Span


@pytest.fixture(scope="module")
def backfill() -> HistoryBackfill:
    return HistoryBackfill(load_patterns(RULES_DIR / "history_phrases.tsv"))


def _items(backfill: HistoryBackfill, text: str) -> list[str]:
    return [text[a:b] for a, b in backfill.candidates(text)]


def test_list_items_after_history_phrases(backfill: HistoryBackfill) -> None:
    text = "He has a history of hypertension, COPD and prior myocardial infarction. Father died of an MI in his 60s."
    assert _items(backfill, text) == ["hypertension", "COPD", "myocardial infarction", "MI"]
    assert _items(backfill, "History of stroke in 2019.") == ["stroke"]
    assert _items(backfill, "FAMILY HISTORY: Pertinent for obesity and hypertension.") == ["obesity", "hypertension"]
    assert _items(backfill, "The patient is stable.") == []


def test_family_history_diagnoses_become_coded_family_entities(pipeline) -> None:
    text = "FAMILY HISTORY: Mother had breast cancer. Father with coronary artery disease.\n"
    entities = {e.text: e for e in pipeline.analyze(text).entities}
    assert entities["breast cancer"].label == "DIAG" and entities["breast cancer"].assertion == "family"
    assert entities["breast cancer"].codes[0].code.startswith("Z80")  # family history of malignant neoplasm
    assert entities["coronary artery disease"].assertion == "family"


def test_past_history_and_negated_history(pipeline) -> None:
    (stroke,) = [e for e in pipeline.analyze("History of stroke in 2019.").entities if e.text == "stroke"]
    assert stroke.assertion == "historical"
    negated = [e for e in pipeline.analyze("No family history of colon cancer.").entities if e.text == "colon cancer"]
    assert negated and negated[0].assertion == "negated" and not negated[0].codes


def test_non_diagnoses_and_ner_spans_are_left_alone(pipeline, backfill: HistoryBackfill) -> None:
    assert [e.text for e in pipeline.analyze("No history of sexual exposure or travel.").entities] == []
    text = "She has a history of hypertension."
    ner_spans = pipeline.stage("ner").predict([text])[0]
    assert any(text[s.start : s.end] == "hypertension" for s in ner_spans)  # the model finds this one itself
    assert backfill.find(text, ner_spans, pipeline.stage("icd")) == []  # so nothing is added twice
    assert [e.text for e in pipeline.analyze(text).entities].count("hypertension") == 1


def test_a_diagnosis_list_item_the_model_tags_as_another_label_is_coded(pipeline) -> None:
    """In a diagnosis list only a DIAG entity blocks an item: the model tags "Hepatitis C" a TEST here, and the
    axis header inside the list no longer cuts the item off at its colon."""
    text = ("DISCHARGE DIAGNOSES:AXIS I: Schizoaffective disorder.AXIS II: Deferred.AXIS III: Hepatitis C."
            "AXIS IV: Severe.")
    history, icd, sections = pipeline.stage("history"), pipeline.stage("icd"), pipeline.stage("sections")
    regions = history.regions(sections.detect(text), sections.header_spans(text))
    start = text.index("Hepatitis C")
    test_span = Span(start=start, end=start + len("Hepatitis C"), label="TEST", score=0.63)
    (added,) = [s for s in history.add(text, [test_span], icd, regions) if s.start == start]
    assert added.label == "DIAG" and text[added.start : added.end] == "Hepatitis C"
    coded = [e for e in pipeline.analyze(text).entities if e.text == "Hepatitis C"]
    assert coded and coded[0].codes and coded[0].codes[0].code.startswith("B1")


def test_an_item_whose_head_is_anatomy_is_not_a_diagnosis(pipeline) -> None:
    text = "PAST MEDICAL HISTORY: Metastatic breast cancer to her rib cage and spine, hypothyroidism."
    history, icd, sections = pipeline.stage("history"), pipeline.stage("icd"), pipeline.stage("sections")
    regions = history.regions(sections.detect(text), sections.header_spans(text))
    start = text.index("spine")
    anatomy = Span(start=start, end=start + len("spine"), label="ANAT", score=0.8)
    assert not [s for s in history.find(text, [anatomy], icd, regions) if s.start == start]
