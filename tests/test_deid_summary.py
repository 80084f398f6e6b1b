"""The Summary page's store and the exports follow ``store_text`` (issue 22), on a real SQLite file with the real
summarizer and de-identifier: stored sentences point at the redacted note; exports are de-identified unless asked
otherwise, and the manifest says which."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from test_deid_store import NOTE, PHI, _result

from db.export import ExportOptions, export_dataset, iter_summaries
from db.models import AuditLog, Note, Summary, SummarySentenceRow
from db.session import dispose_engines, get_engine, init_db, session_scope
from ui.review import record_decision, record_sentence_decision, store_analysis, store_summary

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    init_db(url)
    yield url, get_engine(url)
    dispose_engines()


@pytest.fixture(scope="module")
def summary(pipeline) -> dict:
    out = pipeline.summarize(NOTE, k=3).to_dict()
    assert len(out["sentences"]) >= 2
    return out


def _kept(engine, ids: list[int]) -> tuple[str, list[tuple[int, int, str]], dict]:
    with session_scope(engine, write=False) as s:
        rows = [s.get(SummarySentenceRow, i) for i in ids]
        note = s.get(Summary, rows[0].summary_id).note
        audit = s.scalar(select(AuditLog).where(AuditLog.kind == "summary_stored",
                                                AuditLog.ref_id == rows[0].summary_id))
        return note.text, [(r.start, r.end, r.text) for r in rows], dict(audit.payload)


def test_summary_store_is_deidentified_by_default(db, summary) -> None:
    _, engine = db
    ids = store_summary(engine, NOTE, summary, "sum-test-1")  # store_text from Settings(): deidentified
    text, rows, audit = _kept(engine, ids)
    assert text != NOTE and "chest pain" in text
    assert not any(phi in text for phi in PHI)
    assert len(rows) == len(summary["sentences"]) and all(text[s:e] == t for s, e, t in rows)
    assert not any(phi in t for _, _, t in rows for phi in PHI)
    assert audit["store_text"] == "deidentified" and audit["phi"] >= 4
    # ids come back in the summary's order: sentence i's decision lands on sentence i
    for i, sentence_id in enumerate(ids):
        record_sentence_decision(engine, reviewer="ann", sentence_id=sentence_id, decision="keep" if i else "drop")
    with session_scope(engine, write=False) as s:
        (rec,) = list(iter_summaries(s))
    assert rec["text"] == text and rec["deidentified"]
    assert [x["label"] for x in rec["sentences"]] == ["drop"] + ["keep"] * (len(ids) - 1)


@pytest.mark.parametrize("mode", ["original", "none"])
def test_summary_store_original_and_none(db, summary, mode: str) -> None:
    _, engine = db
    ids = store_summary(engine, NOTE, summary, "sum-test-1", store_text=mode)
    text, rows, audit = _kept(engine, ids)
    assert audit == {"store_text": mode}
    assert text == (NOTE if mode == "original" else "")
    spans = [(s["start"], s["end"]) for s in summary["sentences"]]
    assert [(s, e) for s, e, _ in rows] == spans  # offsets into the note as given
    assert all((t == NOTE[s:e]) if mode == "original" else t == "" for s, e, t in rows)
    record_sentence_decision(engine, reviewer="ann", sentence_id=ids[0], decision="keep")
    with session_scope(engine, write=False) as s:
        recs, raw = list(iter_summaries(s)), list(iter_summaries(s, options=ExportOptions(deidentify=False)))
    if mode == "none":
        assert recs == raw == []  # no text kept, nothing to export
        return
    (rec,), (orig,) = recs, raw
    assert orig["text"] == NOTE and not orig["deidentified"]
    assert rec["deidentified"] and not any(phi in rec["text"] for phi in PHI)
    assert all(rec["text"][x["start"]:x["end"]] == x["text"] for x in rec["sentences"])


def test_summary_of_an_analysed_note_follows_its_first_form(db, summary) -> None:
    _, engine = db
    store_analysis(engine, NOTE, _result(), "pasted")
    ids = store_summary(engine, NOTE, summary, "sum-test-1", store_text="original")
    text, rows, audit = _kept(engine, ids)
    assert audit["store_text"] == "deidentified" and text != NOTE and all(text[s:e] == t for s, e, t in rows)
    with session_scope(engine, write=False) as s:
        assert len(list(s.scalars(select(Note)))) == 1


def test_export_opt_out_is_explicit_and_in_the_manifest(db, tmp_path: Path) -> None:
    url, engine = db
    stored = store_analysis(engine, NOTE, _result(), "pasted", store_text="original")
    for sid in stored.suggestion_ids:
        record_decision(engine, reviewer="ann", suggestion_id=sid, decision="accept")
    with session_scope(engine, write=False) as s:
        # the note is not marked fully reviewed, so it is exported as silver (issue 17's gold-only default)
        default = export_dataset(s, "jsonl", tmp_path / "default", include_silver=True)
        raw = export_dataset(s, "jsonl", tmp_path / "raw", deidentify=False, include_silver=True)
    assert default.to_dict()["text_mode"] == "deidentified" and raw.to_dict()["text_mode"] == "original"
    (doc,) = [json.loads(x) for x in (tmp_path / "default" / "data.jsonl").read_text().splitlines()]
    (orig,) = [json.loads(x) for x in (tmp_path / "raw" / "data.jsonl").read_text().splitlines()]
    assert not any(phi in doc["text"] for phi in PHI) and orig["text"] == NOTE
    assert json.loads((tmp_path / "raw" / "manifest.json").read_text())["text_mode"] == "original"
    # the command line: de-identified unless --original-text
    for flag, mode, want in (([], "deidentified", False), (["--original-text"], "original", True)):
        out = tmp_path / f"cli-{mode}"
        subprocess.run([sys.executable, "-m", "db", "--url", url, "export", "--format", "jsonl", "--out", str(out),
                        "--include-silver", *flag], cwd=REPO, check=True, capture_output=True)
        assert json.loads((out / "manifest.json").read_text())["text_mode"] == mode
        assert ("Whitcombe" in (out / "data.jsonl").read_text()) is want
