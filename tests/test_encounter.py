"""The encounter's code set, convention by convention (engine/encounter/).

Each test names the rule it checks and cites the ICD-10-CM Official Guidelines for Coding and Reporting (FY2025)
or the Tabular List note it comes from. Inputs are analyses built directly (real text and offsets, codes described
by the real ICD index), so each convention is checked alone and fast; the real linker, Tabular notes and rule
files run underneath. End-to-end cases through the whole pipeline are in test_encounter_e2e.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from engine.encounter import DecisionRecord, Encounter, EncounterBuilder, apply_decisions, record_decisions, replay
from engine.encounter.conventions import Conventions
from engine.encounter.notes import parse_refs
from engine.errors import EngineError, ErrorCode
from engine.types import AnalysisResult, Code, Entity


@pytest.fixture(scope="session")
def icd(pipeline):
    """The real ICD stage (its index only; no NER is loaded)."""
    return pipeline.stage("icd")


@pytest.fixture(scope="session")
def builder(pipeline) -> EncounterBuilder:
    """The real encounter stage (Tabular notes parsed from simple-icd-10-cm, cached)."""
    return pipeline.stage("encounter")


@dataclass(frozen=True)
class Dx:
    """One mention: words, the codes the linker gave (best first), traits, section, words after it."""

    words: str
    codes: tuple[str, ...] = ()
    traits: tuple[str, ...] = ()
    section: str | None = "assessment"
    after: str = ""
    label: str = "DIAG"
    score: float = 0.95
    trigger: str | None = None
    sep: str = ". "
    before: str = ""


def note(icd, *mentions: Dx, prefix: str = "ASSESSMENT: ") -> tuple[AnalysisResult, str]:
    """The analysis and text of a note made of ``mentions`` (entity offsets index into the text)."""
    text, entities = prefix, []
    for d in mentions:
        text += d.before
        start = len(text)
        text += d.words
        end = len(text)
        text += d.after + d.sep
        found = []
        for c in d.codes:
            known = icd.describe(c)
            assert known is not None, c
            found.append(Code(known.code, known.description, d.score, known.billable))
        entities.append(Entity(start, end, d.words, d.label, 0.9, list(d.traits), d.trigger, d.section, found))
    return AnalysisResult("t", entities, {}, {}), text


def build(builder, icd, *mentions: Dx, setting: str = "outpatient", prefix: str = "ASSESSMENT: ") -> Encounter:
    analysis, text = note(icd, *mentions, prefix=prefix)
    return builder.build(analysis, text, setting, icd=icd)


def codes(enc: Encounter) -> list[str]:
    return [ln.code for ln in sorted(enc.codes, key=lambda ln: ln.sequence)]


def dropped(enc: Encounter, rule: str) -> list[str | None]:
    return [d.code for d in enc.dropped if d.rule == rule]


# ----------------------------------------------------------------------------------------- parsing the notes
def test_note_ref_dash_wildcard_covers_the_category() -> None:
    """Tabular convention I.A.3: a dash (``E10.-``) means the code is incomplete and stands for all codes under it
    (E11 Excludes1 "type 1 diabetes mellitus (E10.-)")."""
    (ref,) = parse_refs("type 1 diabetes mellitus (E10.-)")
    assert ref.matches("E10.9") and ref.matches("E10.21") and ref.matches("E10")
    assert not ref.matches("E11.9") and not ref.matches("E01.0")


def test_note_ref_range_holds_children_of_both_ends() -> None:
    """E11.22 Use additional code "(N18.1-N18.6)": a range includes every code under its first and last code."""
    (ref,) = parse_refs("code to identify stage of chronic kidney disease (N18.1-N18.6)")
    assert ref.matches("N18.1") and ref.matches("N18.30") and ref.matches("N18.32") and ref.matches("N18.6")
    assert not ref.matches("N18.9") and not ref.matches("N18") and not ref.matches("N17.9")


def test_note_ref_with_final_characters_restricts_the_range() -> None:
    """G63 Excludes1 "diabetes mellitus (E08-E13 with .42)": only the .42 codes of the range are meant."""
    (ref,) = parse_refs("diabetes mellitus (E08-E13 with .42)")
    assert ref.matches("E11.42") and ref.matches("E10.42")
    assert not ref.matches("E11.40") and not ref.matches("E11.9") and not ref.matches("E14.42")


def test_note_ref_with_character_position_restricts_the_range() -> None:
    """Notes such as "(T36-T50 with fifth or sixth character 5)" (adverse effects) name one character position."""
    (ref,) = parse_refs("code first, if applicable, adverse effect (T36-T50 with fifth or sixth character 5)")
    assert ref.matches("T36.0X5A") and ref.matches("T38.3X5A")
    assert not ref.matches("T36.0X1A") and not ref.matches("T51.0X5A")


def test_note_ref_bare_and_undotted_codes(builder) -> None:
    """Notes also write codes outside parentheses ("jaw pain R68.84", R07 Excludes2) and without the dot; words
    that only look like codes ("T2DM") are not codes of the classification and are dropped."""
    assert [str(r) for r in parse_refs("jaw pain R68.84")] == ["R68.84"]
    assert [str(r) for r in parse_refs("see E1122")] == ["E11.22"]
    import simple_icd_10_cm as cm

    assert parse_refs("T2DM follow-up", lambda c: bool(cm.is_valid_item(c))) == []


def test_conventions_category_notes_hold_for_every_code_under_it(builder) -> None:
    """Tabular convention I.A.12: a note at a category applies to all its codes: E11.9 inherits E11's Excludes1
    "type 1 diabetes mellitus (E10.-)", and I10 inherits its block's (I10-I1A) Excludes1 "neonatal hypertension"."""
    conventions: Conventions = builder.conventions
    note = conventions.excludes1("E11.9", "E10.65")
    assert note is not None and note.source in {"E11", "E10"}
    block = conventions.excludes1("I10", "P29.2")
    assert block is not None and block.source == "I10-I1A"
    assert conventions.lineage("S72.001A")[:5] == ["S72.001A", "S72.001", "S72.00", "S72.0", "S72"]


