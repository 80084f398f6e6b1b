"""Dataset export on a real database: round trips of spans through every format, filters, split, manifest,
the command line, and a 100,000-decision export whose memory stays bounded."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from support.db_testing import NOTE_TEXT, sample_result, seed_analyses, seed_bulk_sqlite

from db import repository as repo
from db.errors import FeedbackCode, FeedbackError
from db.export import export_dataset, import_jsonl, read_jsonl
from db.export.docbin import spacy_doc
from db.models import Decision, utcnow
from db.session import dispose_engines, get_engine, init_db, session_scope
from engine.corpora.brat import parse_ann
from engine.corpora.document import resolve_overlaps
from engine.corpora.iob import iob_tags, read_conll, spans_from_iob, tokenize

REPO = Path(__file__).resolve().parent.parent
UNICODE_NOTE = (
    "Pt 👩\u200d⚕️ seen: café-au-lait spots, naïve T-cells low.\n"
    "Dx: type 2\ndiabetes mellitus, on metformin 500 mg.\r\nNo rash."
)



def _entity(text: str, phrase: str, label: str, codes=()) -> dict:
    start = text.index(phrase)
    return {
        "start": start,
        "end": start + len(phrase),
        "text": phrase,
        "label": label,
        "score": 0.8,
        "assertion": "present",
        "traits": [],
        "trigger": None,
        "section": None,
        "codes": [{"code": c, "description": c, "score": 0.5, "billable": True} for c in codes],
    }


def _populate(url: str) -> dict:
    """Two notes with every kind of decision by two reviewers, one older decision, and a reviewed summary."""
    engine = get_engine(url)
    with session_scope(engine) as s:
        n1 = repo.save_note(s, NOTE_TEXT, source="one.txt")
        a1 = repo.save_analysis(s, n1, sample_result())
        sug = {x.text: x.id for x in a1.suggestions}
        n2 = repo.save_note(s, UNICODE_NOTE, source="two.txt")
        result2 = {
            "id": "note-2",
            "entities": [
                _entity(UNICODE_NOTE, "café-au-lait spots", "DIAG"),
                _entity(UNICODE_NOTE, "type 2\ndiabetes", "DIAG", ["E11.9"]),
                _entity(UNICODE_NOTE, "metformin", "MED"),
                _entity(UNICODE_NOTE, "rash", "DIAG"),
            ],
            "models": {"ner": "ner-test-2", "icd": "ICD-10-CM 2025"},
            "timings_ms": {"total": 3.0},
        }
        a2 = repo.save_analysis(s, n2, result2)
        sug2 = {x.text: x.id for x in a2.suggestions}
        rd = repo.record_decision
        rd(s, suggestion_id=sug["acute myocardial infarction"], reviewer="ann", decision="accept")
        rd(
            s,
            suggestion_id=sug["acute myocardial infarction"],
            reviewer="ann",
            decision="accept",
            target="code",
            code="I21.9",
        )
        rd(s, suggestion_id=sug["chest pain"], reviewer="bob", decision="reject", comment="negated mention")
        ech = NOTE_TEXT.index("echocardiogram")
        rd(
            s,
            suggestion_id=sug["echocardiogram"],
            reviewer="ann",
            decision="correct",
            corrected_end=ech + len("echocardiogram of the left ventricle"),
        )
        rd(s, suggestion_id=sug["left ventricle"], reviewer="bob", decision="accept")  # overlaps the correction
        rd(
            s,
            suggestion_id=sug["breast cancer"],
            reviewer="bob",
            decision="correct",
            target="code",
            code="Z80.3",
            corrected_code="Z80.3",
        )
        rd(s, suggestion_id=sug["troponin"], reviewer="ann", decision="accept")
        old = rd(s, suggestion_id=sug["aspirin"], reviewer="ann", decision="accept")
        rd(
            s,
            suggestion_id=sug2["type 2\ndiabetes"],
            reviewer="ann",
            decision="correct",
            corrected_end=UNICODE_NOTE.index(" mellitus") + len(" mellitus"),
        )
        rd(s, suggestion_id=sug2["type 2\ndiabetes"], reviewer="ann", decision="reject", target="code", code="E11.9")
        rd(s, suggestion_id=sug2["café-au-lait spots"], reviewer="bob", decision="correct", corrected_label="ANAT")
        rd(s, suggestion_id=sug2["rash"], reviewer="bob", decision="reject")
        t = UNICODE_NOTE.index("T-cells")
        repo.add_missed_entity(s, analysis_id=a2.id, start=t, end=t + 7, label="TEST", reviewer="cy", comment="lab")
        rows = repo.save_summary(
            s,
            n1,
            {
                "id": "note-1",
                "sentences": [
                    {"start": 0, "end": NOTE_TEXT.index("\n"), "score": 0.9, "rank": 1},
                    {"start": NOTE_TEXT.index("PLAN"), "end": len(NOTE_TEXT), "score": 0.6, "rank": 2},
                ],
            },
            model_version="sum-1",
        )
        repo.record_sentence_decision(s, sentence_id=rows[0].id, reviewer="ann", decision="keep")
        repo.record_sentence_decision(s, sentence_id=rows[1].id, reviewer="ann", decision="keep")
        repo.record_sentence_decision(s, sentence_id=rows[1].id, reviewer="bob", decision="drop")
        s.execute(update(Decision).where(Decision.id == old.id).values(created_at=utcnow() - timedelta(days=30)))
        return {"a1": a1.id, "a2": a2.id, "old_decision": old.id, "sentences": [r.id for r in rows]}


def _strip_ids(record: dict) -> dict:
    record = json.loads(json.dumps(record))
    record.pop("analysis_id")
    for entity in record["entities"]:
        entity.pop("suggestion_id")
        for d in entity["decisions"]:
            d.pop("id")
    for g in [*record["gold"], *record["silver"]]:
        g.pop("suggestion_id")
    return record


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_jsonl_export_reimport_round_trips_exactly(db_url, tmp_path):
    ids = _populate(db_url)
    with session_scope(get_engine(db_url), write=False) as s:
        manifest = export_dataset(s, "jsonl", tmp_path / "a", include_silver=True)
    records = list(read_jsonl(tmp_path / "a" / "data.jsonl"))
    assert [r["analysis_id"] for r in records] == [ids["a1"], ids["a2"]]
    assert manifest.counts["documents"] == 2 and manifest.counts["decisions"] == 13
    assert manifest.files["data.jsonl"]["sha256"] == _sha(tmp_path / "a" / "data.jsonl")
    on_disk = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert on_disk["sha256"] == manifest.sha256 and on_disk["counts"] == manifest.counts

    note1, note2 = records
    for record in records:
        for item in [*record["entities"], *record["gold"]]:
            assert record["text"][item["start"] : item["end"]] == item["text"]
    gold1 = {(g["text"], g["label"]): g["codes"] for g in note1["gold"]}
    assert gold1 == {
        ("acute myocardial infarction", "DIAG"): ["I21.9"],
        ("echocardiogram of the left ventricle", "TEST"): [],
        ("left ventricle", "ANAT"): [],
        ("breast cancer", "DIAG"): ["Z80.3"],
        ("troponin", "TEST"): [],
        ("aspirin", "MED"): [],
    }
    gold2 = {(g["text"], g["label"]): g["codes"] for g in note2["gold"]}
    assert gold2 == {
        ("café-au-lait spots", "ANAT"): [],
        ("type 2\ndiabetes mellitus", "DIAG"): [],
        ("T-cells", "TEST"): [],
    }
    added = [e for e in note2["entities"] if e["origin"] == "reviewer"]
    assert [(e["text"], e["decisions"][0]["decision"], e["decisions"][0]["comment"]) for e in added] == [
        ("T-cells", "add", "lab")
    ]

    other = f"sqlite:///{tmp_path / 'copy.sqlite'}"
    init_db(other)
    with session_scope(get_engine(other)) as s:
        report = import_jsonl(s, tmp_path / "a" / "data.jsonl")
    assert (report.documents, report.decisions) == (2, 13)
    with session_scope(get_engine(other), write=False) as s:
        export_dataset(s, "jsonl", tmp_path / "b", include_silver=True)
    again = list(read_jsonl(tmp_path / "b" / "data.jsonl"))
    assert [_strip_ids(r) for r in again] == [_strip_ids(r) for r in records]


def test_conll_docbin_and_brat_reproduce_the_gold_spans(db_url, tmp_path):
    _populate(db_url)
    with session_scope(get_engine(db_url), write=False) as s:
        export_dataset(s, "jsonl", tmp_path / "j", include_silver=True)
        m_conll = export_dataset(s, "conll", tmp_path / "c", include_silver=True)
        m_docbin = export_dataset(s, "docbin", tmp_path / "d", include_silver=True)
        m_brat = export_dataset(s, "brat", tmp_path / "b", include_silver=True)
    records = {r["analysis_id"]: r for r in read_jsonl(tmp_path / "j" / "data.jsonl")}
    expected_iob = {
        str(k): resolve_overlaps((g["start"], g["end"], g["label"]) for g in [*r["gold"], *r["silver"]])
        for k, r in records.items()
    }
    assert m_conll.counts["overlapping_dropped"] == 1  # "left ventricle" inside the corrected echocardiogram span
    assert {k: sorted(v) for k, v in read_conll(tmp_path / "c" / "data.conll").items()} == expected_iob

    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    [shard] = m_docbin.files
    docs = list(DocBin().from_disk(tmp_path / "d" / shard).get_docs(nlp.vocab))
    assert len(docs) == 2
    for doc in docs:
        record = records[doc.user_data["doc_id"]]
        assert doc.text == record["text"]
        assert (
            sorted((e.start_char, e.end_char, e.label_) for e in doc.ents) == expected_iob[str(record["analysis_id"])]
        )

    assert m_brat.counts["gold_entities"] == 9
    for ann in sorted((tmp_path / "b" / "data").glob("*.ann")):
        analysis_id = int(ann.name.split("_")[0])
        record = records[analysis_id]
        assert ann.with_suffix(".txt").read_bytes().decode("utf-8") == record["text"]
        assert sorted(parse_ann(ann.read_text("utf-8"), None, join_fragments=True)) == sorted(
            (g["start"], g["end"], g["label"]) for g in [*record["gold"], *record["silver"]]
        )
    ann2 = (tmp_path / "b" / "data").glob(f"{max(records):08d}_*.ann")
    text2 = next(ann2).read_text("utf-8")
    assert ";" in text2  # the entity across a line break is written as two fragments
    assert "AnnotatorNotes" in (tmp_path / "b" / "data" / f"{min(records):08d}_note-1.ann").read_text("utf-8")


def test_tokenizer_offsets_and_forced_breaks():
    text = "BP 120/80, HbA1c 7.2%\nno-rash"
    tokens = tokenize(text, breaks=[text.index("rash")])
    assert [text[s:e] for s, e in tokens] == [
        "BP",
        "120",
        "/",
        "80",
        ",",
        "HbA1c",
        "7",
        ".",
        "2",
        "%",
        "no",
        "-",
        "rash",
    ]
    word = "abcdef"
    assert [word[s:e] for s, e in tokenize(word, breaks=[2, 4])] == ["ab", "cd", "ef"]


@st.composite
def _text_and_spans(draw):
    alphabet = st.sampled_from([*list("ab Z9é👩\u200d.-/,:\n\t  "), "\r\n", "  ", "日本"])
    text = "".join(draw(st.lists(alphabet, min_size=1, max_size=40)))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=8))))
    spans = []
    for start, end in zip(cuts[::2], cuts[1::2], strict=False):
        piece = text[start:end]
        if piece.strip() and piece == piece.strip():
            spans.append({"start": start, "end": end, "label": draw(st.sampled_from(["DIAG", "MED", "TEST"]))})
    return text, spans


@settings(max_examples=200, deadline=None)
@given(_text_and_spans())
def test_iob_and_spacy_docs_reproduce_any_trimmed_spans(case):
    import spacy

    text, spans = case
    spans = [(s["start"], s["end"], s["label"]) for s in spans]
    expected = sorted(spans)
    assert sorted(spans_from_iob(iob_tags(text, spans))) == expected
    if "en" not in _NLP:
        _NLP["en"] = spacy.blank("en")
    doc = spacy_doc(_NLP["en"], text, spans)
    assert doc.text == text
    assert sorted((e.start_char, e.end_char, e.label_) for e in doc.ents) == expected


_NLP: dict = {}


def test_reviewer_spans_with_edge_whitespace_are_refused(db_url):
    with session_scope(get_engine(db_url)) as s:
        note = repo.save_note(s, NOTE_TEXT)
        analysis = repo.save_analysis(s, note, sample_result())
        start = NOTE_TEXT.index("aspirin")
        with pytest.raises(FeedbackError) as err:
            repo.add_missed_entity(
                s, analysis_id=analysis.id, start=start - 1, end=start + 7, label="MED", reviewer="a"
            )
        assert err.value.code == FeedbackCode.BAD_SPAN


def test_export_filters(db_url, tmp_path):
    ids = _populate(db_url)

    def export(**filters) -> list[dict]:
        buffer = io.StringIO()
        with session_scope(get_engine(db_url), write=False) as s:
            export_dataset(s, "jsonl", stream=buffer, include_silver=True, **filters)
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    def decisions(records):
        return [d for r in records for e in r["entities"] for d in e["decisions"]]

    bob = export(reviewer="bob")
    assert {d["reviewer"] for d in decisions(bob)} == {"bob"} and len(decisions(bob)) == 5
    rejects = export(decision="reject")
    assert [d["decision"] for d in decisions(rejects)] == ["reject"] * 3  # two entities, one code
    assert all(r["gold"] == [] for r in rejects)  # a rejection alone makes nothing gold
    recent = export(since=utcnow() - timedelta(days=1))
    assert ids["old_decision"] not in {d["id"] for d in decisions(recent)} and len(decisions(recent)) == 12
    old = export(until=(utcnow() - timedelta(days=1)).isoformat())
    assert [d["id"] for d in decisions(old)] == [ids["old_decision"]]
    v2 = export(model_version="ner-test-2")
    assert [r["analysis_id"] for r in v2] == [ids["a2"]]
    tests = export(label="TEST")
    assert {(e["label"], d["corrected_label"]) for r in tests for e in r["entities"] for d in e["decisions"]} <= {
        ("TEST", None),
        ("TEST", "TEST"),
    }
    assert export(reviewer="nobody") == []
    with session_scope(get_engine(db_url), write=False) as s:
        for bad, code in (
            (dict(decision="approve"), FeedbackCode.BAD_DECISION),
            (dict(label="DISEASE"), FeedbackCode.BAD_LABEL),
            (dict(since="yesterday"), FeedbackCode.BAD_INPUT),
            (dict(split=1.5), FeedbackCode.BAD_EXPORT),
        ):
            with pytest.raises(FeedbackError) as err:
                export_dataset(s, "jsonl", tmp_path / "x", **bad)
            assert err.value.code == code
        with pytest.raises(FeedbackError):
            export_dataset(s, "docbin", stream=io.StringIO())


def test_summary_keep_drop_export(db_url, tmp_path):
    ids = _populate(db_url)
    with session_scope(get_engine(db_url), write=False) as s:
        manifest = export_dataset(s, "summary_jsonl", tmp_path / "s")
        only_ann = io.StringIO()
        export_dataset(s, "summary_jsonl", stream=only_ann, reviewer="ann")
    [record] = [json.loads(x) for x in (tmp_path / "s" / "summaries.jsonl").read_text("utf-8").splitlines()]
    assert [(x["sentence_id"], x["label"]) for x in record["sentences"]] == [
        (ids["sentences"][0], "keep"),
        (ids["sentences"][1], "drop"),  # the newest decision wins
    ]
    assert all(record["text"][x["start"] : x["end"]] == x["text"] for x in record["sentences"])
    assert manifest.counts == {
        "label_drop": 1,
        "label_keep": 1,
        "sentence_decisions": 3,
        "sentences": 2,
        "summaries": 1,
    }
    [ann] = [json.loads(x) for x in only_ann.getvalue().splitlines()]
    assert [x["label"] for x in ann["sentences"]] == ["keep", "keep"]


def test_split_is_deterministic_and_keeps_notes_apart(tmp_path):
    url = f"sqlite:///{tmp_path / 'split.sqlite'}"
    suggestion_ids = seed_analyses(url, 30)
    with session_scope(get_engine(url)) as s:
        for sid in suggestion_ids[::3]:
            repo.record_decision(s, suggestion_id=sid, reviewer="ann", decision="accept")
    with session_scope(get_engine(url), write=False) as s:
        m1 = export_dataset(s, "jsonl", tmp_path / "one", split=0.3, seed=7, include_silver=True)
        m2 = export_dataset(s, "jsonl", tmp_path / "two", split=0.3, seed=7, include_silver=True)
        export_dataset(s, "jsonl", tmp_path / "three", split=0.3, seed=8, include_silver=True)
    assert m1.sha256 == m2.sha256 and m1.files == m2.files
    assert set(m1.files) == {"train.jsonl", "dev.jsonl"}
    train = [r["note_sha256"] for r in read_jsonl(tmp_path / "one" / "train.jsonl")]
    dev = [r["note_sha256"] for r in read_jsonl(tmp_path / "one" / "dev.jsonl")]
    assert len(train) + len(dev) == 30 and not set(train) & set(dev) and 0 < len(dev) < 30
    assert m1.counts["documents_dev"] == len(dev)
    dev3 = [r["note_sha256"] for r in read_jsonl(tmp_path / "three" / "dev.jsonl")]
    assert set(dev3) != set(dev)
    dispose_engines()


def test_cli_export_to_stdout_and_refusal(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    init_db(url)
    _populate(url)
    dispose_engines()
    run = [sys.executable, "-m", "db", "--url", url, "export"]
    out = subprocess.run(
        [*run, "--format", "jsonl", "--out", "-", "--reviewer", "cy", "--include-silver"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    [line] = out.stdout.splitlines()
    assert json.loads(line)["entities"][-1]["decisions"][0]["reviewer"] == "cy"
    assert json.loads(out.stderr)["counts"]["decisions"] == 1
    bad = subprocess.run(
        [*run, "--format", "jsonl", "--out", str(tmp_path / "o"), "--decision", "approve"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "approve" in bad.stderr


def test_100k_decisions_export_streams_in_bounded_memory(tmp_path):
    """100,000 decisions (1,000 notes x 25 entities x 4 reviewers) export to JSONL in a fresh process whose peak
    resident memory grows by far less than the bytes written: a non-streaming export would hold all of it."""
    path = tmp_path / "big.sqlite"
    url = f"sqlite:///{path}"
    init_db(url)
    dispose_engines()
    assert seed_bulk_sqlite(path, 1_000, 25, 4) == 100_000
    code = (
        "import json, sys; sys.path.insert(0, \"tests\"); from support.db_testing import export_peak_memory; "
        "print(json.dumps(export_peak_memory(sys.argv[1], sys.argv[2])))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, url, str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    print(f"100k export: {figures}")
    assert figures["counts"]["decisions"] == 100_000
    assert figures["counts"]["documents"] == 1_000
    assert figures["counts"]["gold_entities"] == sum(1 for sid in range(1, 25_001) if (sid + 3) % 4)
    written = (tmp_path / "out" / "data.jsonl").stat().st_size
    assert figures["bytes_written"] == written > 20_000_000
    assert figures["rss_growth_bytes"] < written / 2, f"memory grew {figures['rss_growth_bytes']} B: not streaming"
