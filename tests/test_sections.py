"""Section detection: header styles of clinical notes and MTSamples, sub-headers, and the rule file."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from engine.errors import EngineError, ErrorCode
from engine.pipeline import section_at
from engine.sections import SectionDetector, load, read_headers
from engine.settings import Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "assertion"


@pytest.fixture(scope="module")
def detector() -> SectionDetector:
    return load(Settings())


def _names(detector: SectionDetector, text: str) -> list[str]:
    return [s.name for s in detector.detect(text)]


def test_note_sections_in_order_and_contiguous(detector) -> None:
    text = (FIXTURES / "note.txt").read_text(encoding="utf-8")
    sections = detector.detect(text)
    assert [s.name for s in sections] == [
        "chief complaint", "history of present illness", "past medical history", "past surgical history",
        "family history", "social history", "medications", "allergies", "review of systems", "physical exam",
        "assessment and plan",
    ]
    for a, b in itertools.pairwise(sections):
        assert a.end == b.start
    assert sections[-1].end == len(text)
    # Body-system sub-headers (HEENT:, LUNGS:) stay inside the physical exam.
    assert section_at(sections, text.index("no wheezes")) == "physical exam"
    assert section_at(sections, text.index("Mother had")) == "family history"


def test_text_before_first_header_is_in_no_section(detector) -> None:
    text = "Seen today in clinic.\nHPI: cough for a week."
    sections = detector.detect(text)
    assert section_at(sections, 0) is None
    assert section_at(sections, text.index("cough")) == "history of present illness"


def test_mtsamples_styles(detector) -> None:
    glued = (
        "Immunizations up to date.ALLERGIES: No known allergies.MEDICATIONS: None.\n"
        "PMH:  Unremarkable.FHX: Noncontributory."
    )
    assert _names(detector, glued) == ["allergies", "medications", "past medical history", "family history"]
    comma = "PAST MEDICAL HISTORY:, Hypertension.\nSOCIAL HISTORY:, Nonsmoker."
    assert _names(detector, comma) == ["past medical history", "social history"]


def test_header_alone_on_its_line_and_mixed_case(detector) -> None:
    text = "Family History\nMother had breast cancer.\nAssessment and Plan: pneumonia."
    assert _names(detector, text) == ["family history", "assessment and plan"]
    # A header word inside a sentence is prose, not a header.
    assert _names(detector, "He has a family history of diabetes and a plan for exercise.") == []


def test_unknown_capital_header_closes_the_previous_section(detector) -> None:
    text = "FAMILY HISTORY: Diabetes in father.\nDEVELOPMENTAL MILESTONES: walks alone.\nBMI: 20"
    sections = detector.detect(text)
    assert [s.name for s in sections] == ["family history", "developmental milestones"]
    assert section_at(sections, text.index("walks")) == "developmental milestones"


def test_repeated_section_merges(detector) -> None:
    text = "PREOPERATIVE DIAGNOSIS: Appendicitis.\nPOSTOPERATIVE DIAGNOSIS: Same."
    assert _names(detector, text) == ["diagnoses"]


def test_headers_are_data(tmp_path: Path) -> None:
    (tmp_path / "section_headers.tsv").write_text("# mine\nwhat happened\thistory of present illness\n")
    custom = load(Settings().with_overrides(rules_dir=tmp_path))
    assert _names(custom, "What happened: fell down.") == ["history of present illness"]
    (tmp_path / "section_headers.tsv").write_text("only one column\n")
    with pytest.raises(EngineError) as info:
        read_headers(tmp_path / "section_headers.tsv")
    assert info.value.code is ErrorCode.MODEL_INVALID


@pytest.mark.shared_data
def test_mtsamples_reports(detector, shared_data: Path) -> None:
    files = sorted((shared_data / "mtsamples").glob("*.txt"))[:60]
    assert files
    named = 0
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        sections = detector.detect(text)
        for a, b in itertools.pairwise(sections):
            assert a.start < a.end <= b.start
        for s in sections:
            assert s.name == s.name.lower() and s.name.strip()
        named += any(s.name in {"history of present illness", "past medical history", "physical exam"}
                     for s in sections)
    assert named >= 20