# ----------------------------------------------------------------------------------------- Excludes1 / Excludes2
def test_excludes1_E10_E11_never_both(builder, icd) -> None:
    """Guideline I.A.12.a Excludes1 ("NOT CODED HERE"): E11 Excludes1 "type 1 diabetes mellitus (E10.-)", so type 1
    and type 2 diabetes are never reported together; one is kept and the conflict is shown."""
    enc = build(builder, icd, Dx("type 2 diabetes", ("E11.9",)), Dx("type 1 diabetes", ("E10.9",)))
    assert len({c[:3] for c in codes(enc)} & {"E10", "E11"}) == 1
    (conflict,) = enc.conflicts
    assert conflict.type == "excludes1" and set(conflict.codes) == {"E10.9", "E11.9"}
    assert conflict.dropped and conflict.kept and "Excludes1" in conflict.note


def test_excludes1_keeps_the_better_supported_code(builder, icd) -> None:
    """Excludes1 pairs: the code with more support (two mentions against one) is the one kept."""
    enc = build(builder, icd, Dx("type 1 diabetes", ("E10.9",)), Dx("diabetes type 2", ("E11.9",)),
                Dx("T2DM", ("E11.9",)))
    assert codes(enc) == ["E11.9"]
    assert enc.conflicts[0].kept == ["E11.9"] and enc.conflicts[0].dropped == ["E10.9"]
    assert "2 mentions against 1" in enc.conflicts[0].reason


def test_excludes1_unrelated_exception_is_a_flag_not_silence(builder, icd) -> None:
    """Guideline I.A.12.a exception: when the two conditions are unrelated both may be reported; the builder
    cannot know, so the conflict and the kept line carry the flag for the coder."""
    enc = build(builder, icd, Dx("depression", ("F32.A",)), Dx("bipolar disorder", ("F31.9",)))
    (conflict,) = enc.conflicts
    assert "I.A.12.a" in conflict.flag and "unrelated" in conflict.flag
    kept = enc.line(conflict.kept[0])
    assert any("I.A.12.a" in f for f in kept.flags)


def test_excludes1_pain_unspecified_with_chest_pain(builder, icd) -> None:
    """R52 Excludes1 "localized pain ... chest pain (R07.1-R07.9)": pain NOS is not reported with chest pain."""
    enc = build(builder, icd, Dx("pain", ("R52",), score=0.8), Dx("chest pain", ("R07.9",)))
    assert codes(enc) == ["R07.9"]
    assert enc.conflicts and enc.conflicts[0].dropped == ["R52"]


def test_excludes2_both_reported(builder, icd) -> None:
    """Guideline I.A.12.b Excludes2 ("not included here"): J44 Excludes2 "emphysema without chronic bronchitis
    (J43.-)"; when the patient has both, both are reported, and the reason says so."""
    enc = build(builder, icd, Dx("COPD", ("J44.9",)), Dx("emphysema", ("J43.9",)))
    assert set(codes(enc)) == {"J44.9", "J43.9"} and not enc.conflicts
    assert "Excludes2" in enc.line("J44.9").reason


# ----------------------------------------------------------------------------------------- combination codes
def test_combination_diabetes_ckd_E11_22_plus_N18(builder, icd) -> None:
    """Guideline I.A.15 "with" and I.C.4.a; Index: Diabetes, with, chronic kidney disease E11.22. E11.22's note
    "use additional code to identify stage of chronic kidney disease (N18.1-N18.6)" puts the stage after it."""
    enc = build(builder, icd, Dx("chronic kidney disease stage 3", ("N18.30",)), Dx("type 2 diabetes", ("E11.9",)))
    assert codes(enc) == ["E11.22", "N18.30"]
    assert "E11.9" in dropped(enc, "superseded")
    line = enc.line("E11.22")
    assert sorted(line.evidence) == [0, 1] and "I.A.15" in line.reason and "E11.22" in line.reason


