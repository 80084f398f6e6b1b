"""Issue 17 items 3 and 4 on a real SQLite file: the "fully reviewed" mark decides what is gold; two reviewers'
conflicts are visible per note, resolved by an adjudicator, and exports use the adjudicated or agreed decision."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select
from support.db_testing import NOTE_TEXT, sample_result

from db import repository as repo
from db.errors import FeedbackCode, FeedbackError
from db.export import export_dataset, import_jsonl
from db.models import AuditLog, Decision
from db.session import get_engine, init_db, session_scope


@pytest.fixture
def store(tmp_path):
    """A migrated SQLite file with one analysed note (7 model entities); yields (url, analysis id, ids by text)."""
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    init_db(url)
    with session_scope(get_engine(url)) as s:
        analysis = repo.save_analysis(s, repo.save_note(s, NOTE_TEXT), sample_result())
        ids = {x.text: x.id for x in analysis.suggestions}
        return url, analysis.id, ids


def _export(url: str, **options) -> tuple[list[dict], dict]:
    buffer = io.StringIO()
    with session_scope(get_engine(url), write=False) as s:
        manifest = export_dataset(s, "jsonl", stream=buffer, **options)
    return [json.loads(line) for line in buffer.getvalue().splitlines()], manifest.to_dict()


def test_only_fully_reviewed_notes_are_gold_by_default(store):
    url, analysis_id, ids = store
    with session_scope(get_engine(url)) as s:
        repo.record_decision(s, suggestion_id=ids["aspirin"], reviewer="ann", decision="accept")
        repo.record_decision(s, suggestion_id=ids["chest pain"], reviewer="ann", decision="reject")
    # Not marked: nothing is gold; the six spans nobody rejected must not become six false negatives.
    docs, manifest = _export(url)
    assert docs == [] and manifest["notes"]["gold"] == []
    docs, manifest = _export(url, include_silver=True)
    [doc] = docs
    assert doc["status"] == "silver" and manifest["notes"]["silver"] == [analysis_id]
    assert [(g["text"], g["source"]) for g in doc["gold"]] == [("aspirin", "gold")]
    assert {g["text"] for g in doc["silver"]} == {
        "acute myocardial infarction", "breast cancer", "troponin", "echocardiogram", "left ventricle"}
    assert all(g["source"] == "silver" for g in doc["silver"])
    assert manifest["counts"]["gold_entities"] == 1 and manifest["counts"]["silver_entities"] == 5

    with session_scope(get_engine(url)) as s:
        repo.set_fully_reviewed(s, analysis_id=analysis_id, reviewer="ann")
    [doc], manifest = _export(url)
    assert doc["status"] == "gold" and doc["review"]["reviewed_by"] == "ann" and doc["review"]["reviewed_at"]
    assert manifest["notes"]["gold"] == [analysis_id] and manifest["counts"]["documents_gold"] == 1
    gold = {g["text"]: g for g in doc["gold"]}
    assert set(gold) == {"aspirin", "acute myocardial infarction", "breast cancer", "troponin", "echocardiogram",
                         "left ventricle"}  # the rejected "chest pain" is the only one dropped
    assert gold["aspirin"]["resolution"] == "single" and gold["troponin"]["resolution"] == "reviewed"
    assert gold["acute myocardial infarction"]["codes"] == ["I21.9"]  # undecided codes of a reviewed note stand
    assert doc["silver"] == []

    with session_scope(get_engine(url)) as s:
        repo.set_fully_reviewed(s, analysis_id=analysis_id, reviewer="ann", reviewed=False)
        kinds = [a.kind for a in s.scalars(select(AuditLog).where(AuditLog.ref_id == analysis_id))]
    assert "note_reviewed" in kinds and "note_review_cleared" in kinds
    assert _export(url)[0] == []


def test_a_fully_reviewed_note_without_decisions_is_exported(store):
    url, analysis_id, _ = store
    with session_scope(get_engine(url)) as s:
        repo.set_fully_reviewed(s, analysis_id=analysis_id, reviewer="bob")
    [doc], _ = _export(url)
    assert len(doc["gold"]) == 7 and {g["resolution"] for g in doc["gold"]} == {"reviewed"}
    with pytest.raises(FeedbackError) as err, session_scope(get_engine(url)) as s:
        repo.set_fully_reviewed(s, analysis_id=999, reviewer="bob")
    assert err.value.code == FeedbackCode.UNKNOWN_ANALYSIS


def test_conflicts_are_visible_adjudicated_and_exported_resolved(store, monkeypatch):
    url, analysis_id, ids = store
    rd = repo.record_decision
    with session_scope(get_engine(url)) as s:
        rd(s, suggestion_id=ids["troponin"], reviewer="ann", decision="accept")
        rd(s, suggestion_id=ids["troponin"], reviewer="bob", decision="reject")  # conflict
        rd(s, suggestion_id=ids["aspirin"], reviewer="ann", decision="accept")
        rd(s, suggestion_id=ids["aspirin"], reviewer="bob", decision="accept")  # agreed
        rd(s, suggestion_id=ids["breast cancer"], reviewer="ann", decision="accept", target="code", code="Z80.3")
        rd(s, suggestion_id=ids["breast cancer"], reviewer="bob", decision="reject", target="code", code="Z80.3")
        repo.set_fully_reviewed(s, analysis_id=analysis_id, reviewer="bob")
    with session_scope(get_engine(url), write=False) as s:
        view = repo.note_review(s, analysis_id)
    status = {(i.text, i.target, i.code): i.status for i in view.items}
    assert status == {("troponin", "entity", None): "conflict", ("aspirin", "entity", None): "agreed",
                      ("breast cancer", "code", "Z80.3"): "conflict"}
    troponin = next(i for i in view.items if i.text == "troponin")
    assert troponin.by_reviewer == {"ann": "accept", "bob": "reject"} and view.reviewers == ["ann", "bob"]
    assert [o["decision"] for o in troponin.options] == ["accept", "reject"]

    docs, manifest = _export(url)  # default: a note with an open conflict is left out, and counted
    assert docs == [] and manifest["counts"]["notes_conflict_excluded"] == 1
    assert manifest["notes"]["conflict_excluded"] == [analysis_id]
    [doc], manifest = _export(url, conflicts="flag")
    assert manifest["counts"]["notes_conflict_flagged"] == 1 and manifest["counts"]["conflicts_unresolved"] == 2
    assert {(c["target"], c["code"]) for c in doc["conflicts"]} == {("entity", None), ("code", "Z80.3")}

    with pytest.raises(FeedbackError) as err, session_scope(get_engine(url)) as s:
        rd(s, suggestion_id=ids["troponin"], reviewer="bob", decision="reject", role="adjudicator")
    assert err.value.code == FeedbackCode.NOT_ADJUDICATOR  # the role is explicit: only named adjudicators
    monkeypatch.setenv("CLINICAL_NLP_ADJUDICATORS", "cy, dee")
    with session_scope(get_engine(url)) as s:
        rd(s, suggestion_id=ids["troponin"], reviewer="cy", decision="reject", role="adjudicator")
        rd(s, suggestion_id=ids["breast cancer"], reviewer="cy", decision="accept", target="code", code="Z80.3",
           role="adjudicator")
        # a reviewer deciding again after the adjudication does not undo it
        rd(s, suggestion_id=ids["troponin"], reviewer="ann", decision="accept")
        stored = s.scalars(select(Decision).where(Decision.reviewer == "cy")).all()
        assert {(d.role, d.model_version) for d in stored} == {("adjudicator", "ner-test-1"),
                                                              ("adjudicator", "ICD-10-CM 2025")}
    with session_scope(get_engine(url), write=False) as s:
        view = repo.note_review(s, analysis_id)
    assert view.conflicts == [] and {i.status for i in view.items if i.text != "aspirin"} == {"adjudicated"}
    assert next(i for i in view.items if i.text == "troponin").adjudication == "reject (cy)"
    [doc], manifest = _export(url)
    gold = {g["text"]: g for g in doc["gold"]}
    assert "troponin" not in gold  # the adjudicator rejected it, whatever the reviewers said after
    assert gold["aspirin"]["resolution"] == "agreed"
    assert gold["breast cancer"]["codes"] == ["Z80.3"] and doc["conflicts"] == []
    assert manifest["counts"]["notes_conflict_excluded"] == 0 and manifest["notes"]["gold"] == [analysis_id]


def test_import_keeps_roles_and_the_review_mark(store, monkeypatch, tmp_path):
    url, analysis_id, ids = store
    monkeypatch.setenv("CLINICAL_NLP_ADJUDICATORS", "cy")
    with session_scope(get_engine(url)) as s:
        repo.record_decision(s, suggestion_id=ids["aspirin"], reviewer="ann", decision="accept")
        repo.record_decision(s, suggestion_id=ids["aspirin"], reviewer="bob", decision="reject")
        repo.record_decision(s, suggestion_id=ids["aspirin"], reviewer="cy", decision="reject", role="adjudicator")
        repo.set_fully_reviewed(s, analysis_id=analysis_id, reviewer="cy")
    with session_scope(get_engine(url), write=False) as s:
        export_dataset(s, "jsonl", tmp_path / "a")
    other = f"sqlite:///{tmp_path / 'copy.sqlite'}"
    init_db(other)
    with session_scope(get_engine(other)) as s:
        import_jsonl(s, tmp_path / "a" / "data.jsonl")
    with session_scope(get_engine(other), write=False) as s:
        export_dataset(s, "jsonl", tmp_path / "b")
    first, again = ((tmp_path / d / "data.jsonl").read_text("utf-8") for d in ("a", "b"))
    one, two = json.loads(first), json.loads(again)
    assert two["review"] == one["review"] and two["status"] == "gold"
    assert [g["text"] for g in two["gold"]] == [g["text"] for g in one["gold"]]
    assert "aspirin" not in {g["text"] for g in two["gold"]}  # the adjudicator's reject survives the round trip


def test_retraining_data_takes_the_adjudicated_decision(store, monkeypatch, tmp_path):
    """The retrainer (engine.training.feedback_data) reads the export: the adjudicator's reject outranks a
    reviewer's later accept, as the export's gold says."""
    from engine.training.feedback_data import load_feedback

    url, analysis_id, ids = store
    monkeypatch.setenv("CLINICAL_NLP_ADJUDICATORS", "cy")
    with session_scope(get_engine(url)) as s:
        repo.record_decision(s, suggestion_id=ids["troponin"], reviewer="bob", decision="reject")
        repo.record_decision(s, suggestion_id=ids["troponin"], reviewer="cy", decision="reject", role="adjudicator")
        repo.record_decision(s, suggestion_id=ids["troponin"], reviewer="ann", decision="accept")
        repo.set_fully_reviewed(s, analysis_id=analysis_id, reviewer="cy")
    with session_scope(get_engine(url), write=False) as s:
        export_dataset(s, "jsonl", tmp_path / "x")
    [note] = load_feedback(tmp_path / "x" / "data.jsonl")
    assert "troponin" not in {note.text[a:b] for a, b, _ in note.spans}
    assert "troponin" in {note.text[a:b] for a, b, _ in note.negatives}
