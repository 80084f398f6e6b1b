"""Sentence segmentation on clinical text: headers, lists, vitals, abbreviations, offsets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sentences import split_sentences


def sents(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_empty_and_blank() -> None:
    assert split_sentences("") == []
    assert split_sentences("   \n\n  ") == []


def test_single_sentence_without_period() -> None:
    assert sents("  Patient stable  ") == ["Patient stable"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Seen by Dr. Smith today. He is well.",
            ["Seen by Dr. Smith today.", "He is well."],
        ),
        (
            "Metoprolol 25 mg p.o. b.i.d. and aspirin daily. Follow up in 2 weeks.",
            ["Metoprolol 25 mg p.o. b.i.d. and aspirin daily.", "Follow up in 2 weeks."],
        ),
        (
            "Metoprolol 25 mg b.i.d. Aspirin 81 mg daily.",
            ["Metoprolol 25 mg b.i.d.", "Aspirin 81 mg daily."],
        ),
        (
            "Findings were similar, e.g. mild edema. No effusion.",
            ["Findings were similar, e.g. mild edema.", "No effusion."],
        ),
        (
            "Given fluids in the E.R. and improved. Discharged home.",
            ["Given fluids in the E.R. and improved.", "Discharged home."],
        ),
        (
            "Potassium was 3.5 mEq/L. Creatinine 1.2 mg/dL.",
            ["Potassium was 3.5 mEq/L.", "Creatinine 1.2 mg/dL."],
        ),
    ],
)
def test_abbreviations_and_decimals(text: str, expected: list[str]) -> None:
    assert sents(text) == expected


def test_header_on_its_own_line_is_not_merged() -> None:
    text = "HISTORY OF PRESENT ILLNESS:\nThe patient is a 65-year-old man with chest pain.\nPLAN\nAdmit to telemetry."
    assert sents(text) == [
        "HISTORY OF PRESENT ILLNESS:",
        "The patient is a 65-year-old man with chest pain.",
        "PLAN",
        "Admit to telemetry.",
    ]


def test_title_case_header_and_short_lines() -> None:
    text = "Chief Complaint\nChest pain\nHistory: The pain started two days ago and radiates\nto the left arm."
    assert sents(text) == [
        "Chief Complaint",
        "Chest pain",
        "History: The pain started two days ago and radiates\nto the left arm.",
    ]


def test_numbered_list_items_are_sentences_and_markers_do_not_split() -> None:
    text = "PLAN:\n1. Continue aspirin.\n2. Start atorvastatin 40 mg daily.\n3. Echo in 3 months."
    assert sents(text) == [
        "PLAN:",
        "1. Continue aspirin.",
        "2. Start atorvastatin 40 mg daily.",
        "3. Echo in 3 months.",
    ]


def test_inline_numbered_list_after_header() -> None:
    text = "ASSESSMENT: 1. CHF. 2. COPD exacerbation."
    assert sents(text) == ["ASSESSMENT: 1. CHF.", "2. COPD exacerbation."]


def test_glued_transcription_list_is_split() -> None:
    text = "IMPRESSION:1. Normal LV size.2. Ejection fraction around 60%.3. No effusion.DOPPLER:\n1. Trace MR."
    assert sents(text) == [
        "IMPRESSION:1. Normal LV size.",
        "2. Ejection fraction around 60%.",
        "3. No effusion.",
        "DOPPLER:",
        "1. Trace MR.",
    ]


def test_bullets_start_new_sentences() -> None:
    text = "Medications\n- aspirin 81 mg daily\n- lisinopril 10 mg daily"
    assert sents(text) == ["Medications", "- aspirin 81 mg daily", "- lisinopril 10 mg daily"]


def test_vitals_line_stays_one_sentence() -> None:
    text = "VITALS: T 98.6. P 72. BP 120/80. RR 16. SpO2 98% on RA.\nThe patient is comfortable."
    assert sents(text) == ["VITALS: T 98.6. P 72. BP 120/80. RR 16. SpO2 98% on RA.", "The patient is comfortable."]


def test_vital_value_then_prose_splits() -> None:
    assert sents("Temp 98.6. Patient is comfortable.") == ["Temp 98.6.", "Patient is comfortable."]


def test_wrapped_prose_line_is_joined() -> None:
    text = "The patient reports intermittent substernal chest pressure for three\ndays, worse with exertion."
    assert sents(text) == [text]


def test_blank_line_always_ends_a_sentence() -> None:
    assert sents("Assessment stable\n\nplan discussed with family") == [
        "Assessment stable",
        "plan discussed with family",
    ]


def test_lowercase_tokenised_article_text() -> None:
    text = (
        "the dose was 5 mg . nowadays , programs run world - wide .\n"
        "in vietnam ,\nschool programs improved intakes ( smith et al . 2010 ) . fig . 2 shows this ."
    )
    assert sents(text) == [
        "the dose was 5 mg .",
        "nowadays , programs run world - wide .",
        "in vietnam ,\nschool programs improved intakes ( smith et al . 2010 ) .",
        "fig . 2 shows this .",
    ]


def test_joined_by_space_or_newline_gives_the_same_sentences_for_punctuated_lines() -> None:
    lines = ["the first finding is clear .", "a second finding follows .", "we conclude that it works ."]
    assert sents(" ".join(lines)) == sents("\n".join(lines)) == lines


def test_question_and_exclamation() -> None:
    assert sents("Any chest pain? None! Good.") == ["Any chest pain?", "None!", "Good."]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .!?\n:-1D.r")), max_size=80))
def test_offsets_are_verbatim_ordered_and_stripped(text: str) -> None:
    spans = split_sentences(text)
    last = 0
    for s, e in spans:
        assert last <= s < e <= len(text)
        piece = text[s:e]
        assert piece == piece.strip() and piece
        last = e
    # Nothing but whitespace is lost between sentences.
    covered = "".join(text[s:e] for s, e in spans)
    assert covered.replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Seen by Rev. Smith today. He prayed.", ["Seen by Rev. Smith today.", "He prayed."]),
        ("Capt. Jones was injured. He is stable.", ["Capt. Jones was injured.", "He is stable."]),
        ("Seen by Lt. Col. Brown. She is well.", ["Seen by Lt. Col. Brown.", "She is well."]),
        ("Seen by Dr. J.K. Rowling. She is well.", ["Seen by Dr. J.K. Rowling.", "She is well."]),
        ("Seen by Dr. Smith, Jr. He was well.", ["Seen by Dr. Smith, Jr.", "He was well."]),
        ("John Smith, Jr. was seen today.", ["John Smith, Jr. was seen today."]),
        ("He has vitamin D. deficiency. He eats well.", ["He has vitamin D. deficiency.", "He eats well."]),
        ("Referred by Mary K. Brown, M.D. for evaluation.", ["Referred by Mary K. Brown, M.D. for evaluation."]),
        ("Dr. A. B. Jones saw her. Plan is surgery.", ["Dr. A. B. Jones saw her.", "Plan is surgery."]),
        ("Membranes are clear A.U. Oral cavity is moist.", ["Membranes are clear A.U.", "Oral cavity is moist."]),
        ("Seen by Mary Brown, M.D. Plan is rest.", ["Seen by Mary Brown, M.D.", "Plan is rest."]),
    ],
)
def test_titles_and_initials(text: str, expected: list[str]) -> None:
    # Issue 15, class 6: military and clerical titles, "Jr." before a new sentence, run-together initials and a
    # capital letter of a name ("vitamin D.") before a lower-case word.
    assert sents(text) == expected
