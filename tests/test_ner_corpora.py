"""Corpus readers: BRAT mapping, discontinuous and overlapping spans, IOB offsets, the deterministic split."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.corpora.brat import read_brat
from engine.corpora.document import Document, parse_label_map, resolve_overlaps, split_documents
from engine.corpora.iob import read_iob
from engine.errors import EngineError

FIXTURE = Path(__file__).parent / "fixtures" / "ner_tiny"


def test_brat_mapping_skips_discontinuous_and_keeps_longer_overlap(tmp_path: Path) -> None:
    text = "Severe chest pain in the left arm treated with aspirin."
    (tmp_path / "7.txt").write_text(text, encoding="utf-8")
    ann = [
        "T1\tSign_symptom 7 17\tchest pain",
        "T2\tBiological_structure 7 12\tchest",  # inside T1: the longer one wins
        "T3\tBiological_structure 21 33\tthe left arm",
        "T4\tDetailed_description 25 33\tleft arm",  # unmapped type
        "T5\tMedication 47 54\taspirin",
        "T6\tDiagnostic_procedure 0 6;25 29\tSevere left",  # discontinuous: skipped
        "E1\tSign_symptom:T1",
        "T7\tTherapeutic_procedure 34 46\ttreated with",
        "T8\tMedication 39 54\ted with aspirin",  # overlaps T5 and T7; longest wins
    ]
    (tmp_path / "7.ann").write_text("\n".join(ann) + "\n", encoding="utf-8")
    (doc,) = read_brat(tmp_path)
    assert [(text[s:e], lab) for s, e, lab in doc.spans] == [
        ("chest pain", "DIAG"),
        ("the left arm", "ANAT"),
        ("ed with aspirin", "MED"),
    ]


def test_overlap_tie_keeps_the_earlier() -> None:
    assert resolve_overlaps([(5, 9, "ANAT"), (3, 7, "DIAG"), (0, 2, "MED")]) == [(0, 2, "MED"), (3, 7, "DIAG")]


def test_fixture_offsets_match_annotated_text() -> None:
    docs = read_brat(FIXTURE)
    assert len(docs) == 12
    for doc in docs:
        assert doc.spans, doc.id
        ann = (FIXTURE / f"{doc.id}.ann").read_text(encoding="utf-8")
        written = {line.split("\t")[2] for line in ann.splitlines() if line.startswith("T")}
        assert all(doc.text[s:e] in written for s, e, _ in doc.spans)


def test_iob_tokens_become_text_with_offsets(tmp_path: Path) -> None:
    tsv = tmp_path / "train.tsv"
    tsv.write_text(
        "Aspirin\tB-Chemical\ncauses\tO\nacute\tB-Disease\nrenal\tI-Disease\nfailure\tI-Disease\n.\tO\n\n"
        "No\tO\nrash\tB-Disease\n\n",
        encoding="utf-8",
    )
    docs = read_iob(tsv, "bc5cdr", sentences_per_doc=2)
    assert len(docs) == 1
    doc = docs[0]
    assert doc.text == "Aspirin causes acute renal failure .\nNo rash"
    assert [(doc.text[s:e], lab) for s, e, lab in doc.spans] == [
        ("Aspirin", "MED"),
        ("acute renal failure", "DIAG"),
        ("rash", "DIAG"),
    ]


def test_label_maps_and_split() -> None:
    assert parse_label_map("Anatomy=ANAT") == {"Anatomy": "ANAT"}
    with pytest.raises(EngineError):
        parse_label_map("Anatomy=BODY")
    with pytest.raises(EngineError):
        parse_label_map("no-such-map")
    docs = [Document(id=str(i), text="x") for i in (10, 9, 100, 11)]
    train, dev = split_documents(docs, dev_count=1)
    assert [d.id for d in dev] == ["100"] and [d.id for d in train] == ["9", "10", "11"]


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as info:
        read_brat(tmp_path / "nothing")
    assert "no BRAT" in info.value.message