def test_combination_keeps_the_diabetes_type(builder, icd) -> None:
    """Index: Diabetes, type 1, with, chronic kidney disease E10.22: the combination keeps the documented type."""
    enc = build(builder, icd, Dx("type 1 diabetes", ("E10.9",)), Dx("CKD stage 4", ("N18.4",)))
    assert codes(enc) == ["E10.22", "N18.4"]


def test_combination_hypertension_heart_failure_I11_0_plus_I50(builder, icd) -> None:
    """Guideline I.C.9.a.1: hypertension with heart failure is I11.0, with "use additional code to identify type of
    heart failure (I50.-)"; I10 is not reported."""
    enc = build(builder, icd, Dx("hypertension", ("I10",)), Dx("chronic systolic heart failure", ("I50.22",)))
    assert codes(enc) == ["I11.0", "I50.22"]
    assert "I10" in dropped(enc, "combined")


def test_combination_hypertension_ckd_I12_9(builder, icd) -> None:
    """Guideline I.C.9.a.2: hypertension with CKD stage 1-4 is I12.9 + the N18 stage ("use additional code to
    identify the stage of chronic kidney disease (N18.1-N18.4, N18.9)")."""
    enc = build(builder, icd, Dx("CKD stage 3", ("N18.30",)), Dx("hypertension", ("I10",)))
    assert codes(enc) == ["I12.9", "N18.30"]


def test_combination_hypertension_esrd_I12_0(builder, icd) -> None:
    """Guideline I.C.9.a.2: hypertension with stage 5 CKD or end stage renal disease is I12.0 + N18.6."""
    enc = build(builder, icd, Dx("hypertension", ("I10",)), Dx("end stage renal disease", ("N18.6",)))
    assert codes(enc) == ["I12.0", "N18.6"]


def test_combination_hypertension_heart_failure_ckd_I13_0(builder, icd) -> None:
    """Guideline I.C.9.a.3: hypertension with heart failure and CKD stage 1-4 is I13.0 (not I11.0 + I12.9), with
    the heart failure type and the CKD stage as additional codes."""
    enc = build(builder, icd, Dx("hypertension", ("I10",)), Dx("heart failure", ("I50.9",)),
                Dx("CKD stage 4", ("N18.4",)))
    assert codes(enc)[0] == "I13.0" and set(codes(enc)) == {"I13.0", "I50.9", "N18.4"}


def test_combination_hypertension_heart_failure_esrd_I13_2(builder, icd) -> None:
    """Guideline I.C.9.a.3; Index: Hypertension, cardiorenal, with heart failure, with stage 5 or end stage renal
    disease I13.2."""
    enc = build(builder, icd, Dx("hypertension", ("I10",)), Dx("heart failure", ("I50.9",)),
                Dx("ESRD", ("N18.6",)))
    assert codes(enc)[0] == "I13.2" and set(codes(enc)) == {"I13.2", "I50.9", "N18.6"}


def test_combination_hypertensive_heart_and_ckd_without_heart_failure_I13_10(builder, icd) -> None:
    """Guideline I.C.9.a.3: hypertension with a heart condition of I51.4-I51.9 (cardiomegaly) and CKD stage 1-4,
    without heart failure, is I13.10; the heart condition is included in it (I11 includes "any condition in I51.4-
    I51.7, I51.89, I51.9 due to hypertension")."""
    enc = build(builder, icd, Dx("hypertension", ("I10",)), Dx("cardiomegaly", ("I51.7",)),
                Dx("CKD stage 3", ("N18.30",)))
    assert codes(enc) == ["I13.10", "N18.30"]


def test_combination_hypertensive_heart_disease_I11_9(builder, icd) -> None:
    """Guideline I.C.9.a.1: hypertension with cardiomegaly (I51.7) is hypertensive heart disease I11.9."""
    enc = build(builder, icd, Dx("hypertension", ("I10",)), Dx("cardiomegaly", ("I51.7",)))
    assert codes(enc) == ["I11.9"]


def test_combination_diabetes_hypertension_ckd_all_presumed(builder, icd) -> None:
    """Guidelines I.C.4.a and I.C.9.a.2 together: diabetes, hypertension and CKD give E11.22 and I12.9, and the N18
    stage after both (N18 "code first ... diabetic chronic kidney disease, hypertensive chronic kidney disease")."""
    enc = build(builder, icd, Dx("CKD stage 3", ("N18.30",)), Dx("diabetes", ("E11.9",)),
                Dx("hypertension", ("I10",)))
    got = codes(enc)
    assert set(got) == {"E11.22", "I12.9", "N18.30"} and got[-1] == "N18.30"


def test_with_convention_not_applied_when_note_says_unrelated(builder, icd) -> None:
    """Guideline I.A.15: the "with" presumption holds "unless the documentation clearly states the conditions are
    unrelated"."""
    enc = build(builder, icd, Dx("hypertension", ("I10",)),
                Dx("chronic kidney disease stage 3", ("N18.30",), after=", not due to hypertension"))
    assert set(codes(enc)) == {"I10", "N18.30"}
    assert "unrelated" in enc.line("N18.30").reason


