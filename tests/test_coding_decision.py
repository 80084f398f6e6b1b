"""The coding decision on findings the NER model found (engine/coding_mention.py): which findings get no code and
which code a finding written as history gets. The real rule files and the real ICD stage of the default pipeline
on CPU; the findings are given as entities, so each test checks the decision alone, whatever the NER model tags."""

from __future__ import annotations

from engine.coding_mention import ANATOMY_NOTE, GENERIC_NOTE, REACTION_NOTE, Coder, load_rules
from engine.settings import RULES_DIR
from engine.types import Entity

RULES = load_rules(RULES_DIR)


def _code(pipeline, text: str, *findings: tuple[str, str, list[str]]) -> dict[str, Entity]:
    """Code the ``(words, label, traits)`` findings of ``text`` (each the first occurrence of its words)."""
    entities = []
    for words, label, traits in findings:
        start = text.index(words)
        entities.append(Entity(start, start + len(words), words, label, 0.9, traits=list(traits)))
    Coder(RULES, pipeline.stage("icd")).code_all(text, entities, entities)
    return {e.text: e for e in entities}


def test_a_finding_that_names_no_site_gets_no_code_but_keeps_its_candidates(pipeline) -> None:
    coded = _code(pipeline, "She reports pain and bleeding.", ("pain", "DIAG", []), ("bleeding", "DIAG", []))
    for word in ("pain", "bleeding"):
        assert coded[word].codes == [] and coded[word].note == GENERIC_NOTE
        assert coded[word].candidates  # the residual code stays visible, folded away
    coded = _code(pipeline, "She reports left knee pain.", ("left knee pain", "DIAG", []))
    assert coded["left knee pain"].codes[0].code == "M25.562"  # with a site it is coded


def test_an_anatomy_word_tagged_as_a_finding_gets_no_code(pipeline) -> None:
    coded = _code(pipeline, "Sclerae are anicteric.", ("Sclerae", "DIAG", []))
    assert coded["Sclerae"].codes == [] and coded["Sclerae"].note == ANATOMY_NOTE
    coded = _code(pipeline, "Bowel obstruction.", ("Bowel", "ANAT", []), ("obstruction", "DIAG", []))
    assert coded["obstruction"].codes[0].code.startswith("K56")  # taken into a finding's mention, it specifies it


def test_a_symptom_or_anaemia_written_as_history_is_coded_as_current(pipeline) -> None:
    text = "History of fever and anemia. Pneumonia in 2019."
    coded = _code(pipeline, text, ("fever", "DIAG", ["historical"]), ("anemia", "DIAG", ["historical"]),
                  ("Pneumonia", "DIAG", ["historical"]))
    assert coded["fever"].codes[0].code == "R50.9"  # no personal-history code for a symptom (not Z87.898)
    assert coded["anemia"].codes[0].code == "D64.9"  # not Z86.2
    assert coded["Pneumonia"].codes[0].code == "Z87.01"  # a condition that ends keeps its history code


def test_a_reaction_listed_under_allergies_gets_no_code(pipeline) -> None:
    text = "ALLERGIES: Penicillin causes hives."
    entity = Entity(text.index("hives"), text.index("hives") + 5, "hives", "DIAG", 0.9, section="allergies")
    Coder(RULES, pipeline.stage("icd")).code_all(text, [entity], [entity])
    assert entity.codes == [] and entity.note == REACTION_NOTE
    coded = _code(pipeline, "She has hives.", ("hives", "DIAG", []))
    assert coded["hives"].codes[0].code.startswith("L50")  # elsewhere the same finding is coded


def test_metastatic_site_cancer_is_coded_as_the_primary(pipeline) -> None:
    coded = _code(pipeline, "She has metastatic breast cancer.", ("breast cancer", "DIAG", []))
    assert coded["breast cancer"].codes[0].code.startswith("C50")  # not C79.81, secondary of the breast


def test_a_residual_code_is_only_suggested(pipeline) -> None:
    # (was "testicular cancer", which the linker now reads as the testis: Z85.47)
    coded = _code(pipeline, "History of adrenal cancer.", ("adrenal cancer", "DIAG", ["historical"]))
    finding = coded["adrenal cancer"]  # the linker finds only Z85.9, "... malignant neoplasm, unspecified"
    assert finding.codes == [] and finding.note == GENERIC_NOTE
    assert finding.candidates[0].code == "Z85.9" and "Z85.9" in RULES.residual


def test_gross_hematuria_keeps_its_modifier(pipeline) -> None:
    coded = _code(pipeline, "He has gross hematuria.", ("hematuria", "DIAG", []))
    assert coded["hematuria"].codes[0].code == "R31.0"  # not R31.9, hematuria unspecified
