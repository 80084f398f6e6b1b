"""Smoke tests of every page with Streamlit's AppTest: the real engine, a real SQLite file, no browser.

One AppTest session per test; the engine is loaded and warmed once per process by ``st.cache_resource``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from db import repository
from db.session import init_db, session_scope

REPO = Path(__file__).resolve().parent.parent
NOTE = (REPO / "tests" / "fixtures" / "app" / "note_short.txt").read_text(encoding="utf-8")
FIRST_RUN_TIMEOUT = 900  # the first run of the process loads and warms the engine


@pytest.fixture(scope="module")
def db_url(tmp_path_factory):
    """A fresh SQLite feedback store for this module, named by $CLINICAL_NLP_DB_URL as the app reads it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('appdb') / 'feedback.sqlite'}"
    old = os.environ.get("CLINICAL_NLP_DB_URL")
    os.environ["CLINICAL_NLP_DB_URL"] = url
    init_db(url)
    yield url
    if old is None:
        os.environ.pop("CLINICAL_NLP_DB_URL", None)
    else:
        os.environ["CLINICAL_NLP_DB_URL"] = old


def counts(url: str) -> dict[str, int]:
    with session_scope(init_db(url), write=False) as session:
        return repository.count_rows(session)


def start(page: str | None = None, reviewer: str | None = "Dr Smoke") -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run(timeout=FIRST_RUN_TIMEOUT)
    assert not at.exception, at.exception
    assert not [e.value for e in at.sidebar.error], [e.value for e in at.sidebar.error]
    if reviewer:
        at.sidebar.text_input(key="reviewer").input(reviewer)
    if page:
        at.switch_page(page)
    return at.run()


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


def analyze(at: AppTest, text: str) -> AppTest:
    """Paste ``text``, press Analyze, and wait for the background store of a successful analysis."""
    at.text_area(key="note_text").input(text)
    at = click(at, "Analyze")
    if "analysis" in at.session_state:
        stored = at.session_state["analysis"]["stored"].result(timeout=60)
        assert len(stored.suggestion_ids) == len(at.session_state["analysis"]["result"]["entities"])
    return at


def html_of(at: AppTest, cls: str) -> str:
    return next(h.value for h in at.get("html") if f'class="{cls}' in h.value)


def test_engine_is_loaded_and_warmed_before_the_first_analysis(db_url):
    """First in this module, so no analysis has loaded a stage yet (the app's start must have)."""
    from ui import resources

    start(reviewer=None)  # a page load, no analysis
    pipeline = resources.get_pipeline()  # the process-wide cached instance the pages use
    assert set(resources.ANALYSIS_STAGES) <= set(pipeline._stages)
    assert resources.get_pipeline() is pipeline


def test_analyze_highlights_and_records_decisions(db_url):
    at = analyze(start(), NOTE)
    assert not at.exception and not at.error, [e.value for e in at.error]
    result = at.session_state["analysis"]["result"]
    assert result["entities"], "the engine found no entity in a note full of them"
    note_html = html_of(at, "ent-note")
    assert note_html.count('<mark class="ent ent-') >= len(result["entities"]) - 1  # overlaps may merge pieces
    assert "asr-negated" in note_html  # "denies fever or cough"
    before = counts(db_url)
    coded = next(i for i, e in enumerate(result["entities"]) if e["codes"])
    assert at.selectbox(key=f"review_entity_{at.session_state['analysis']['run']}").value == coded
    at.button(key=f"code-acc-{coded}-0").click()
    at.run()
    assert [s.value for s in at.success] == [f"Recorded: accept code {result['entities'][coded]['codes'][0]['code']}"]
    at.button(key=f"ent-rej-{coded}").click()
    at.run()
    assert counts(db_url)["decisions"] == before["decisions"] + 2
    with session_scope(init_db(db_url), write=False) as session:
        latest = repository.list_decisions(session, limit=2)
    assert {(d.decision, d.target, d.reviewer) for d in latest} == {("accept", "code", "Dr Smoke"),
                                                                    ("reject", "entity", "Dr Smoke")}