def test_combination_diabetes_polyneuropathy_E11_42(builder, icd) -> None:
    """Index: Diabetes, with, polyneuropathy E11.42; G63 Excludes1 "diabetes mellitus (E08-E13 with .42)": the
    neuropathy is included, not coded again."""
    enc = build(builder, icd, Dx("diabetes mellitus", ("E11.9",)), Dx("peripheral neuropathy", ("G62.9",)))
    assert codes(enc) == ["E11.42"]


def test_combination_gastroparesis_code_first_diabetes(builder, icd) -> None:
    """Index: Diabetes, with, gastroparesis E11.43; K31.84 "Code first underlying disease ... diabetes mellitus
    (E08.43, E09.43, E10.43, E11.43, E13.43)": etiology before manifestation."""
    enc = build(builder, icd, Dx("gastroparesis", ("K31.84",)), Dx("type 2 diabetes", ("E11.9",)))
    assert codes(enc) == ["E11.43", "K31.84"]
    assert "Code first" in enc.line("K31.84").reason


def test_combination_diabetic_foot_ulcer_use_additional_site(builder, icd) -> None:
    """Index: Diabetes, with, foot ulcer E11.621; its note "use additional code to identify site of ulcer (L97.4-,
    L97.5-)" puts the ulcer site after it."""
    enc = build(builder, icd, Dx("foot ulcer", ("L97.509",)), Dx("diabetes", ("E11.9",)))
    assert codes(enc) == ["E11.621", "L97.509"]


def test_combination_coronary_atherosclerosis_with_angina_I25_119(builder, icd) -> None:
    """Guideline I.C.9.b: "ICD-10-CM has combination codes for atherosclerotic heart disease with angina pectoris
    ... It is not necessary to use a separate code for angina pectoris"."""
    enc = build(builder, icd, Dx("coronary artery disease", ("I25.10",)), Dx("angina", ("I20.9",)))
    assert codes(enc) == ["I25.119"]


def test_combination_copd_with_pneumonia_J44_0(builder, icd) -> None:
    """Index: Disease, lung, obstructive, with acute lower respiratory infection J44.0 (code also the infection)."""
    enc = build(builder, icd, Dx("COPD", ("J44.9",)), Dx("pneumonia", ("J18.9",)))
    assert set(codes(enc)) == {"J44.0", "J18.9"}


def test_diabetes_without_complications_superseded(builder, icd) -> None:
    """Guideline I.C.4.a: E11.9 "without complications" cannot stand beside a complication of the same diabetes."""
    enc = build(builder, icd, Dx("diabetes", ("E11.9",)), Dx("diabetic hyperglycemia", ("E11.65",)))
    assert codes(enc) == ["E11.65"]


# ----------------------------------------------------------------------------------------- sequencing notes
def test_code_first_etiology_before_manifestation(builder, icd) -> None:
    """Guideline I.A.13 etiology/manifestation: F02 "Code first the underlying physiological condition, such as:
    Alzheimer's (G30.-)": the dementia is listed after the Alzheimer's disease, whatever the note's order."""
    enc = build(builder, icd, Dx("dementia", ("F02.80",)), Dx("Alzheimer disease", ("G30.9",)))
    assert codes(enc) == ["G30.9", "F02.80"]


def test_manifestation_without_etiology_flagged(builder, icd) -> None:
    """Guideline I.A.13: a manifestation code ("in diseases classified elsewhere") needs its underlying condition
    coded first; alone, it is flagged for the coder."""
    enc = build(builder, icd, Dx("dementia", ("F02.80",)))
    assert any("I.A.13" in f for f in enc.line("F02.80").flags)


def test_use_additional_code_missing_flagged(builder, icd) -> None:
    """E11.22 "Use additional code to identify stage of chronic kidney disease (N18.1-N18.6)": without a stage
    documented, the line is flagged."""
    enc = build(builder, icd, Dx("diabetic nephropathy with CKD", ("E11.22",)))
    assert any("N18.1-N18.6" in f for f in enc.line("E11.22").flags)


# ----------------------------------------------------------------------------------------- integral symptoms
def test_integral_symptom_chest_pain_dropped_with_myocardial_infarction(builder, icd) -> None:
    """Guideline I.B.5: signs and symptoms routinely associated with a disease are not coded: R07.9 with I21.x."""
    enc = build(builder, icd, Dx("chest pain", ("R07.9",), section="chief complaint"),
                Dx("acute myocardial infarction", ("I21.9",)))
    assert codes(enc) == ["I21.9"]
    assert dropped(enc, "integral") == ["R07.9"]


def test_symptom_not_routinely_associated_is_coded(builder, icd) -> None:
    """Guideline I.B.6: signs or symptoms not routinely associated with the diagnosis are coded (chest pain with a
    urinary tract infection)."""
    enc = build(builder, icd, Dx("urinary tract infection", ("N39.0",)), Dx("chest pain", ("R07.9",)))
    assert set(codes(enc)) == {"N39.0", "R07.9"}
    assert codes(enc)[0] == "N39.0"


