"""The Alphabetic Index reader, the tabular-only fallback, the dev protocol's hold-out, abstention (issue 18/15)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.evaluation.icd_split import group_of, held_out
from engine.icd import load
from engine.icd.alphabetic import AlphaIndexError, natural_phrase, parse
from engine.icd.linker import EXAM_DESCRIPTOR_NOTE, NO_CONFIDENT_CODE, IcdLinker
from engine.icd.tabular import KIND_INCLUSION, KIND_INDEX
from engine.settings import Settings

CSV = """RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code
1,G,0,Glioblastoma,,,(multiforme),
2,G,1,specified site,"Neoplasm, malignant, by site",,,
3,G,1,unspecified site,,,,C71.9
4,I,0,"Infarct, infarction",,,,
5,I,1,myocardium,,,(acute),I21.9
6,I,2,healed or old,,,,I25.2
7,H,0,Heart attack,"Infarct, myocardium",,,
8,W,0,Wilms' tumor,,,,C64-
9,D,0,Diabetes,,,(mellitus),E11.9
10,D,1,with,,,,
11,D,2,nephropathy,,,,E11.21
"""


def test_index_paths_see_references_and_default_subterms() -> None:
    entries = {e.term: e for e in parse(CSV)}
    # a main term without a code stands for its "unspecified site" subterm; nonessential words kept in parentheses
    assert entries["Glioblastoma (multiforme)"].code == "C71.9"
    assert entries["Infarct, infarction, myocardium (acute)"].code == "I21.9"
    assert entries["Infarct, infarction, myocardium (acute), healed or old"].code == "I25.2"
    # See: the row takes the code its reference leads to
    assert entries["Heart attack"].code == "I21.9"
    # an incomplete code is kept as its stem, flagged
    wilms = entries["Wilms' tumor"]
    assert wilms.code == "C64" and wilms.incomplete
    # the Neoplasm Table reference gives nothing; natural order puts clauses after the main term
    assert not any("specified site" in t and "unspecified" not in t for t in entries)
    assert entries["Diabetes (mellitus), with, nephropathy"].phrase == "diabetes with nephropathy"
    assert any(e.term == "Heart attack other" for e in parse(CSV.replace("Heart attack", "Heart attack NEC")))
    assert entries["Infarct, infarction, myocardium (acute)"].evidence == "Index: Infarct, infarction > myocardium"
    assert natural_phrase(["Fracture", "femur", "neck"]) == "neck femur fracture"


@pytest.mark.parametrize(
    "text",
    ["", "a,b,c\n1,2,3\n", CSV.replace("1,G,0,Glioblastoma", "1,G,x,Glioblastoma"), CSV.replace(",C71.9", ",banana")],
)
def test_malformed_index_is_refused(text: str) -> None:
    with pytest.raises(AlphaIndexError):
        parse(text)


@pytest.fixture(scope="module")
def linker(pipeline) -> IcdLinker:
    return pipeline.stage("icd")


def test_index_entries_give_codes_with_their_path_as_evidence(linker) -> None:
    top = linker.link("Glioblastoma")[0]
    assert top.code == "C71.9" and top.evidence and "Glioblastoma" in top.evidence
    assert linker.link("Kawasaki disease")[0].code == "M30.3"
    assert linker.notice is None


def test_missing_index_file_gives_a_notice_and_the_tabular_linker(tmp_path, capsys) -> None:
    settings = Settings(cache_dir=tmp_path, device="cpu", icd_index_path=tmp_path / "absent.csv")
    tabular = load(settings, hybrid=False)
    assert tabular.notice and "tabular" in tabular.notice
    assert "warning:" in capsys.readouterr().err
    assert tabular.link("heart attack")[0].code == "I21.9"
    assert tabular.version.endswith("(tabular only)")
    bad = tmp_path / "bad.csv"
    bad.write_text("not,an,index\n", encoding="utf-8")
    malformed = load(settings.with_overrides(icd_index_path=bad), hybrid=False)
    assert malformed.notice and "malformed" in malformed.notice
    assert malformed.link("heart attack")[0].code == "I21.9"


def test_exam_descriptors_and_low_scores_abstain(linker) -> None:
    for word in ("tender", "Soft", "atraumatic", "mass", "well-healed"):
        codes, candidates, note = linker.link_entity(word)
        assert codes == [] and note == EXAM_DESCRIPTOR_NOTE, word
    # a site makes it a finding the linker codes
    assert linker.link_entity("breast mass")[0]
    strict = IcdLinker(linker.settings.with_overrides(icd_min_score=1.01), linker.data, hybrid=linker.hybrid,
                       calibration=linker.calibration)
    codes, candidates, note = strict.link_entity("pneumonia")
    assert codes == [] and candidates and note == NO_CONFIDENT_CODE
    assert candidates[0].code == linker.link("pneumonia")[0].code
    codes, candidates, note = linker.link_entity("pneumonia")
    assert codes and not candidates and note is None
    # the link verb never abstains: the independent scoring reads its ranked list
    assert strict.link("pneumonia")


def test_dev_protocol_removes_held_out_wording(linker) -> None:
    from engine.icd.alphabetic import read_index
    from engine.icd.tabular import build

    assert group_of("I21.9") == group_of("I21.4")  # by category
    groups = {group_of(f"{letter}{n:02d}") for letter in "ABCDEFGHIJKLMN" for n in range(0, 99, 7)}
    assert groups == {"build", "ranker", "test"}
    settings = linker.settings
    data = build(settings, progress=False, alpha=read_index(settings.icd_index_path), holdout=held_out)
    kinds = np.asarray(data.doc_kind)
    codes = np.asarray(data.doc_code)
    out = {int(c) for c, k in zip(codes, kinds, strict=True) if k in (KIND_INCLUSION, KIND_INDEX)}
    assert out and not any(held_out(data.codes[c]) for c in out)