def test_analyze_shows_store_mode_and_redacted_view(db_url):
    note = "Patient John Whitcombe seen on 03/14/2023 for chest pain. Call back at (617) 555-0142.\n" + NOTE
    at = analyze(start(), note)
    toggle = at.toggle(key="redacted_view")
    assert "the feedback store keeps: deidentified" in toggle.label
    assert "Whitcombe" in html_of(at, "ent-note")
    toggle.set_value(True)
    at.run()
    shown = html_of(at, "ent-note")
    assert not at.exception and "Whitcombe" not in shown and "555-0142" not in shown and "chest pain" in shown


def test_decision_needs_reviewer_name(db_url):
    at = analyze(start(reviewer=None), NOTE)
    assert any("Enter your name" in w.value for w in at.warning)
    coded = next(i for i, e in enumerate(at.session_state["analysis"]["result"]["entities"]) if e["codes"])
    before = counts(db_url)["decisions"]
    at.button(key=f"code-acc-{coded}-0").click()
    at.run()
    assert any("Reviewer name" in e.value for e in at.error)
    assert counts(db_url)["decisions"] == before
    at.sidebar.text_input(key="reviewer").input("  Dr Late ")
    at.run()
    at.button(key=f"code-acc-{coded}-0").click()
    at.run()
    assert counts(db_url)["decisions"] == before + 1
    with session_scope(init_db(db_url), write=False) as session:
        assert repository.list_decisions(session, limit=1)[0].reviewer == "Dr Late"


def test_reopen_a_recent_analysis(db_url):
    first = analyze(start(), NOTE + "\nReopen me.")
    stored = first.session_state["analysis"]["stored"].result()
    at = start()  # a new session
    assert at.dataframe[0].value["analysis"].iloc[0] == stored.analysis_id
    at.selectbox(key="reopen_pick").set_value(stored.analysis_id)
    at.button(key="reopen").click()
    at.run()
    reopened = at.session_state["analysis"]
    assert reopened["text"] == NOTE + "\nReopen me."
    assert reopened["result"]["entities"] == first.session_state["analysis"]["result"]["entities"]
    assert reopened["stored"].result().suggestion_ids == stored.suggestion_ids
    assert html_of(at, "ent-note").count("<mark") >= 1


def test_filters_code_search_and_missed_entity(db_url):
    at = analyze(start(), NOTE)
    at.multiselect(key="filter_assertions").set_value(["negated"]).run()
    shown = html_of(at, "ent-note")
    assert "asr-present" not in shown and "asr-negated" in shown
    at.multiselect(key="filter_assertions").set_value(["present", "negated", "possible", "hypothetical", "family",
                                                        "historical"]).run()
    pos = at.selectbox(key=f"review_entity_{at.session_state['analysis']['run']}").value
    at.text_input(key=f"code-search-{pos}").input("I10").run()
    assert at.selectbox(key=f"code-pick-{pos}").value.code == "I10"
    at.button(key=f"code-fix-{pos}").click()
    at.run()
    assert any("correct code I10" in s.value for s in at.success)
    before = counts(db_url)["suggestions"]
    at.text_input(key="add_mention").input("troponin")
    at.selectbox(key="add_label").set_value("TEST")
    click(at, "Add entity")
    assert any("Added TEST" in s.value for s in at.success) or any("already has" in e.value for e in at.error)
    at.text_input(key="add_mention").input("not in this note at all")
    click(at, "Add entity")
    assert any("is not in the note" in e.value for e in at.error)
    assert counts(db_url)["suggestions"] <= before + 1


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        (None, b"   \n ", "empty"),
        ("big.txt", b"a" * (10 * 1024 * 1024), "limit for one note"),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> garbage", "corrupt"),
        ("image.txt", bytes(range(256)) * 64, "binary"),
        ("tool.exe", b"MZ\x90\x00" + bytes(200), "unsupported"),
    ],
)
def test_bad_input_gets_a_message_and_stores_nothing(db_url, name, data, needle):
    at = start()
    before = counts(db_url)
    if name is None:
        at = analyze(at, data.decode())
    else:
        at.file_uploader(key="note_upload").set_value((name, data, "application/octet-stream"))
        at = click(at, "Analyze")
    assert not at.exception
    assert any(needle in e.value for e in at.error), [e.value for e in at.error]
    assert "analysis" not in at.session_state
    assert counts(db_url) == before
    if name is not None:
        at.file_uploader(key="note_upload").set_value(None)
    assert analyze(at, NOTE).session_state["analysis"]["result"]["entities"]  # the app keeps working