# ----------------------------------------------------------------------------------------- setting rules
def test_outpatient_uncertain_diagnosis_not_coded_symptoms_coded(builder, icd) -> None:
    """Guideline IV.H (outpatient): do not code diagnoses documented as "probable", "suspected", "rule out"; code
    the signs and symptoms instead."""
    enc = build(builder, icd, Dx("cough", ("R05.9",), section="chief complaint"),
                Dx("pneumonia", traits=("possible",), trigger="probable"), setting="outpatient")
    assert codes(enc) == ["R05.9"]
    (entry,) = [d for d in enc.dropped if d.rule == "uncertain"]
    assert entry.code == "J18.9" and "IV.H" in entry.reason and "R05.9" in entry.reason


def test_inpatient_uncertain_diagnosis_coded_as_established(builder, icd) -> None:
    """Guideline II.H (inpatient): an uncertain diagnosis documented at discharge is coded as if it existed."""
    enc = build(builder, icd, Dx("pneumonia", traits=("possible",), section="diagnoses", trigger="probable"),
                setting="inpatient", prefix="DISCHARGE DIAGNOSES: ")
    assert codes(enc) == ["J18.9"] and "II.H" in enc.line("J18.9").reason


def test_inpatient_uncertain_outside_the_final_statement_not_coded(builder, icd) -> None:
    """Guideline II.H applies to diagnoses "at the time of discharge": a "rule out" in the history of present
    illness is not the final diagnostic statement."""
    enc = build(builder, icd, Dx("pulmonary embolism", traits=("possible",), section="history of present illness"),
                Dx("pneumonia", ("J18.9",), section="diagnoses"), setting="inpatient")
    assert codes(enc) == ["J18.9"] and dropped(enc, "uncertain") == ["I26.99"]


def test_inpatient_uncertain_diagnosis_absorbs_its_symptoms(builder, icd) -> None:
    """Guidelines II.H with I.B.5: coded as established, the uncertain pneumonia drops its integral cough."""
    enc = build(builder, icd, Dx("cough", ("R05.9",), section="chief complaint"),
                Dx("pneumonia", traits=("possible",), section="diagnoses"), setting="inpatient")
    assert codes(enc) == ["J18.9"] and dropped(enc, "integral") == ["R05.9"]


def test_negated_and_hypothetical_never_coded(builder, icd) -> None:
    """Negated findings ("denies chest pain") and hypothetical ones ("return if fever") are never coded."""
    enc = build(builder, icd, Dx("chest pain", ("R07.9",), traits=("negated",)),
                Dx("fever", ("R50.9",), traits=("hypothetical",)), setting="inpatient")
    assert enc.codes == [] and enc.conflicts == []


def test_family_history_coded_Z80_Z84_after_own_conditions(builder, icd) -> None:
    """Family findings take the family-history codes (Z80-Z84), sequenced after the patient's own conditions."""
    enc = build(builder, icd, Dx("colon cancer", ("Z80.0",), traits=("family",), section="family history"),
                Dx("hypertension", ("I10",)))
    assert codes(enc) == ["I10", "Z80.0"] and enc.line("Z80.0").kind == "family"


def test_family_finding_without_family_code_not_coded(builder, icd) -> None:
    """A family finding never takes the disease's own code: the patient does not have it."""
    enc = build(builder, icd, Dx("colon cancer", ("C18.9",), traits=("family",), section="family history"))
    assert enc.codes == []


def test_personal_history_after_current_conditions(builder, icd) -> None:
    """Personal history codes (Z85-Z87) are secondary: listed after the current conditions."""
    enc = build(builder, icd, Dx("stroke", ("Z86.73",), traits=("historical",), section="past medical history"),
                Dx("pneumonia", ("J18.9",)))
    assert codes(enc) == ["J18.9", "Z86.73"] and enc.line("Z86.73").kind == "history"


# ----------------------------------------------------------------------------------------- 7th character, defaults
def test_seventh_character_subsequent_encounter_from_context(builder, icd) -> None:
    """Guideline I.C.19.a: 7th character D is for encounters after active treatment, during healing."""
    enc = build(builder, icd, Dx("fracture of the left femur", ("S72.92XA",), after=", subsequent encounter"))
    assert codes(enc) == ["S72.92XD"]


def test_seventh_character_sequela_from_context(builder, icd) -> None:
    """Guideline I.C.19.a: 7th character S for sequela (late effects of an injury)."""
    enc = build(builder, icd, Dx("ankle sprain", ("S93.402A",), after=", sequela"))
    assert codes(enc) == ["S93.402S"]


def test_seventh_character_open_fracture_initial(builder, icd) -> None:
    """Guideline I.C.19.c.1: the 7th character says open or closed; initial encounter for open fracture is B."""
    enc = build(builder, icd, Dx("fracture of the left femur", ("S72.92XA",), after=", open, initial encounter"))
    assert codes(enc) == ["S72.92XB"]


