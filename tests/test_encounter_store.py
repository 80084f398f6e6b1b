"""Code-set decisions in the feedback store and its export (issue 19 item 6), on a real SQLite file.

The code set comes from the real engine (NER, assertion, ICD linker, Tabular notes on CPU) on a written note; the
coder's decisions go through the engine (:func:`engine.encounter.record_decisions`) and the repository
(:mod:`db.repository.codeset`), and come back out of :func:`db.export.export_dataset` as ``codesets.jsonl``.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from db.errors import FeedbackCode, FeedbackError
from db.export import export_dataset
from db.models import AuditLog, CodesetDecision
from db.repository import save_analysis, save_note
from db.repository.codeset import codeset_decisions, current_codes, record_codeset_decision
from db.session import dispose_engines, get_engine, init_db, session_scope
from engine.encounter import analysis_from_dict, build_encounter, record_decisions, replay
from engine.errors import EngineError, ErrorCode

NOTE = """DISCHARGE SUMMARY

HISTORY OF PRESENT ILLNESS: The patient is a 68-year-old man admitted with chest pain and shortness of breath.

FAMILY HISTORY: Mother had breast cancer.

DISCHARGE DIAGNOSES:
1. Acute myocardial infarction.
2. Congestive heart failure.
3. Hypertension.
4. Chronic kidney disease stage 3.
5. Type 2 diabetes mellitus.
"""


@pytest.fixture
def store(tmp_path):
    url = f"sqlite:///{tmp_path / 'feedback.sqlite'}"
    init_db(url)
    yield get_engine(url)
    dispose_engines()


@pytest.fixture(scope="module")
def analysed(pipeline):
    """The note's analysis (contract JSON) and its code set, built from the JSON form as the app does."""
    analysis = pipeline.analyze(NOTE, "dc-1")
    result = analysis.to_dict()
    enc = build_encounter(pipeline, analysis_from_dict(result), NOTE, "auto")
    return result, enc, build_encounter(pipeline, analysis, NOTE, "auto")


def _store_analysis(engine, result) -> int:
    with session_scope(engine) as s:
        note = save_note(s, NOTE, source="dc.txt")
        return int(save_analysis(s, note, result).id)


def _decide(pipeline, engine, analysis_id, suggested, enc, decision, reviewer="Coder A"):
    """One decision as the page makes it: applied by the engine to the current code set ``enc``, then stored with
    the engine's codes (``suggested``) and the code set it leaves."""
    after, record = record_decisions(enc, [decision], pipeline.stage("encounter").conventions,
                                     pipeline.stage("icd").describe)
    with session_scope(engine) as s:
        record_codeset_decision(s, analysis_id=analysis_id, reviewer=reviewer, action=decision["action"],
                                code=decision["code"], to=decision.get("to"), setting=after.setting,
                                suggested=suggested, final=list(record.final), conventions=record.conventions)
    return after


def test_code_set_from_the_stored_json_form_is_the_engines(analysed) -> None:
    """The app keeps the analysis as JSON: the code set rebuilt from it is the one built from the object."""
    _, from_json, from_object = analysed
    assert len(from_object.codes) >= 3, from_object.to_dict()
    assert from_json.to_dict() == from_object.to_dict()


