"""The Export page's explicit opt-out of de-identification (issue 22), with Streamlit's AppTest on the page and a
real SQLite file holding a note stored with ``store_text=original``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_deid_store import NOTE, PHI, _result

from db.session import dispose_engines, get_engine, init_db
from ui.review import record_decision, store_analysis

PAGE = Path(__file__).resolve().parent.parent / "app_pages" / "export.py"


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'export.sqlite'}"
    init_db(url)
    stored = store_analysis(get_engine(url), NOTE, _result(), "pasted", store_text="original")
    for sid in stored.suggestion_ids:
        record_decision(get_engine(url), reviewer="ann", suggestion_id=sid, decision="accept")
    monkeypatch.setenv("CLINICAL_NLP_DB_URL", url)
    yield url
    dispose_engines()


def _export(original: bool) -> tuple[dict, str]:
    at = AppTest.from_file(str(PAGE), default_timeout=120).run()
    assert not at.exception
    box = at.checkbox(key="export_original")
    assert box.value is False and "not de-identified" in box.label  # off by default, and says what it does
    if original:
        box.check()
    at.checkbox(key="export_silver").check()  # the note is not marked fully reviewed: exported as silver
    at.selectbox(key="export_fmt").set_value("jsonl")
    next(b for b in at.button if b.label == "Prepare export").click()
    at = at.run()
    assert not at.exception and not at.error
    result = at.session_state["export_result"]
    return result["manifest"].to_dict(), result["files"]["data.jsonl"].decode()


@pytest.mark.parametrize("original", [False, True])
def test_export_page_checkbox_chooses_the_text_and_the_manifest_says_so(db_url, original: bool) -> None:
    assert os.environ["CLINICAL_NLP_DB_URL"] == db_url
    manifest, data = _export(original)
    assert manifest["text_mode"] == ("original" if original else "deidentified")
    (doc,) = [json.loads(line) for line in data.splitlines()]
    assert (doc["text"] == NOTE) is original
    assert any(phi in data for phi in PHI) is original