def test_seventh_character_assumed_is_flagged(builder, icd) -> None:
    """Guideline I.C.19.a: with no encounter words the initial encounter (A, closed: I.C.19.c.1) stays, flagged."""
    enc = build(builder, icd, Dx("fracture of the left femur", ("S72.92XA",)))
    assert codes(enc) == ["S72.92XA"]
    assert any("7th character A" in f for f in enc.line("S72.92XA").flags)


def test_seventh_character_added_with_placeholder(builder, icd) -> None:
    """Guideline I.A.5 placeholder X: a code shorter than six characters gets X before its 7th character."""
    enc = build(builder, icd, Dx("laceration of scalp", ("S01.0",), after=", initial encounter"))
    assert codes(enc) == ["S01.00XA"]


def test_default_diabetes_type_is_type_2(builder, icd) -> None:
    """Guideline I.C.4.a.2: "If the type of diabetes mellitus is not documented ... the default is E11.-"."""
    enc = build(builder, icd, Dx("diabetic retinopathy", ("E13.319",)))
    assert codes(enc) == ["E11.319"] and "I.C.4.a.2" in enc.line("E11.319").reason


def test_default_type_kept_when_secondary_diabetes_documented(builder, icd) -> None:
    """Guideline I.C.4.a.2 applies only when the type is not documented: secondary diabetes stays E13."""
    enc = build(builder, icd, Dx("secondary diabetes", ("E13.9",)))
    assert codes(enc) == ["E13.9"]


def test_specificity_anatomy_entities_read_with_the_diagnosis(builder, icd) -> None:
    """Guideline I.B.2 (code to the highest specificity documented): "Urinary" + "tract" + "infection", split by the
    NER into anatomy and a bare "infection" (B99.9), are one documented condition: N39.0."""
    enc = build(builder, icd, Dx("Urinary", label="ANAT", sep=" "), Dx("tract", label="ANAT", sep=" "),
                Dx("infection", ("B99.9",)))
    assert codes(enc) == ["N39.0"] and enc.line("N39.0").evidence == [2]
    assert "Urinary tract infection" in enc.line("N39.0").reason


def test_specificity_stage_written_before_the_mention(builder, icd) -> None:
    """Guideline I.C.14.a / I.B.2: "End stage [renal disease]" documents ESRD (N18.6), not a kidney disorder NOS;
    with hypertension it is I12.0 + N18.6 (I.C.9.a.2)."""
    enc = build(builder, icd, Dx("hypertension", ("I10",)), Dx("renal disease", ("N28.9",), before="End stage "))
    assert codes(enc) == ["I12.0", "N18.6"]


def test_outpatient_uncertain_left_out_names_its_specific_code(builder, icd) -> None:
    """Guideline IV.H: the left-out uncertain diagnosis is reported to the coder with the code it would have had,
    read with its anatomy ("Rule out pulmonary [embolism]" is I26.99, not an arterial embolism)."""
    enc = build(builder, icd, Dx("pulmonary", label="ANAT", sep=" ", traits=("possible",)),
                Dx("embolism", traits=("possible",), trigger="rule out"), Dx("shortness of breath", ("R06.02",)))
    assert codes(enc) == ["R06.02"] and dropped(enc, "uncertain") == ["I26.99"]


def test_specificity_bare_qualifier_read_with_its_phrase(builder, icd) -> None:
    """Guideline I.B.2 / I.C.9.a.2: a mention cut to its qualifier ("[Chronic] kidney disease stage 3", which the
    linker alone codes as a pathological fracture) is read with the rest of its phrase: N18.30, combined with the
    hypertension as I12.9."""
    enc = build(builder, icd, Dx("Hypertension", ("I10",)),
                Dx("Chronic", ("M84.40XA",), after=" kidney disease stage 3"))
    assert codes(enc) == ["I12.9", "N18.30"] and enc.line("N18.30").evidence == [1]
    assert "'Chronic' alone names no condition" in enc.line("N18.30").reason


def test_specificity_bare_qualifier_naming_nothing_left_out(builder, icd) -> None:
    """Guideline I.B.2: a qualifier alone ("Left.") documents no condition: not coded, left out with the reason."""
    enc = build(builder, icd, Dx("Left", ("M84.40XA",)), Dx("cough", ("R05.9",)))
    assert codes(enc) == ["R05.9"] and dropped(enc, "fragment") == ["M84.40XA"]


def test_reason_states_each_fact_once(builder, icd) -> None:
    """Reasons in plain words: two mentions re-linked the same way ("Chest pain", "chest pain") give one sentence."""
    enc = build(builder, icd, Dx("Chest", label="ANAT", sep=" "), Dx("pain", ("R52",)), Dx("chest", label="ANAT",
                sep=" "), Dx("pain", ("R52",)))
    reason = enc.line("R07.9").reason
    assert codes(enc) == ["R07.9"] and reason.lower().count("coded from 'chest pain'") == 1