def test_accept_move_remove_stored_with_who_when_version_and_exported(pipeline, store, analysed, tmp_path) -> None:
    result, enc, _ = analysed
    analysis_id = _store_analysis(store, result)
    first, last, middle = enc.codes[0].code, enc.codes[-1].code, enc.codes[1].code
    decisions = [{"action": "accept", "code": first}, {"action": "move", "code": last, "to": 1},
                 {"action": "remove", "code": middle}]
    now = enc
    for d in decisions:
        now = _decide(pipeline, store, analysis_id, [ln.code for ln in enc.codes], now, d)
    expected = [ln.code for ln in now.codes]
    assert expected[0] == last and middle not in expected and len(expected) == len(enc.codes) - 1

    with session_scope(store, write=False) as s:
        rows = codeset_decisions(s, analysis_id)
        assert [(r.action, r.code, r.to_sequence) for r in rows] == [
            ("accept", first, None), ("move", last, 1), ("remove", middle, None)]
        assert {r.reviewer for r in rows} == {"Coder A"} and all(r.created_at is not None for r in rows)
        assert {r.model_version for r in rows} == {result["models"]["icd"]}
        assert rows[-1].final == expected and current_codes(s, analysis_id) == expected
        audits = s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.kind == "codeset_decision"))
        assert audits == 3
        stored = [{"action": r.action, "code": r.code, "to": r.to_sequence} for r in rows]
    replayed = replay({"setting": enc.setting, "suggested": [], "decisions": stored, "final": []}, enc,
                      pipeline.stage("encounter").conventions, pipeline.stage("icd").describe)
    assert [ln.code for ln in replayed.codes] == expected
    assert replayed.line(first).status == "accepted"

    with session_scope(store, write=False) as s:
        manifest = export_dataset(s, "jsonl", tmp_path / "out")
    assert "codesets.jsonl" in manifest.files
    assert manifest.counts["codesets"] == 1 and manifest.counts["codeset_decisions"] == 3
    records = [json.loads(x) for x in (tmp_path / "out" / "codesets.jsonl").read_text("utf-8").splitlines()]
    assert len(records) == 1
    rec = records[0]
    assert rec["analysis_id"] == analysis_id and rec["note_id"] == "dc-1" and rec["setting"] == enc.setting
    assert rec["suggested"] == [ln.code for ln in enc.codes] and rec["final"] == expected
    assert [(d["action"], d["code"], d["reviewer"]) for d in rec["decisions"]] == [
        (d["action"], d["code"], "Coder A") for d in decisions]
    assert rec["decisions"][1]["to"] == 1 and rec["problems"] == []
    manifest_file = json.loads((tmp_path / "out" / "manifest.json").read_text("utf-8"))
    assert manifest_file["files"]["codesets.jsonl"]["lines"] == 1

    with session_scope(store, write=False) as s:  # the filters apply: another reviewer's export has no code sets
        other = export_dataset(s, "jsonl", tmp_path / "other", reviewer="Coder B")
    assert "codesets.jsonl" not in other.files and "codesets" not in other.counts


def test_unknown_code_in_a_decision_refused_by_name_nothing_written(store, analysed) -> None:
    result, enc, _ = analysed
    analysis_id = _store_analysis(store, result)
    codes = [ln.code for ln in enc.codes]
    bad = [({"action": "add", "code": "X99.99"}, "X99.99"),          # the shape of a code, not in ICD-10-CM
           ({"action": "remove", "code": "J18.9"}, "J18.9"),         # ICD-10-CM, not a line of the code set
           ({"action": "accept", "code": "I21"}, "I21")]             # a category: ICD-10-CM, not a line
    for decision, name in bad:
        with pytest.raises(FeedbackError) as err, session_scope(store) as s:
            record_codeset_decision(s, analysis_id=analysis_id, reviewer="Coder A", setting=enc.setting,
                                    suggested=codes, final=codes, **decision)
        assert err.value.code == FeedbackCode.BAD_CODE and name in err.value.message, err.value.message
    with pytest.raises(FeedbackError) as err, session_scope(store) as s:
        record_codeset_decision(s, analysis_id=analysis_id, reviewer="Coder A", action="accept", code=codes[0],
                                setting=enc.setting, suggested=codes, final=[*codes, "Q99.99"])
    assert "Q99.99" in err.value.message
    with session_scope(store, write=False) as s:
        assert s.scalar(select(func.count()).select_from(CodesetDecision)) == 0


def test_unknown_code_in_a_stored_row_reported_by_name(pipeline, store, analysed, tmp_path) -> None:
    """A row not written through the repository (an older version, a hand edit) holding a code ICD-10-CM does not
    have: the export names it, the engine's replay names it; neither drops it silently."""
    result, enc, _ = analysed
    analysis_id = _store_analysis(store, result)
    codes = [ln.code for ln in enc.codes]
    with session_scope(store) as s:
        s.add(CodesetDecision(analysis_id=analysis_id, action="accept", code="X99.99", setting=enc.setting,
                              suggested=codes, final=codes, reviewer="Coder A"))
    with session_scope(store, write=False) as s:
        manifest = export_dataset(s, "jsonl", tmp_path / "out")
        stored = [{"action": r.action, "code": r.code} for r in codeset_decisions(s, analysis_id)]
    rec = json.loads((tmp_path / "out" / "codesets.jsonl").read_text("utf-8"))
    assert len(rec["problems"]) == 1 and "'X99.99'" in rec["problems"][0], rec["problems"]
    assert manifest.counts["codeset_unknown_codes"] == 1
    with pytest.raises(EngineError) as err:
        replay({"setting": enc.setting, "suggested": codes, "decisions": stored, "final": codes}, enc,
               pipeline.stage("encounter").conventions, pipeline.stage("icd").describe)
    assert err.value.code == ErrorCode.UNKNOWN_CODE and "X99.99" in err.value.message
