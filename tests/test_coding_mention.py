"""Issue 15's structural parts one by one: the coding mention, the coding decision, metadata fields, problem-list
backfill, the sentence splitter's initials, the summariser's section priors and the highlight of a coding phrase.
The real rule files and, where a stage is needed, the real default pipeline on CPU."""

from __future__ import annotations

from engine.coding_mention import Coder, MentionBuilder, load_rules
from engine.metadata import load_rules as load_metadata
from engine.sentences import split_sentences
from engine.settings import RULES_DIR
from engine.types import Span
from ui.render import highlight_entities

RULES = load_rules(RULES_DIR)


def _mention(text: str, spans: list[Span], finding: int) -> str:
    builder = MentionBuilder(RULES)
    return builder.build(text, spans[finding], builder.index(text, spans)).text


def test_anatomy_before_after_and_modifiers_join_the_finding() -> None:
    text = "Acute urinary tract infection."
    assert _mention(text, [Span(6, 19, "ANAT", 0.9), Span(20, 29, "DIAG", 0.9)], 1) == "Acute urinary tract infection"
    text = "carcinoma of the left breast"
    assert _mention(text, [Span(0, 9, "DIAG", 0.9), Span(22, 28, "ANAT", 0.9)], 0) == text
    text = "pain radiating to the back"  # "radiating" links nothing: the back is not where the pain is coded
    assert _mention(text, [Span(0, 4, "DIAG", 0.9), Span(22, 26, "ANAT", 0.9)], 0) == "pain"
    text = "Abdomen: pain"  # a header colon is no anatomy-finding phrase
    assert _mention(text, [Span(0, 7, "ANAT", 0.9), Span(9, 13, "DIAG", 0.9)], 1) == "pain"
    text = "recurrent urinary tract infection"  # untagged anatomy words ("coding_anatomy.txt")
    assert _mention(text, [Span(24, 33, "DIAG", 0.9)], 0) == text


def test_chronic_history_is_coded_as_current_unless_over(pipeline) -> None:
    coded = {e.text: e for e in pipeline.analyze("PAST MEDICAL HISTORY: Hypertension. Asthma as a child.").entities}
    assert coded["Hypertension"].assertion == "historical" and coded["Hypertension"].codes[0].code == "I10"
    assert coded["Asthma"].codes[0].code.startswith("Z87")  # "as a child": history, not a current asthma
    stroke = next(e for e in pipeline.analyze("History of stroke in 2019.").entities if e.text == "stroke")
    assert stroke.codes[0].code == "Z86.73"  # a stroke is over; its history code stays


def test_combination_code_for_nausea_and_vomiting(pipeline) -> None:
    entities = pipeline.analyze("She has had nausea and vomiting since Monday.").entities
    codes = {e.text: e.codes[0].code for e in entities if e.codes}
    assert codes == {"nausea": "R11.2", "vomiting": "R11.2"}
    coder = Coder(RULES, pipeline.stage("icd"))
    assert coder.rules.combinations  # the combination list is data and read


def test_contract_fields_of_a_coding_mention(pipeline) -> None:
    result = pipeline.analyze("Patient presents with urinary tract infection.").to_dict()
    (finding,) = [e for e in result["entities"] if e["text"] == "infection"]
    assert finding["coding"]["text"] == "urinary tract infection"
    assert [(p["role"], p["text"]) for p in finding["coding"]["parts"]] == [
        ("anatomy", "urinary tract"),
        ("finding", "infection"),
    ]
    assert finding["codes"][0]["code"] == "N39.0"
    html = highlight_entities("Patient presents with urinary tract infection.", result["entities"])
    assert html.count(f'data-coding="{result["entities"].index(finding)}"') >= 2  # the whole phrase is marked
    assert "coded as “urinary tract infection”" in html


def test_metadata_fields_end_at_the_next_header_on_their_line() -> None:
    detector = load_metadata(RULES_DIR)
    text = "REFERRING PHYSICIAN: AB CD, M.D.ADMITTING DIAGNOSES: Asthma.\nKeywords: asthma, inhaler\nBP 120/80. T: 98.6"
    header = text.index("ADMITTING")
    fields = detector.spans(text, [0, header])
    assert [(text[a:b], n) for a, b, n in fields] == [
        ("REFERRING PHYSICIAN: AB CD, M.D.", "physician"),
        ("Keywords: asthma, inhaler", "keywords"),
    ]  # "T: 98.6" is a temperature, not a transcription date


def test_problem_list_items_become_entities(pipeline) -> None:
    text = "DIAGNOSES:\n1. Essential hypertension.\n2. Type 2 diabetes mellitus."
    coded = {e.text: e.codes[0].code for e in pipeline.analyze(text).entities if e.codes}
    assert coded.get("Type 2 diabetes mellitus") == "E11.9"
    # Outside a problem list the list reader adds no item (a condition named anywhere now comes from the term rows
    # of assets/rules/history_terms.tsv instead, which are judged by the assertion stage like any entity).
    plain = "The patient is doing well. Type 2 diabetes mellitus."
    item = (plain.index("Type"), len(plain) - 1)
    assert item not in pipeline.stage("history").candidates(plain)


def test_splitter_titles_and_initials() -> None:
    def split(text: str) -> list[str]:
        return [text[a:b] for a, b in split_sentences(text)]

    assert split("She was seen by Dr. Y. She has asthma.") == ["She was seen by Dr. Y.", "She has asthma."]
    assert split("Dr. J. Smith saw her today.") == ["Dr. J. Smith saw her today."]
    assert split("Referred by J. Smith. She is stable.") == ["Referred by J. Smith.", "She is stable."]
    assert split("She has hepatitis C. The viral load is low.") == ["She has hepatitis C.", "The viral load is low."]


NOTE = (
    "Medical Specialty:Cardiology\n"
    "Keywords: cardiology, chest pain, angina, stent\n"
    "HISTORY OF PRESENT ILLNESS: The patient is a 60-year-old man. He enjoys gardening. He walks his dog daily. "
    "He drove to the clinic today. His wife came with him. He reports chest pressure on exertion.\n"
    "REVIEW OF SYSTEMS: No fever. No cough. No rash.\n"
    "ASSESSMENT: Stable angina.\n"
    "PLAN: Start a beta blocker and schedule a stress test.\n"
)


def test_summary_keeps_the_assessment_and_plan_and_skips_metadata(pipeline) -> None:
    chosen = [s.text for s in pipeline.summarize(NOTE, k=3).sentences]
    assert any("Stable angina" in s for s in chosen) and any("beta blocker" in s for s in chosen)
    assert not any("Keywords" in s or "Specialty" in s for s in chosen)