# ----------------------------------------------------------------------------------------- lines and order
def test_repeated_mentions_merged_into_one_line(builder, icd) -> None:
    """One line per condition: every mention of it is evidence of the same line."""
    enc = build(builder, icd, Dx("pneumonia", ("J18.9",), section="history of present illness"),
                Dx("pneumonia", ("J18.9",)))
    assert codes(enc) == ["J18.9"] and enc.line("J18.9").evidence == [0, 1]


def test_unspecified_mention_merged_into_the_specific_code(builder, icd) -> None:
    """Guideline I.B.2 (highest specificity): "CHF" (I50.9) and "acute on chronic systolic heart failure" (I50.23)
    are one condition, coded I50.23."""
    enc = build(builder, icd, Dx("CHF", ("I50.9",)), Dx("acute on chronic systolic heart failure", ("I50.23",)))
    assert codes(enc) == ["I50.23"] and enc.line("I50.23").evidence == [0, 1]


def test_unspecified_not_merged_into_another_side(builder, icd) -> None:
    """Merging needs the same condition: a right femur fracture is not a left one."""
    enc = build(builder, icd, Dx("right femur fracture", ("S72.91XA",)), Dx("left femur fracture", ("S72.92XA",)))
    assert set(codes(enc)) == {"S72.91XA", "S72.92XA"} and not enc.conflicts


def test_excludes1_tie_keeps_the_more_specific_code(builder, icd) -> None:
    """S72.9 Excludes1 "fracture of hip NOS (S72.00-, S72.01-)": with equal support the more specific code (the
    femoral neck) is kept; the placeholder X counts for no detail."""
    enc = build(builder, icd, Dx("femur fracture", ("S72.91XA",)), Dx("fracture of femoral neck", ("S72.002A",)))
    assert codes(enc) == ["S72.002A"] and enc.conflicts[0].dropped == ["S72.91XA"]


def test_sequencing_diagnostic_statement_before_history_of_present_illness(builder, icd) -> None:
    """Guidelines II and IV.G: the first-listed/principal diagnosis comes from the diagnostic statement."""
    enc = build(builder, icd, Dx("urinary tract infection", ("N39.0",), section="history of present illness"),
                Dx("cellulitis of left leg", ("L03.116",), section="assessment"))
    assert codes(enc) == ["L03.116", "N39.0"]
    assert "Sequenced 1st" in enc.line("L03.116").reason


def test_sequencing_acute_before_chronic_within_a_section(builder, icd) -> None:
    """Acuity: within the assessment, the acute condition is the principal candidate."""
    enc = build(builder, icd, Dx("GERD", ("K21.9",)), Dx("acute appendicitis", ("K35.80",)))
    assert codes(enc) == ["K35.80", "K21.9"]


def test_sequencing_symptoms_after_diagnoses(builder, icd) -> None:
    """Guideline I.B.4: symptom codes are for findings without a related diagnosis; they follow the diagnoses."""
    enc = build(builder, icd, Dx("headache", ("R51.9",), section="chief complaint"), Dx("GERD", ("K21.9",)))
    assert codes(enc) == ["K21.9", "R51.9"]


def test_no_diagnoses_gives_an_empty_code_set(builder, icd) -> None:
    """Bad input: a note without diagnoses is an empty code set, not an error."""
    analysis, text = note(icd, Dx("aspirin", label="MED"), Dx("chest x-ray", label="TEST"))
    enc = builder.build(analysis, text, "auto", icd=icd)
    assert enc.codes == [] and enc.conflicts == [] and enc.to_dict()["codes"] == []
    empty = builder.build(AnalysisResult("e", [], {}, {}), "", "outpatient", icd=icd)
    assert empty.to_dict()["codes"] == []


def test_setting_auto_reads_the_note_type(builder, icd) -> None:
    """Setting per note type: a discharge summary is inpatient (II.H), a clinic note outpatient (IV.H)."""
    analysis, text = note(icd, Dx("pneumonia", ("J18.9",), section="diagnoses"), prefix="DISCHARGE DIAGNOSES: ")
    assert builder.build(analysis, text, "auto", icd=icd).setting == "inpatient"
    analysis, text = note(icd, Dx("pneumonia", ("J18.9",)))
    assert builder.build(analysis, text, "auto", icd=icd).setting == "outpatient"
    with pytest.raises(EngineError) as err:
        builder.build(analysis, text, "emergency", icd=icd)
    assert err.value.code == ErrorCode.BAD_INPUT


def test_contract_fields_of_each_line(builder, icd) -> None:
    """Contract ("Added in the second round"): codes carry code, description, sequence, evidence, reason."""
    out = build(builder, icd, Dx("hypertension", ("I10",)), Dx("heart failure", ("I50.9",))).to_dict()
    assert set(out) >= {"id", "setting", "codes", "conflicts"}
    for n, line in enumerate(out["codes"], start=1):
        assert {"code", "description", "sequence", "evidence", "reason"} <= set(line)
        assert line["sequence"] == n and line["reason"] and line["id"] == line["code"]