def test_summary_page_length_and_keep_drop(db_url):
    at = start("app_pages/summary.py")
    at.text_area(key="summary_text").input(NOTE)
    at.slider(key="summary_k").set_value(2)
    at = click(at, "Summarize")
    assert not at.error, [e.value for e in at.error]
    sentences = at.session_state["summary"]["result"]["sentences"]
    assert len(sentences) == 2 and [s["start"] for s in sentences] == sorted(s["start"] for s in sentences)
    assert html_of(at, "ent-note sum-note").count('<mark class="sum-sent"') == 2
    at.slider(key="summary_k").set_value(3).run()
    assert len(at.session_state["summary"]["result"]["sentences"]) == 3
    before = counts(db_url)
    at.button(key="drop-0").click()
    at.run()
    at.button(key="keep-1").click()
    at.run()
    after = counts(db_url)
    assert after["sentence_decisions"] == before["sentence_decisions"] + 2
    assert after["summaries"] == before["summaries"] + 1
    assert "sum-dropped" in html_of(at, "ent-note sum-note")


def test_history_page_lists_decisions_and_charts(db_url):
    at = start("app_pages/history.py")
    assert not at.exception and not at.error
    if counts(db_url)["decisions"] == 0:
        assert any("No decisions" in i.value for i in at.info)
        return
    assert at.dataframe[0].value.shape[0] == counts(db_url)["decisions"]
    assert len(at.get("plotly_chart")) >= 3
    at.selectbox(key="hist_decision").set_value("accept").run()
    assert set(at.dataframe[0].value["decision"]) == {"accept"}


def test_export_page_jsonl(db_url):
    at = start("app_pages/export.py")
    at.selectbox(key="export_fmt").set_value("jsonl")
    at.checkbox(key="export_silver").check()  # these notes are not marked fully reviewed: silver, by option
    at = click(at, "Prepare export")
    assert not at.exception and not at.error
    files = at.session_state["export_result"]["files"]
    assert "manifest.json" in files and "data.jsonl" in files
    docs = [json.loads(line) for line in files["data.jsonl"].decode().splitlines()]
    if counts(db_url)["decisions"]:
        assert docs and all("decisions" in e for d in docs for e in d["entities"])
        assert {d["status"] for d in docs} == {"silver"}
    assert any(b.label == "Download data.jsonl" for b in at.get("download_button"))


def test_models_page(db_url):
    with session_scope(init_db(db_url)) as session:
        repository.register_model_version(session, name="ner-test-1", stage="ner", path="/nowhere", data_hash=None,
                                          metrics={"f1": 0.5}, config={}, activate=True)
    at = start("app_pages/models.py")
    assert not at.exception and not at.error
    frames = [d.value for d in at.dataframe]
    versions = next(f for f in frames if "active" in f.columns)
    assert "base" in set(versions["version"]) and (versions["active"] == "✅").sum() == 1
    loaded = next(f for f in frames if list(f.columns) == ["stage", "version"])
    recorded = next(f for f in frames if "activated" in f.columns)
    assert recorded.loc[recorded["name"] == "ner-test-1", "active"].tolist() == ["✅"]
    assert set(loaded["stage"]) == {"ner", "assertion", "icd", "summarizer"}
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles[:2] == ["Strict F1 per entity type", "NER entity confidence"]  # plots, not list-valued cells


def test_batch_page_jsonl_and_zip(db_url):
    at = start("app_pages/batch.py")
    lines = [json.dumps({"id": "a", "text": NOTE}), "{broken", json.dumps({"id": "b", "text": "Denies chest pain."})]
    at.file_uploader(key="batch_upload").set_value(("notes.jsonl", "\n".join(lines).encode(), "application/json")).run()
    at = click(at, "Run batch")
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["id"]) == ["a", "b"]
    assert table.loc[0, "entities"] > 0
    assert "line 2: invalid JSON" in at.code[0].value
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("n1.txt", NOTE)
    at.file_uploader(key="batch_upload").set_value(("notes.zip", buf.getvalue(), "application/zip")).run()
    at = click(at, "Run batch")
    assert list(at.dataframe[0].value["id"]) == ["n1"]
    at.file_uploader(key="batch_upload").set_value(("notes.zip", b"PK\x03\x04 nope", "application/zip")).run()
    at = click(at, "Run batch")
    assert any("not a readable .zip" in e.value for e in at.error)
