"""``store_text`` wired into the product, on a real SQLite file: what the app's store keeps, what exports hold,
and where the mode is recorded (issue 22, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from db import repository as repo
from db.export import ExportOptions, iter_documents
from db.models import AuditLog, Note
from db.session import dispose_engines, get_engine, init_db, session_scope
from ui.review import find_stored_analysis, load_analysis, record_decision, store_analysis

NOTE = (
    "Patient: John Whitcombe  MRN: 4829301\n"
    "Seen on 03/14/2023 for chest pain. Call back at (617) 555-0142.\n"
    "PLAN: Start aspirin 81 mg daily; repeat troponin."
)
PHI = ("Whitcombe", "John", "03/14/2023", "555-0142", "4829301")
MODELS = {"ner": "ner-test-1"}


def _result(text: str = NOTE) -> dict:
    """A contract-shaped analysis of ``text``: entities found by string search (exact offsets)."""
    ents = []
    for phrase, label in (("chest pain", "DIAG"), ("aspirin", "MED"), ("troponin", "TEST"),
                          ("Whitcombe", "DIAG")):  # the last one overlaps PHI: the NER misfiring on a name
        start = text.index(phrase)
        ents.append({"start": start, "end": start + len(phrase), "text": phrase, "label": label, "score": 0.9,
                     "assertion": "present", "traits": [], "trigger": None, "section": None, "codes": []})
    return {"id": "n1", "entities": ents, "models": MODELS, "timings_ms": {"total": 1.0}}


@pytest.fixture
def engine(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    init_db(url)
    yield get_engine(url)
    dispose_engines()


def _stored(engine, analysis_id: int) -> tuple[str, dict, list, dict]:
    with session_scope(engine, write=False) as s:
        a = repo.get_analysis(s, analysis_id)
        sugg = [(x.start, x.end, x.text) for x in repo.list_suggestions(s, analysis_id)]
        audit = s.scalar(select(AuditLog).where(AuditLog.kind == "analysis_stored", AuditLog.ref_id == analysis_id))
        return a.note.text, dict(a.result), sugg, dict(audit.payload)


def _accept_all(engine, stored) -> None:
    for sid in stored.suggestion_ids:
        record_decision(engine, reviewer="ann", suggestion_id=sid, decision="accept")


def test_default_store_keeps_no_phi_and_records_the_mode(engine) -> None:
    stored = store_analysis(engine, NOTE, _result(), "pasted")  # store_text from Settings(): deidentified
    text, result, sugg, audit = _stored(engine, stored.analysis_id)
    assert text and text != NOTE
    for phi in PHI:
        assert phi not in text, phi
        assert all(phi not in (s_text or "") for _, _, s_text in sugg)
    assert "chest pain" in text and "aspirin" in text
    assert all(text[start:end] == s_text for start, end, s_text in sugg)
    assert result["deid"]["store_text"] == "deidentified" and result["deid"]["phi"] >= 4
    assert audit["store_text"] == "deidentified"
    # the original text still finds its stored analysis (the note is keyed by the original's hash)
    assert find_stored_analysis(engine, NOTE, MODELS) == stored.analysis_id
    assert load_analysis(engine, stored.analysis_id)[0] == text


def test_original_mode_keeps_the_text_and_export_redacts_it(engine) -> None:
    stored = store_analysis(engine, NOTE, _result(), "pasted", store_text="original")
    text, result, _, audit = _stored(engine, stored.analysis_id)
    assert text == NOTE and result["deid"] == {"store_text": "original"} and audit == {"store_text": "original"}
    _accept_all(engine, stored)
    with session_scope(engine, write=False) as s:
        (doc,) = list(iter_documents(s, options=ExportOptions(include_silver=True)))
        (raw,) = list(iter_documents(s, options=ExportOptions(deidentify=False, include_silver=True)))
    assert raw["text"] == NOTE and raw["store_text"] == "original" and not raw["deidentified"]
    assert doc["deidentified"] and doc["store_text"] == "original"
    for phi in PHI:
        assert phi not in doc["text"], phi
    for item in doc["entities"] + doc["gold"]:
        assert doc["text"][item["start"]:item["end"]] == item["text"]
        assert not any(phi in item["text"] for phi in PHI)
    assert {"chest pain", "aspirin", "troponin"} < {g["text"] for g in doc["gold"]}
    assert sum(bool(e.get("phi_overlap")) for e in doc["entities"]) == 1


def test_deidentified_notes_export_as_stored(engine) -> None:
    stored = store_analysis(engine, NOTE, _result(), None, store_text="deidentified")
    _accept_all(engine, stored)
    text = _stored(engine, stored.analysis_id)[0]
    with session_scope(engine, write=False) as s:
        (doc,) = list(iter_documents(s, options=ExportOptions(include_silver=True)))
    assert doc["text"] == text and doc["deidentified"] and doc["store_text"] == "deidentified"
    assert all(doc["text"][g["start"]:g["end"]] == g["text"] for g in doc["gold"] + doc["entities"])


def test_none_mode_keeps_no_wording_and_is_not_exported(engine) -> None:
    stored = store_analysis(engine, NOTE, _result(), None, store_text="none")
    text, result, sugg, audit = _stored(engine, stored.analysis_id)
    assert text == "" and audit == {"store_text": "none"} and result["deid"] == {"store_text": "none"}
    assert all(s_text == "" for _, _, s_text in sugg) and len(sugg) == 4
    assert not any(phi in str(result) for phi in PHI) and "chest pain" not in str(result)
    with session_scope(engine, write=False) as s:
        assert s.scalar(select(Note.sha256)) is not None  # the hash stays, so the note is still recognised
    _accept_all(engine, stored)  # accept/reject still work on a text-less note
    with session_scope(engine, write=False) as s:
        assert list(iter_documents(s, options=ExportOptions(include_silver=True))) == []
    assert find_stored_analysis(engine, NOTE, MODELS) is None  # nothing to reopen: analyse afresh
    with pytest.raises(ValueError, match="store_text=none"):
        load_analysis(engine, stored.analysis_id)


def test_a_note_keeps_its_first_form(engine) -> None:
    first = store_analysis(engine, NOTE, _result(), None, store_text="deidentified")
    again = store_analysis(engine, NOTE, _result(), None, store_text="original")
    text1, _, _, _ = _stored(engine, first.analysis_id)
    text2, result2, _, audit2 = _stored(engine, again.analysis_id)
    assert text1 == text2 != NOTE
    assert result2["deid"]["store_text"] == audit2["store_text"] == "deidentified"


def test_page_offsets_are_mapped_onto_the_stored_note(engine) -> None:
    from ui.review import add_missed_entity

    stored = store_analysis(engine, NOTE, _result(), None)
    # the page shows the original note: its offsets must land on the same words of the redacted one
    start = NOTE.index("repeat troponin")
    record_decision(engine, reviewer="ann", suggestion_id=stored.suggestion_ids[2], decision="correct",
                    corrected_start=start, corrected_end=start + len("repeat troponin"), corrected_label="TEST")
    m = NOTE.index("aspirin 81 mg")
    add_missed_entity(engine, reviewer="ann", analysis_id=stored.analysis_id, start=m, end=m + len("aspirin 81 mg"),
                      label="MED")
    with session_scope(engine, write=False) as s:
        (doc,) = list(iter_documents(s, options=ExportOptions(include_silver=True)))
    assert {"repeat troponin", "aspirin 81 mg"} <= {g["text"] for g in doc["gold"]}


def test_assertion_triggers_are_redacted_too(engine) -> None:
    # an assertion cue is quoted from the note and can be PHI ("historical", triggered by the date)
    result = _result()
    result["entities"][0].update(assertion="historical", traits=["historical"], trigger="03/14/2023")
    kept = store_analysis(engine, NOTE, result, "pasted")
    _, stored, _, _ = _stored(engine, kept.analysis_id)
    assert stored["entities"][0]["trigger"] and "03/14/2023" not in str(stored)
    none = store_analysis(engine, NOTE + "\n", result, "pasted", store_text="none")
    assert "03/14/2023" not in str(_stored(engine, none.analysis_id)[1])