# ----------------------------------------------------------------------------------------- coder decisions
def _decide(builder, icd, enc, decisions):
    return apply_decisions(enc.to_dict(), decisions, builder.conventions, icd.describe)


def test_decision_unknown_code_reported_by_name(builder, icd) -> None:
    """Bad input: an unknown code in a stored decision is reported by name (a coded error)."""
    enc = build(builder, icd, Dx("pneumonia", ("J18.9",)))
    with pytest.raises(EngineError) as err:
        _decide(builder, icd, enc, [{"action": "add", "code": "X99.99"}])
    assert err.value.code == ErrorCode.UNKNOWN_CODE and "X99.99" in str(err.value)
    with pytest.raises(EngineError) as err:
        _decide(builder, icd, enc, [{"action": "remove", "code": "I10"}])
    assert err.value.code == ErrorCode.UNKNOWN_CODE and "I10" in str(err.value) and "J18.9" in str(err.value)


def test_decision_accept_move_remove_renumbers(builder, icd) -> None:
    """The coder accepts, reorders and removes lines; ids are the codes, sequences are renumbered."""
    enc = build(builder, icd, Dx("acute appendicitis", ("K35.80",)), Dx("GERD", ("K21.9",)),
                Dx("obesity", ("E66.9",)))
    out = _decide(builder, icd, enc, [{"action": "accept", "code": "K35.80"}, {"action": "move", "code": "E66.9",
                                      "to": 1}, {"action": "remove", "code": "K21.9"}])
    assert codes(out) == ["E66.9", "K35.80"]
    assert out.line("K35.80").status == "accepted" and "Moved to 1st" in out.line("E66.9").reason
    assert any(d.rule == "coder" and d.code == "K21.9" for d in out.dropped)


def test_decision_adding_an_excludes1_code_records_the_conflict(builder, icd) -> None:
    """Guideline I.A.12.a: when the coder reports both codes of an Excludes1 pair (unrelated conditions), the
    code set still shows the conflict, now with both kept."""
    enc = build(builder, icd, Dx("type 2 diabetes", ("E11.9",)), Dx("type 2 diabetes", ("E11.9",)),
                Dx("type 1 diabetes", ("E10.9",)))
    out = _decide(builder, icd, enc, [{"action": "add", "code": "E10.9"}])
    (conflict,) = out.conflicts
    assert set(conflict.kept) == {"E11.9", "E10.9"} and conflict.dropped == [] and "coder" in conflict.reason


def test_decision_rejects_a_non_billable_code(builder, icd) -> None:
    """Only billable codes are reported (guideline I.B.2): adding a category is refused with its name."""
    enc = build(builder, icd, Dx("pneumonia", ("J18.9",)))
    with pytest.raises(EngineError) as err:
        _decide(builder, icd, enc, [{"action": "add", "code": "E11"}])
    assert err.value.code == ErrorCode.BAD_INPUT and "E11" in str(err.value)


def test_decision_record_round_trips_and_replays(builder, icd) -> None:
    """The record the app stores: suggestion, decisions and result survive JSON, export one row per final line,
    and replay on a code set built again gives the same order."""
    import json

    enc = build(builder, icd, Dx("acute appendicitis", ("K35.80",)), Dx("GERD", ("K21.9",)))
    after, record = record_decisions(enc, [{"action": "move", "code": "K21.9", "to": 1},
                                           {"action": "add", "code": "E66.9", "note": "BMI 32 in vitals"}],
                                     builder.conventions, icd.describe)
    stored = json.loads(json.dumps(record.to_dict()))
    again = DecisionRecord.from_dict(stored)
    assert again == record and record.suggested == ("K35.80", "K21.9") and record.final == ("K21.9", "K35.80", "E66.9")
    assert [r["code"] for r in record.export_rows()] == list(record.final)
    assert [r["suggested"] for r in record.export_rows()] == [True, True, False]
    rebuilt = build(builder, icd, Dx("acute appendicitis", ("K35.80",)), Dx("GERD", ("K21.9",)))
    assert codes(replay(stored, rebuilt, builder.conventions, icd.describe)) == codes(after)


def test_decision_record_replay_names_a_code_no_longer_in_the_set(builder, icd) -> None:
    """Bad input: a stored decision whose line is gone from a rebuilt code set is reported by its code."""
    enc = build(builder, icd, Dx("acute appendicitis", ("K35.80",)), Dx("GERD", ("K21.9",)))
    _, record = record_decisions(enc, [{"action": "remove", "code": "K21.9"}], builder.conventions, icd.describe)
    rebuilt = build(builder, icd, Dx("acute appendicitis", ("K35.80",)))
    with pytest.raises(EngineError) as err:
        replay(record.to_dict(), rebuilt, builder.conventions, icd.describe)
    assert err.value.code == ErrorCode.UNKNOWN_CODE and "K21.9" in str(err.value)
    with pytest.raises(EngineError) as err:
        DecisionRecord.from_dict({"setting": "outpatient", "decisions": []})
    assert err.value.code == ErrorCode.BAD_INPUT and "suggested" in str(err.value)
